package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/miekg/dns"
)

// DNSConfig is one service's DNS discovery: which name to resolve, how,
// and how often.
type DNSConfig struct {
	Service  string        // for the log and weir_discovery_errors_total
	Name     string        // "_http._tcp.users.example" (SRV) or "users.example" (A/AAAA)
	Type     string        // SRV | A | AAAA
	Port     int           // the targets' port with A/AAAA (SRV records carry theirs)
	Scheme   string        // http | https
	Interval time.Duration // re-resolution period
	Resolver string        // "ip:port"; empty: the servers of /etc/resolv.conf
	Log      *slog.Logger
	// Known are the targets the caller already has (WatchDNS): an answer
	// equal to them is not delivered again.
	Known []TargetConfig
}

// dnsTimeout bounds one DNS exchange, so a resolver that does not answer
// delays the next resolution by at most this much.
const dnsTimeout = 2 * time.Second

// errEmptyAnswer is an answer without a usable record.
var errEmptyAnswer = errors.New("the answer has no usable record")

// ResolveDNS returns the targets c.Name has now, sorted by URL. SRV: the
// records of the lowest priority (the others are backups, which Weir's
// balancers have no notion of), each record's weight clamped to 1..1000
// (all weights 0: 100 each), its host name resolved through the extra
// section of the answer or else an A then AAAA query to the same resolver.
// A/AAAA: every address with c.Port and weight 100. An empty answer is an
// error: see WatchDNS.
func ResolveDNS(ctx context.Context, c DNSConfig) ([]TargetConfig, error) {
	servers, err := resolverServers(c.Resolver)
	if err != nil {
		return nil, err
	}
	r := &dnsResolver{servers: servers}
	var out []TargetConfig
	switch c.Type {
	case "A", "AAAA":
		qt := dns.TypeA
		if c.Type == "AAAA" {
			qt = dns.TypeAAAA
		}
		ips, err := r.addrs(ctx, c.Name, qt)
		if err != nil {
			return nil, err
		}
		for _, ip := range ips {
			out = append(out, TargetConfig{URL: targetURL(c.Scheme, ip, c.Port), Weight: 100})
		}
	case "SRV":
		out, err = r.srv(ctx, c)
		if err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("resolving %q: unknown record type %q", c.Name, c.Type)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("resolving %s %q: %w", c.Type, c.Name, errEmptyAnswer)
	}
	slices.SortFunc(out, func(a, b TargetConfig) int {
		if a.URL < b.URL {
			return -1
		}
		if a.URL > b.URL {
			return 1
		}
		return 0
	})
	// Two SRV records naming the same address would be one target twice.
	out = slices.CompactFunc(out, func(a, b TargetConfig) bool { return a.URL == b.URL })
	return out, nil
}

func targetURL(scheme string, ip net.IP, port int) string {
	return scheme + "://" + net.JoinHostPort(ip.String(), strconv.Itoa(port))
}

func resolverServers(addr string) ([]string, error) {
	if addr != "" {
		return []string{addr}, nil
	}
	cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil {
		return nil, fmt.Errorf("reading the system resolver: %w", err)
	}
	if len(cc.Servers) == 0 {
		return nil, errors.New("reading the system resolver: /etc/resolv.conf lists no nameserver")
	}
	out := make([]string, len(cc.Servers))
	for i, s := range cc.Servers {
		out[i] = net.JoinHostPort(s, cc.Port)
	}
	return out, nil
}

type dnsResolver struct{ servers []string }

// query asks each server in turn until one answers, over UDP and again
// over TCP when the answer was truncated.
func (r *dnsResolver) query(ctx context.Context, name string, qt uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qt)
	m.RecursionDesired = true
	var last error
	for _, srv := range r.servers {
		c := &dns.Client{Timeout: dnsTimeout}
		in, _, err := c.ExchangeContext(ctx, m, srv)
		if err == nil && in.Truncated {
			c.Net = "tcp"
			in, _, err = c.ExchangeContext(ctx, m, srv)
		}
		if err != nil {
			last = fmt.Errorf("querying %s for %s %q: %w", srv, dns.TypeToString[qt], name, err)
			continue
		}
		if in.Rcode != dns.RcodeSuccess {
			return nil, fmt.Errorf("querying %s for %s %q: %s", srv, dns.TypeToString[qt], name, dns.RcodeToString[in.Rcode])
		}
		return in, nil
	}
	return nil, last
}

func (r *dnsResolver) addrs(ctx context.Context, name string, qt uint16) ([]net.IP, error) {
	in, err := r.query(ctx, name, qt)
	if err != nil {
		return nil, err
	}
	return addrsOf(in.Answer, ""), nil
}

// addrsOf collects the A and AAAA records of rrs, only those of name when
// name is not empty.
func addrsOf(rrs []dns.RR, name string) []net.IP {
	var out []net.IP
	for _, rr := range rrs {
		if name != "" && dns.CanonicalName(rr.Header().Name) != dns.CanonicalName(name) {
			continue
		}
		switch a := rr.(type) {
		case *dns.A:
			out = append(out, a.A)
		case *dns.AAAA:
			out = append(out, a.AAAA)
		}
	}
	return out
}

func (r *dnsResolver) srv(ctx context.Context, c DNSConfig) ([]TargetConfig, error) {
	in, err := r.query(ctx, c.Name, dns.TypeSRV)
	if err != nil {
		return nil, err
	}
	var recs []*dns.SRV
	for _, rr := range in.Answer {
		// A target of "." says the service is not available at this name.
		if s, ok := rr.(*dns.SRV); ok && s.Target != "." {
			recs = append(recs, s)
		}
	}
	if len(recs) == 0 {
		return nil, nil
	}
	prio := recs[0].Priority
	allZero := true
	for _, s := range recs {
		prio = min(prio, s.Priority)
		allZero = allZero && s.Weight == 0
	}
	var out []TargetConfig
	for _, s := range recs {
		if s.Priority != prio {
			continue
		}
		ips := addrsOf(in.Extra, s.Target)
		if len(ips) == 0 {
			if ips, err = r.addrs(ctx, s.Target, dns.TypeA); err != nil {
				return nil, err
			}
		}
		if len(ips) == 0 {
			if ips, err = r.addrs(ctx, s.Target, dns.TypeAAAA); err != nil {
				return nil, err
			}
		}
		w := 100
		if !allZero {
			w = min(max(int(s.Weight), 1), 1000)
		}
		for _, ip := range ips {
			out = append(out, TargetConfig{URL: targetURL(c.Scheme, ip, int(s.Port)), Weight: w})
		}
	}
	return out, nil
}

// DNSWatcher re-resolves one service's name on an interval.
type DNSWatcher struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// WatchDNS resolves c at once and then every c.Interval, and calls update
// (from its own goroutine) with the new target list each time it differs
// from the last one delivered.
//
// A failed resolution, and an empty answer, keep the last known targets:
// the failure is logged and counted in weir_discovery_errors_total. An
// empty answer is far more often a fault (a zone being reloaded, a typo in
// a record, a resolver that lost its upstream) than an intended "no
// instance": emptying the service would turn every request into a 503 at
// once, while keeping the last targets costs at most failed tries against
// instances that are really gone, which health checks and the breaker take
// out. To take a service's traffic away, change its routes.
func WatchDNS(c DNSConfig, update func([]TargetConfig)) *DNSWatcher {
	if c.Log == nil {
		c.Log = slog.Default()
	}
	errs := metrics.GetOrCreateCounter(fmt.Sprintf(`weir_discovery_errors_total{service=%q}`, c.Service))
	ctx, cancel := context.WithCancel(context.Background())
	w := &DNSWatcher{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		last := c.Known
		// A resolver that stays down fails every interval; the log says
		// so when the failure starts or changes and when it ends, the
		// metric counts every one.
		lastErr := ""
		t := time.NewTicker(c.Interval)
		defer t.Stop()
		for {
			got, err := ResolveDNS(ctx, c)
			if ctx.Err() != nil {
				return
			}
			if err == nil && lastErr != "" {
				c.Log.Info("dns discovery: resolving again", "service", c.Service, "name", c.Name)
				lastErr = ""
			}
			switch {
			case err != nil:
				errs.Inc()
				if err.Error() != lastErr {
					lastErr = err.Error()
					c.Log.Warn("dns discovery failed; keeping the last known targets",
						"service", c.Service, "name", c.Name, "targets", len(last), "error", err)
				}
			case !slices.Equal(got, last):
				c.Log.Info("dns discovery: targets changed", "service", c.Service, "name", c.Name, "targets", len(got))
				last = got
				update(got)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// Stop ends the watcher without waiting for it: update may be running and
// waiting on a lock the caller holds. Wait waits.
func (w *DNSWatcher) Stop() { w.cancel() }

// Wait returns once the watcher's goroutine has ended (after Stop).
func (w *DNSWatcher) Wait() { <-w.done }
