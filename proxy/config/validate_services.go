package config

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"time"
)

var balancers = []string{BalancerRoundRobin, BalancerLeastConn, BalancerConsistentHash, BalancerRandom}

// Limits of service settings.
const (
	MaxRetries = 10
	MaxWeight  = 1000
)

func (v *validator) checkServices() {
	first := map[string]int{}
	for i := range v.c.Services {
		s := &v.c.Services[i]
		p := index("services", i)
		v.name(key(p, "name"), "service", s.Name, first, "services", i)
		v.targets(p, s)
		v.balancer(p, s)
		if s.Retries != nil && (*s.Retries < 0 || *s.Retries > MaxRetries) {
			v.add(key(p, "retries"), "%d is out of range: use 0 (no retry) to %d", *s.Retries, MaxRetries)
		}
		v.duration(key(p, "connect_timeout"), s.ConnectTimeout, time.Millisecond, 0)
		v.duration(key(p, "timeout"), s.Timeout, time.Millisecond, 0)
		v.duration(key(p, "max_conn_wait"), s.MaxConnWait, 0, 0)
		if s.MaxConnsPerTarget < 0 {
			v.add(key(p, "max_conns_per_target"), "%d is negative: use a number of connections (the default is %d)", s.MaxConnsPerTarget, DefaultMaxConnsPerTarget)
		}
		if s.HealthCheck != nil {
			v.activeCheck(key(key(p, "health_check"), "active"), s.HealthCheck.Active)
			v.passiveCheck(key(key(p, "health_check"), "passive"), s.HealthCheck.Passive)
		}
		v.breaker(key(p, "circuit_breaker"), s.CircuitBreaker)
		v.upstreamTLS(key(p, "tls"), s.TLS)
		v.discovery(key(p, "discovery"), s.Discovery)
	}
}

// MinDiscoveryInterval bounds how often a service's DNS name is re-resolved.
const MinDiscoveryInterval = 100 * time.Millisecond

func (v *validator) discovery(p string, d *Discovery) {
	if d == nil {
		return
	}
	name := strings.TrimSuffix(d.DNS, ".")
	switch {
	case name == "":
		v.add(key(p, "dns"), `a DNS name is required, e.g. "_http._tcp.users.svc.example" (SRV) or "users.svc.example" (A/AAAA, with port)`)
	case len(name) > 253 || strings.ContainsAny(name, " /:@"):
		v.add(key(p, "dns"), "%q is not a DNS name", d.DNS)
	}
	switch d.Type {
	case "", DiscoverySRV:
		if d.Port != 0 {
			v.add(key(p, "port"), "an SRV record carries the port: remove port, or use type A or AAAA")
		}
	case DiscoveryA, DiscoveryAAAA:
		if d.Port < 1 || d.Port > 65535 {
			v.add(key(p, "port"), "%d is out of range: type %s needs the targets' port, 1 to 65535", d.Port, d.Type)
		}
	default:
		v.add(key(p, "type"), "%q is not a record type discovery reads: use SRV, A or AAAA", d.Type)
	}
	if d.Scheme != "" && d.Scheme != "http" && d.Scheme != "https" {
		v.add(key(p, "scheme"), "%q is not a scheme targets use: use http or https", d.Scheme)
	}
	v.duration(key(p, "interval"), d.Interval, MinDiscoveryInterval, 0)
	if d.Resolver != "" {
		host, port, err := net.SplitHostPort(d.Resolver)
		if err != nil || net.ParseIP(host) == nil || port == "" {
			v.add(key(p, "resolver"), "%q is not an IP:port address, e.g. \"127.0.0.53:53\"", d.Resolver)
		}
	}
}

// upstreamTLS checks the settings that need no file; the files are read
// (and a mismatched cert and key refused) when the config is compiled,
// which `weir validate` does too.
func (v *validator) upstreamTLS(p string, t *UpstreamTLS) {
	if t == nil {
		return
	}
	if (t.Cert == "") != (t.Key == "") {
		if t.Cert == "" {
			v.add(key(p, "cert"), "key is set without cert: give both (a PEM certificate and its private key) or neither")
		} else {
			v.add(key(p, "key"), "cert is set without key: give both (a PEM certificate and its private key) or neither")
		}
	}
	if _, ok := UpstreamTLSVersion(t.MinVersion); !ok {
		v.add(key(p, "min_version"), `%q is not a TLS version this gateway speaks: use "1.2" or "1.3"`, t.MinVersion)
	}
	if t.ServerName != "" && (strings.ContainsAny(t.ServerName, " /:") || strings.HasSuffix(t.ServerName, ".")) {
		v.add(key(p, "server_name"), "%q is not a host name: give the name the upstream's certificate is issued for, without port or trailing dot", t.ServerName)
	}
}

// UpstreamTLSVersion maps services[].tls.min_version to its crypto/tls
// constant; "" is the default.
func UpstreamTLSVersion(s string) (uint16, bool) {
	switch s {
	case "", "1.2":
		return tls.VersionTLS12, true
	case "1.3":
		return tls.VersionTLS13, true
	}
	return 0, false
}

// Warnings lists what is valid but unsafe, each with its place, for
// `weir validate` (which prints them and still succeeds) and `weir run`
// (which logs them).
func Warnings(c *Config, file string) ErrorList {
	var w ErrorList
	for i, s := range c.Services {
		if s.TLS != nil && s.TLS.InsecureSkipVerify {
			w = append(w, &Error{File: file, Place: key(key(index("services", i), "tls"), "insecure_skip_verify"),
				Msg: "true turns off verification of the upstream's certificate: anyone on the path can read and change the traffic; give tls.ca instead"})
		}
	}
	for i, l := range c.Listen {
		if l.TLS == nil {
			continue
		}
		place := "listen"
		if len(c.Listen) > 1 {
			place = index("listen", i)
		}
		for j, name := range l.TLS.Ciphers {
			if _, aead, ok := TLSCipherSuite(name); ok && !aead {
				w = append(w, &Error{File: file, Place: index(key(key(place, "tls"), "ciphers"), j),
					Msg: fmt.Sprintf("%q is a CBC suite, outside the default policy (CBC in TLS 1.2 is the Lucky13 / padding-oracle class): keep it only while clients that lack AES-GCM and ChaCha20 need it", name)})
			}
		}
	}
	return w
}

// name checks a service or route name: syntax and uniqueness. first maps
// names to the index of their first holder.
func (v *validator) name(place, what, name string, first map[string]int, list string, i int) {
	switch {
	case name == "":
		v.add(place, `a %s needs a name: letters, digits, "_", "." and "-"`, what)
	case !validName(name):
		v.add(place, `%q has characters other than letters, digits, "_", "." and "-": rename it`, name)
	default:
		if j, dup := first[name]; dup {
			v.add(place, "%s[%d] is already named %q: %s names must be unique", list, j, name, what)
			return
		}
		first[name] = i
	}
}

func (v *validator) targets(p string, s *Service) {
	seen := map[string]int{}
	for j, t := range s.Targets {
		tp := index(key(p, "targets"), j)
		u, err := CanonicalTargetURL(t.URL)
		if err != nil {
			v.add(key(tp, "url"), "%v", err)
		} else if k, dup := seen[u]; dup {
			v.add(key(tp, "url"), "%q is also targets[%d]: list a target once and give it a larger weight instead", t.URL, k)
		} else {
			seen[u] = j
		}
		if t.Weight != nil && (*t.Weight < 0 || *t.Weight > MaxWeight) {
			v.add(key(tp, "weight"), "%d is out of range: use 0 (drained) to %d (the default is %d)", *t.Weight, MaxWeight, DefaultWeight)
		}
	}
}

func (v *validator) balancer(p string, s *Service) {
	b := s.Balancer
	known := b == ""
	for _, x := range balancers {
		known = known || b == x
	}
	if !known {
		v.add(key(p, "balancer"), "unknown balancer %q%s: use one of %s", b, didYouMean(b, balancers), quoteList(balancers))
		return
	}
	if s.HashOn == "" {
		return
	}
	if b != BalancerConsistentHash {
		v.add(key(p, "hash_on"), "hash_on is only used by balancer consistent_hash: set balancer: consistent_hash or remove hash_on")
		return
	}
	if err := checkHashOn(s.HashOn); err != nil {
		v.add(key(p, "hash_on"), "%v", err)
	}
}

func (v *validator) activeCheck(p string, a *ActiveHealthCheck) {
	if a == nil {
		return
	}
	if a.Path != "" && a.Path[0] != '/' {
		v.add(key(p, "path"), "%q must start with \"/\", such as %q", a.Path, DefaultActivePath)
	}
	v.duration(key(p, "interval"), a.Interval, 100*time.Millisecond, 0)
	v.duration(key(p, "timeout"), a.Timeout, time.Millisecond, 0)
	interval, timeout := or(a.Interval, DefaultActiveInterval), or(a.Timeout, DefaultActiveTimeout)
	if a.Timeout >= 0 && a.Interval >= 0 && timeout > interval {
		v.add(key(p, "timeout"), "%s is longer than the interval %s, so probes would overlap: shorten timeout or lengthen interval", timeout, interval)
	}
	v.count(key(p, "healthy_after"), a.HealthyAfter, 100)
	v.count(key(p, "unhealthy_after"), a.UnhealthyAfter, 100)
	for i, st := range a.ExpectStatus {
		if st < 100 || st > 599 {
			v.add(index(key(p, "expect_status"), i), "%d is not an HTTP status: use 100 to 599", st)
		}
	}
}

func (v *validator) passiveCheck(p string, ph *PassiveHealthCheck) {
	if ph == nil {
		return
	}
	v.count(key(p, "unhealthy_after"), ph.UnhealthyAfter, 1000)
	if ph.HealthyAfterMs < 0 {
		v.add(key(p, "healthy_after_ms"), "%d is negative: use a number of milliseconds (the default is %d)", ph.HealthyAfterMs, DefaultPassiveHealthyAfter)
	}
}

func (v *validator) breaker(p string, cb *CircuitBreaker) {
	if cb == nil {
		return
	}
	if !(cb.FailureRatio >= 0 && cb.FailureRatio <= 1) {
		v.add(key(p, "failure_ratio"), "%v is out of range: use a ratio above 0 and at most 1, such as %v", cb.FailureRatio, DefaultFailureRatio)
	}
	if cb.MinRequests < 0 {
		v.add(key(p, "min_requests"), "%d is negative: use at least 1 (the default is %d)", cb.MinRequests, DefaultMinRequests)
	}
	v.duration(key(p, "window"), cb.Window, 100*time.Millisecond, 0)
	v.duration(key(p, "open_for"), cb.OpenFor, time.Millisecond, 0)
}

// count checks a consecutive-events threshold: 0 is the default, else 1..hi.
func (v *validator) count(place string, n, hi int) {
	if n < 0 || n > hi {
		v.add(place, "%d is out of range: use 1 to %d", n, hi)
	}
}

func or(d Duration, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d.D()
}

// knownServices formats the service names for "no service named" errors.
func (v *validator) knownServices(name string) string {
	if len(v.serviceNames) == 0 {
		return " (no services are defined)"
	}
	if s := didYouMean(name, v.serviceNames); s != "" {
		return s
	}
	names := v.serviceNames
	more := ""
	if len(names) > 10 {
		names, more = names[:10], fmt.Sprintf(", and %d more", len(v.serviceNames)-10)
	}
	return " (known: " + quoteList(names) + more + ")"
}
