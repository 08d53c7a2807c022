package e2e

import (
	"encoding/json"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/valyala/fasthttp"
)

// dnsServer is a tiny authoritative server on a loopback UDP port whose
// records the test changes while the gateway resolves them.
type dnsServer struct {
	Addr string
	srv  *dns.Server
	mu   sync.Mutex
	srvs []*dns.SRV          // answer to the SRV question
	a    map[string][]net.IP // answers to A questions, by name
	slow atomic.Int64        // nanoseconds to wait before each answer
}

func startDNS(t *testing.T) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &dnsServer{Addr: pc.LocalAddr().String(), a: map[string][]net.IP{}}
	started := make(chan struct{})
	d.srv = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(d.answer), NotifyStartedFunc: func() { close(started) }}
	go func() { _ = d.srv.ActivateAndServe() }()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("the test DNS server did not start")
	}
	t.Cleanup(func() { _ = d.srv.Shutdown() })
	return d
}

func (d *dnsServer) answer(w dns.ResponseWriter, q *dns.Msg) {
	time.Sleep(time.Duration(d.slow.Load()))
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, qq := range q.Question {
		switch qq.Qtype {
		case dns.TypeSRV:
			for _, s := range d.srvs {
				rr := *s
				rr.Hdr = dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 1}
				m.Answer = append(m.Answer, &rr)
				for _, ip := range d.a[s.Target] {
					m.Extra = append(m.Extra, &dns.A{Hdr: dns.RR_Header{Name: s.Target, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1}, A: ip})
				}
			}
		case dns.TypeA:
			for _, ip := range d.a[qq.Name] {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1}, A: ip})
			}
		}
	}
	_ = w.WriteMsg(m)
}

// setSRV makes the SRV name answer one record per upstream address
// ("127.0.0.1:port"), each named t<i>.weir.test.
func (d *dnsServer) setSRV(t *testing.T, addrs ...string) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.srvs = nil
	for _, a := range addrs {
		host, port, _ := net.SplitHostPort(a)
		p, _ := strconv.Atoi(port)
		name := "t" + port + ".weir.test."
		d.a[name] = []net.IP{net.ParseIP(host)}
		d.srvs = append(d.srvs, &dns.SRV{Priority: 10, Weight: 50, Port: uint16(p), Target: name})
	}
}

// setA makes name answer one A record per IP.
func (d *dnsServer) setA(name string, ips ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.a[dns.Fqdn(name)] = nil
	for _, ip := range ips {
		d.a[dns.Fqdn(name)] = append(d.a[dns.Fqdn(name)], net.ParseIP(ip))
	}
}

// steadyLoad sends requests one after another until stopped, recording
// which upstream answered each and every failure.
type steadyLoad struct {
	mu       sync.Mutex
	servers  []string // in order
	failures []string
	stop     atomic.Bool
	done     chan struct{}
}

func startSteadyLoad(c *fasthttp.HostClient) *steadyLoad {
	l := &steadyLoad{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for !l.stop.Load() {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			req.SetRequestURI("http://" + c.Addr + "/x")
			err := c.DoTimeout(req, resp, 5*time.Second)
			var r struct {
				Server string `json:"server"`
			}
			l.mu.Lock()
			switch {
			case err != nil:
				l.failures = append(l.failures, err.Error())
			case resp.StatusCode() != 200:
				l.failures = append(l.failures, strconv.Itoa(resp.StatusCode())+" "+string(resp.Body()))
			case json.Unmarshal(resp.Body(), &r) != nil:
				l.failures = append(l.failures, "not an echo answer: "+string(resp.Body()))
			default:
				l.servers = append(l.servers, r.Server)
			}
			l.mu.Unlock()
			fasthttp.ReleaseRequest(req)
			fasthttp.ReleaseResponse(resp)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return l
}

// since returns the servers that answered after the first n answers.
func (l *steadyLoad) since(n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.servers[min(n, len(l.servers)):]...)
}

func (l *steadyLoad) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.servers)
}

// waitFor polls ok over the answers received after mark, up to limit, and
// returns how long it took.
func (l *steadyLoad) waitFor(t *testing.T, what string, limit time.Duration, ok func([]string) bool) time.Duration {
	t.Helper()
	start := time.Now()
	mark := l.count()
	for time.Since(start) < limit {
		if ok(l.since(mark)) {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s; answers since: %v", what, limit, l.since(mark))
	return 0
}

// all holds when the last 20 answers came from the upstream named name.
func all(name string) func([]string) bool {
	return func(s []string) bool {
		if len(s) < 20 {
			return false
		}
		for _, x := range s[len(s)-20:] {
			if x != name {
				return false
			}
		}
		return true
	}
}

// both holds when upstreams a and b have each answered.
func both(a, b string) func([]string) bool {
	return func(s []string) bool { return slices.Contains(s, a) && slices.Contains(s, b) }
}

// failed fails t when any request of the stopped load failed or fewer
// than least were sent, and logs how many were.
func (l *steadyLoad) failed(t *testing.T, least int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) > 0 {
		t.Fatalf("%d of %d requests failed while targets changed, e.g. %q", len(l.failures), len(l.failures)+len(l.servers), l.failures[0])
	}
	if len(l.servers) < least {
		t.Fatalf("only %d requests were sent: the load did not run", len(l.servers))
	}
	t.Logf("%d requests, none failed", len(l.servers))
}

// TestDNSDiscoverySRV runs the gateway with a service whose targets come
// from SRV records on a DNS server the test controls, and changes the
// records under steady traffic: an added target serves within about a
// second, a removed one stops, no request fails (from the first one on),
// a file reload keeps the discovered targets, and when the DNS server
// goes away the last known targets keep serving while
// weir_discovery_errors_total counts the failed resolutions.
func TestDNSDiscoverySRV(t *testing.T) {
	d := startDNS(t)
	one, two := startEcho(t, "one"), startEcho(t, "two")
	d.setSRV(t, one)
	cfg := `
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services:
  - name: api
    discovery: {dns: "_http._tcp.api.weir.test", interval: 200ms, resolver: "` + d.Addr + `"}
routes:
  - {name: api, paths: ["/"], service: api}
`
	w := startWeir(t, cfg)
	c := newClient(w.Addr)
	l := startSteadyLoad(c)
	defer func() {
		l.stop.Store(true)
		<-l.done
	}()
	// The gateway resolves before it serves: the first request already
	// has a target (a failure would be counted below).
	l.waitFor(t, "target one serves", 5*time.Second, all("one"))

	d.setSRV(t, one, two)
	took := l.waitFor(t, "both targets serve", 3*time.Second, both("one", "two"))
	t.Logf("target two served %s after it was added to DNS", took)

	// A file reload keeps the discovered targets: they are not in the
	// file, and the service must not lose them until the next answer.
	v := w.configVersion()
	w.write(cfg + "  - {name: other, paths: [\"/other\"], service: api}\n")
	w.waitVersion(v + 1)
	l.waitFor(t, "both targets serve after a file reload", 3*time.Second, func(s []string) bool {
		return len(s) >= 20 && slices.Contains(s, "one") && slices.Contains(s, "two")
	})

	// Slow requests in flight on target one when DNS drops it finish.
	type slowResult struct {
		code int
		body string
	}
	slow := make(chan slowResult, 10)
	for range cap(slow) {
		go func() {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("http://" + w.Addr + "/sleep/1000")
			if err := c.DoTimeout(req, resp, 10*time.Second); err != nil {
				slow <- slowResult{0, err.Error()}
				return
			}
			slow <- slowResult{resp.StatusCode(), string(resp.Body())}
		}()
	}
	time.Sleep(200 * time.Millisecond) // all sent, all still sleeping upstream

	d.setSRV(t, two)
	took = l.waitFor(t, "only target two serves", 3*time.Second, all("two"))
	t.Logf("target one stopped serving %s after it was removed from DNS", took)
	onOne := 0
	for range cap(slow) {
		r := <-slow
		if r.code != 200 {
			t.Fatalf("a request in flight while targets changed failed: %d %s", r.code, r.body)
		}
		if strings.Contains(r.body, `"server":"one"`) {
			onOne++
		}
	}
	if onOne == 0 {
		t.Fatal("no slow request went to target one: the drain was not exercised")
	}
	t.Logf("%d slow requests in flight on target one when it was removed finished", onOne)

	errsBefore := w.metric(`weir_discovery_errors_total{service="api"}`)
	_ = d.srv.Shutdown()
	if !waitUntil(5*time.Second, 50*time.Millisecond, func() bool {
		return w.metric(`weir_discovery_errors_total{service="api"}`) >= errsBefore+2
	}) {
		t.Fatalf("weir_discovery_errors_total did not rise after the DNS server stopped (was %v)", errsBefore)
	}
	// Still served by the last known target, a second after DNS went away.
	time.Sleep(time.Second)
	l.waitFor(t, "the last known target keeps serving", 3*time.Second, all("two"))

	l.stop.Store(true)
	<-l.done
	l.failed(t, 200)
}

// TestDNSDiscoveryARecords: a service whose targets are the A records of
// a plain name, each with the port from the config, on a DNS server the
// test runs: an address added to the name serves within the interval, a
// removed one stops, and no request fails under steady traffic.
func TestDNSDiscoveryARecords(t *testing.T) {
	d := startDNS(t)
	one := startEchoOn(t, "one", "127.0.0.2:0")
	_, port, _ := net.SplitHostPort(one)
	startEchoOn(t, "two", "127.0.0.3:"+port)
	d.setA("api.weir.test", "127.0.0.2")
	w := startWeir(t, `
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services:
  - name: api
    discovery: {dns: "api.weir.test", port: `+port+`, interval: 200ms, resolver: "`+d.Addr+`"}
routes:
  - {name: api, paths: ["/"], service: api}
`)
	l := startSteadyLoad(newClient(w.Addr))
	defer func() {
		l.stop.Store(true)
		<-l.done
	}()
	l.waitFor(t, "127.0.0.2 serves", 5*time.Second, all("one"))
	d.setA("api.weir.test", "127.0.0.2", "127.0.0.3")
	took := l.waitFor(t, "both addresses serve", 3*time.Second, both("one", "two"))
	t.Logf("127.0.0.3 served %s after it was added to the name", took)
	d.setA("api.weir.test", "127.0.0.3")
	took = l.waitFor(t, "only 127.0.0.3 serves", 3*time.Second, all("two"))
	t.Logf("127.0.0.2 stopped serving %s after it was removed from the name", took)
	l.stop.Store(true)
	<-l.done
	l.failed(t, 60)
}

// TestDNSDiscoveryFirstRequest: with a resolver that takes 500ms to
// answer, the gateway's first request is already served by a discovered
// target; the gateway resolves once before it starts serving rather than
// answering 503 until its watcher's first answer.
func TestDNSDiscoveryFirstRequest(t *testing.T) {
	d := startDNS(t)
	one := startEcho(t, "one")
	d.setSRV(t, one)
	d.slow.Store(int64(500 * time.Millisecond))
	w := startWeir(t, `
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services:
  - name: api
    discovery: {dns: "_http._tcp.api.weir.test", resolver: "`+d.Addr+`"}
routes:
  - {name: api, paths: ["/"], service: api}
`)
	code, body, _ := get(t, newClient(w.Addr), "/x", nil)
	if code != 200 || !strings.Contains(body, `"server":"one"`) {
		t.Fatalf("first request: %d %s", code, body)
	}
}
