package pool

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// zone is a tiny DNS server on a loopback UDP port answering from records
// the test sets; it never puts anything in the extra section, so SRV
// targets must be resolved with follow-up queries.
type zone struct {
	addr string
	mu   sync.Mutex
	rrs  map[uint16][]dns.RR // by question type; name is not checked
	nx   bool
}

func startZone(t *testing.T) *zone {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	z := &zone{addr: pc.LocalAddr().String(), rrs: map[uint16][]dns.RR{}}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
			m := new(dns.Msg)
			m.SetReply(q)
			z.mu.Lock()
			if z.nx {
				m.Rcode = dns.RcodeNameError
			}
			for _, rr := range z.rrs[q.Question[0].Qtype] {
				if strings.EqualFold(rr.Header().Name, q.Question[0].Name) {
					m.Answer = append(m.Answer, rr)
				}
			}
			z.mu.Unlock()
			_ = w.WriteMsg(m)
		})}
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return z
}

func (z *zone) set(records ...string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.rrs = map[uint16][]dns.RR{}
	for _, r := range records {
		rr, err := dns.NewRR(r)
		if err != nil {
			panic(err)
		}
		z.rrs[rr.Header().Rrtype] = append(z.rrs[rr.Header().Rrtype], rr)
	}
}

func TestResolveDNS(t *testing.T) {
	z := startZone(t)
	ctx := context.Background()
	base := DNSConfig{Service: "s", Scheme: "http", Resolver: z.addr}
	urls := func(ts []TargetConfig) string {
		var out []string
		for _, x := range ts {
			out = append(out, x.URL+"@"+strconv.Itoa(x.Weight))
		}
		return strings.Join(out, " ")
	}
	for _, c := range []struct {
		name, typ, q string
		port         int
		records      []string
		want         string
	}{
		{"A with port", "A", "api.test", 8080, []string{"api.test. 5 IN A 10.0.0.2", "api.test. 5 IN A 10.0.0.1", "other.test. 5 IN A 10.9.9.9"},
			"http://10.0.0.1:8080@100 http://10.0.0.2:8080@100"},
		{"AAAA", "AAAA", "api.test", 80, []string{"api.test. 5 IN AAAA ::1"}, "http://[::1]:80@100"},
		{"SRV lowest priority, weights, follow-up A", "SRV", "_http._tcp.api.test", 0, []string{
			"_http._tcp.api.test. 5 IN SRV 10 30 9001 a.test.",
			"_http._tcp.api.test. 5 IN SRV 10 0 9002 b.test.",
			"_http._tcp.api.test. 5 IN SRV 20 50 9003 c.test.", // backup: not used
			"a.test. 5 IN A 10.0.0.1", "b.test. 5 IN A 10.0.0.2", "c.test. 5 IN A 10.0.0.3",
		}, "http://10.0.0.1:9001@30 http://10.0.0.2:9002@1"},
		{"SRV all weights 0, AAAA fallback", "SRV", "_x._tcp.api.test", 0, []string{
			"_x._tcp.api.test. 5 IN SRV 0 0 9001 a.test.",
			"a.test. 5 IN AAAA ::1",
		}, "http://[::1]:9001@100"},
	} {
		t.Run(c.name, func(t *testing.T) {
			z.set(c.records...)
			cfg := base
			cfg.Name, cfg.Type, cfg.Port = c.q, c.typ, c.port
			got, err := ResolveDNS(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if urls(got) != c.want {
				t.Fatalf("got %s\nwant %s", urls(got), c.want)
			}
		})
	}

	z.set()
	cfg := base
	cfg.Name, cfg.Type = "_http._tcp.api.test", "SRV"
	if _, err := ResolveDNS(ctx, cfg); !errors.Is(err, errEmptyAnswer) {
		t.Fatalf("empty answer: %v", err)
	}
	z.mu.Lock()
	z.nx = true
	z.mu.Unlock()
	if _, err := ResolveDNS(ctx, cfg); err == nil || !strings.Contains(err.Error(), "NXDOMAIN") {
		t.Fatalf("NXDOMAIN: %v", err)
	}
}

// TestWatchDNSKeepsLastKnown: a watcher delivers changes only, and an
// empty answer or a dead resolver keeps the last targets (no update).
func TestWatchDNSKeepsLastKnown(t *testing.T) {
	checkLeaks(t)
	z := startZone(t)
	z.set("api.test. 5 IN A 10.0.0.1")
	updates := make(chan []TargetConfig, 16)
	w := WatchDNS(DNSConfig{Service: "watch", Name: "api.test", Type: "A", Port: 80, Scheme: "http",
		Interval: 20 * time.Millisecond, Resolver: z.addr, Log: slog.New(slog.DiscardHandler)}, func(ts []TargetConfig) { updates <- ts })
	defer func() { w.Stop(); w.Wait() }()
	next := func() []TargetConfig {
		select {
		case ts := <-updates:
			return ts
		case <-time.After(5 * time.Second):
			t.Fatal("no update")
			return nil
		}
	}
	if ts := next(); len(ts) != 1 || ts[0].URL != "http://10.0.0.1:80" {
		t.Fatalf("first: %v", ts)
	}
	z.set("api.test. 5 IN A 10.0.0.1", "api.test. 5 IN A 10.0.0.2")
	if ts := next(); len(ts) != 2 {
		t.Fatalf("second: %v", ts)
	}
	z.set()
	time.Sleep(200 * time.Millisecond) // ~10 resolutions, all empty
	select {
	case ts := <-updates:
		t.Fatalf("an empty answer replaced the targets with %v", ts)
	default:
	}
}
