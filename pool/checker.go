package pool

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/proxy/transport"
)

// checker probes one target (of one service) with GET path every interval.
// There is at most one running checker per targetState, shared by every
// started snapshot of the service (refs), so a reload neither doubles the
// probes nor resets their counters.
//
// It has its own one-connection client, separate from the request pool:
// a saturated pool (MaxConnsPerTarget busy) must not make probes wait and
// the target look dead. Probes send "Connection: close" and skip the body,
// so every probe also checks that the target accepts new connections, and
// no idle connection (nor fasthttp idle-cleaner goroutine) outlives it.
type checker struct {
	st  *targetState
	cfg activeCfg
	url string // full probe URL
	hc  *fasthttp.HostClient
	// h2 probes an HTTP/2 target (h2c, grpc, h2, grpcs) over HTTP/2,
	// which such a target may be all it speaks, with the gateway's own
	// HTTP/2 client: a transport of these settings per probe; nil for
	// HTTP/1.1.
	h2   *transport.Config
	host string // the HTTP/2 probe's :authority

	ctx    context.Context // cancelled by halt: aborts a dial in progress
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	halted  bool
	conn    net.Conn // the probe's connection, closed by halt to abort a read
	network string

	refs int // guarded by Registry.mu

	// Goroutine-local counters of consecutive outcomes.
	okRun, failRun int
}

func newChecker(st *targetState, t target, cfg activeCfg, tlsCfg *tls.Config) *checker {
	c := &checker{
		st:      st,
		cfg:     cfg,
		url:     t.url + cfg.path,
		done:    make(chan struct{}),
		network: "tcp4",
	}
	if t.ip6 {
		c.network = "tcp"
	}
	if t.h2 {
		c.initH2(t, checkTLS(tlsCfg, t.tls))
	}
	c.hc = &fasthttp.HostClient{
		Addr:                      t.addr,
		IsTLS:                     t.tls,
		TLSConfig:                 checkTLS(tlsCfg, t.tls),
		Dial:                      c.dial,
		MaxConns:                  1,
		ReadTimeout:               cfg.timeout,
		WriteTimeout:              cfg.timeout,
		NoDefaultUserAgentHeader:  true,
		DisablePathNormalizing:    true,
		MaxIdemponentCallAttempts: 1,
		RetryIfErr:                func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
	}
	return c
}

// checkTLS gives a checker of an https target its own copy of the
// service's TLS settings with its own session cache: every probe is a new
// connection, and resuming the last session spares the target a full
// handshake per probe. Go keys the cache by server name, which targets of
// a service may share, hence one cache per checker.
func checkTLS(c *tls.Config, isTLS bool) *tls.Config {
	if !isTLS {
		return nil
	}
	if c == nil {
		c = &tls.Config{MinVersion: tls.VersionTLS12}
	} else {
		c = c.Clone()
	}
	c.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	return c
}

// start launches the probe loop; the caller holds Registry.mu.
func (c *checker) start() {
	c.ctx, c.cancel = context.WithCancel(context.Background())
	go c.run()
}

// halt stops verdicts at once and aborts a probe in progress; it does not
// wait (it may be called under Registry.mu).
func (c *checker) halt() {
	c.mu.Lock()
	c.halted = true
	if c.conn != nil {
		c.conn.Close()
	}
	c.mu.Unlock()
	c.cancel()
}

// wait returns once the probe goroutine has exited.
func (c *checker) wait() { <-c.done }

func (c *checker) dial(addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: c.cfg.timeout}
	conn, err := d.DialContext(c.ctx, c.network, addr)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.halted {
		conn.Close()
		return nil, context.Canceled
	}
	c.conn = conn
	return conn, nil
}

func (c *checker) run() {
	defer close(c.done)
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(fasthttp.MethodGet)
	req.SetRequestURI(c.url)
	req.Header.Set(fasthttp.HeaderUserAgent, "weir-health-check")
	req.SetConnectionClose()
	resp.SkipBody = true

	t := time.NewTicker(c.cfg.interval)
	defer t.Stop()
	for {
		// The first probe runs at once, so a new target's state is known
		// after one round trip rather than one interval.
		var ok bool
		if c.h2 != nil {
			code, err := c.probeH2(req, resp)
			ok = err == nil && c.cfg.expect.has(code)
		} else {
			err := c.hc.DoTimeout(req, resp, c.cfg.timeout)
			ok = err == nil && c.cfg.expect.has(resp.StatusCode())
		}
		if !c.verdict(ok) {
			return
		}
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// verdict applies one probe outcome; false once the checker is halted.
// HealthyAfter successes in a row bring a down target back,
// UnhealthyAfter failures take an up one out. A success also ends a
// passive ejection early: the target answered its health endpoint.
func (c *checker) verdict(ok bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.halted {
		return false
	}
	c.conn = nil
	st := c.st
	if ok {
		c.okRun++
		c.failRun = 0
		st.passiveUntil.Store(0)
		st.consecFail.Store(0)
		if st.activeDown.Load() && c.okRun >= c.cfg.healthyAfter {
			st.activeDown.Store(false)
		}
	} else {
		c.failRun++
		c.okRun = 0
		if !st.activeDown.Load() && c.failRun >= c.cfg.unhealthyAfter {
			st.activeDown.Store(true)
		}
	}
	return true
}

// initH2 makes the probes of an HTTP/2 target HTTP/2 GETs through the
// gateway's own HTTP/2 client (proxy/transport), each on a new
// connection, over TLS with ALPN h2 when the target is h2:// or
// grpcs://.
func (c *checker) initH2(t target, tlsCfg *tls.Config) {
	c.host = t.host
	c.h2 = &transport.Config{Addr: t.addr, TLS: tlsCfg, HTTP2: true, MaxConns: 1,
		ConnectTimeout: c.cfg.timeout, IdleTimeout: c.cfg.timeout}
}

// probeH2 is one HTTP/2 probe: its status, or why there is none. halt
// ends it (c.ctx); the dial is bounded by the probe's timeout.
func (c *checker) probeH2(req *fasthttp.Request, resp *fasthttp.Response) (int, error) {
	tr := transport.New(*c.h2) // every probe checks a new connection
	defer tr.Close()
	req.Header.SetHost(c.host)
	req.SetRequestURI(c.cfg.path)
	err := tr.DoContext(c.ctx, req, resp, nil, time.Now().Add(c.cfg.timeout))
	_ = resp.CloseBodyStream() // a streamed answer: its stream ends now
	if err != nil {
		return 0, err
	}
	return resp.StatusCode(), nil
}
