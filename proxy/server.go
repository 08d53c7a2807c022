// Package proxy is Weir's data plane: the fasthttp server, the compiled
// config snapshot and its atomic swap, the filter chain runner, forwarding
// to upstreams, and the gateway's own error responses.
package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/redis/rueidis"
	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/internal/acceptretry"
	"github.com/weirgw/weir/internal/fusedio"
	"github.com/weirgw/weir/internal/gcfloor"
	"github.com/weirgw/weir/pool"
	"github.com/weirgw/weir/proxy/config"
	"github.com/weirgw/weir/sdk"
)

// Server is one gateway process's data plane. Create it with New, then
// Serve on one or more listeners; Apply swaps in a new config.
type Server struct {
	log *slog.Logger

	cur       atomic.Pointer[Snapshot]
	version   atomic.Int64
	applyMu   sync.Mutex // one compile+swap at a time
	pools     *pool.Registry
	upstreams *upstreams
	redis     rueidis.Client
	redisKey  string // the redis section the client was built from
	// redisConfigured is set by Validate, which connects nothing.
	redisConfigured bool

	fs             *fasthttp.Server
	statePool      sync.Pool
	maxBody        atomic.Int64
	latencyHeaders atomic.Bool
	underscores    atomic.Bool // server.underscores_in_headers
	trusted        atomic.Pointer[[]netip.Prefix]
	tracer         atomic.Pointer[tracing] // nil: tracing is off (tracing.go)

	noRoute        *metrics.Counter // 404: no route matched
	noMethod       *metrics.Counter // 405: a route matched all but the method
	reloadOK       *metrics.Counter
	reloadFailed   *metrics.Counter
	lastReloadGood atomic.Bool

	disc discovery

	retireWG sync.WaitGroup
	closed   atomic.Bool
	// logq runs the deferred log phase (logphase.go).
	logq logPhase
	// alw writes the access log (accesslog_writer.go); nil until a
	// config sets access_log. Apply's goroutine owns the field.
	alw *alWriter
	// consumers counts per-consumer traffic (analytics.go).
	consumers consumerMetrics
	drain     drainState // listeners and connections, for Shutdown (drain.go)
	ws        wsRegistry // open WebSockets (wstunnel.go)
	h2        h2Front    // HTTP/2 to clients (h2front.go)
	// accept is whether the listeners accept (/status reports it).
	accept acceptretry.State
}

// New compiles cfg (already validated) into the first snapshot. It does not
// listen; call Serve.
func New(cfg *config.Config, file string, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{
		log:          log,
		pools:        pool.NewRegistry(),
		upstreams:    newUpstreams(),
		noRoute:      metrics.GetOrCreateCounter(`weir_requests_total{route="_none",service="_none",status="404"}`),
		noMethod:     metrics.GetOrCreateCounter(`weir_requests_total{route="_none",service="_none",status="405"}`),
		reloadOK:     metrics.GetOrCreateCounter(`weir_config_reloads_total{result="success"}`),
		reloadFailed: metrics.GetOrCreateCounter(`weir_config_reloads_total{result="failure"}`),
	}
	s.statePool.New = func() any { return new(reqState) }
	config.ApplyDefaults(cfg)
	metrics.GetOrCreateGauge(`weir_config_last_reload_successful`, func() float64 {
		if s.lastReloadGood.Load() {
			return 1
		}
		return 0
	})
	if err := s.setRedis(cfg); err != nil {
		return nil, err
	}
	s.disc.watchers = map[string]*discWatch{}
	s.disc.found = map[string][]pool.TargetConfig{}
	s.resolveAtStart(cfg)
	snap, err := s.compile(cfg, file, false)
	if err != nil {
		return nil, err
	}
	s.applyServerSettings(cfg)
	if err := snap.start(); err != nil {
		snap.closeResources(s.deps(false, ""))
		return nil, err
	}
	if err := s.setAccessLog(snap, cfg, file); err != nil {
		snap.closeResources(s.deps(false, ""))
		return nil, err
	}
	snap.Version = s.version.Add(1)
	s.cur.Store(snap)
	s.lastReloadGood.Store(true)
	s.fs = s.newFastHTTPServer(cfg)
	s.initHTTP2(cfg)
	s.watchDiscovery(cfg)
	return s, nil
}

// Validate compiles cfg without starting anything, reporting every error a
// reload would report (plugin configs included).
func Validate(cfg *config.Config, file string) error {
	config.ApplyDefaults(cfg)
	s := &Server{log: slog.Default(), pools: pool.NewRegistry(), upstreams: newUpstreams(), redisConfigured: cfg.Redis != nil}
	snap, err := s.compile(cfg, file, true)
	if err != nil {
		return err
	}
	snap.closeResources(s.deps(true, ""))
	return nil
}

func (s *Server) deps(validating bool, file string) compileDeps {
	configDir := ""
	if file != "" && !strings.HasPrefix(file, "admin") && !strings.HasPrefix(file, "cluster") && !strings.HasPrefix(file, "redis:") {
		configDir = filepath.Dir(file)
	}
	return s.depsIn(validating, configDir)
}

// depsIn is deps with relative file names resolved in configDir.
func (s *Server) depsIn(validating bool, configDir string) compileDeps {
	var discovered func(string) []pool.TargetConfig
	if !validating {
		discovered = s.discovered
	}
	return compileDeps{
		discovered: discovered,
		pools:      s.pools,
		upstreams:  s.upstreams,
		validating: validating,
		configDir:  configDir,
		build: func(route, service string) *sdk.Build {
			b := &sdk.Build{Route: route, Service: service, Redis: s.redis, Log: s.log, Validating: validating,
				RedisConfigured: s.redis != nil || s.redisConfigured, ConfigDir: configDir}
			if !validating {
				b.Upstream = s.upstreamByName
			}
			return b
		},
	}
}

// upstreamByName is sdk.Build.Upstream: the service of that name in the
// running config, nil if there is none.
func (s *Server) upstreamByName(name string) sdk.Upstream {
	if snap := s.cur.Load(); snap != nil {
		if svc := snap.services[name]; svc != nil {
			return svc
		}
	}
	return nil
}

func (s *Server) compile(cfg *config.Config, file string, validating bool) (*Snapshot, error) {
	return s.compileWith(cfg, file, validating, nil)
}

// compileWith compiles cfg with consumers, or with consumers made from
// cfg when nil: the running snapshot's when they are unchanged, so that
// its plugin instances can be reused (reuse.go).
func (s *Server) compileWith(cfg *config.Config, file string, validating bool, consumers *sdk.Consumers) (*Snapshot, error) {
	d := s.deps(validating, file)
	prev := s.cur.Load()
	if consumers != nil && prev != nil {
		// A change of consumers only (ApplyConsumer): everything else is
		// the running config's, read from where it was read, so that
		// every unit that does not hold what it read from consumers is
		// kept, the first admin write after a file load too.
		d = s.depsIn(validating, prev.reuse.configDir)
	}
	d.reuse = reuseCtx{redis: s.redisKey, configDir: d.configDir}
	if !validating {
		d.prev = prev
	}
	var ckey unitKey
	known := consumers == nil
	if known {
		ckey = consumersKey(cfg.Consumers)
		if d.prev != nil && d.prev.consumersKnown && d.prev.consumersKey == ckey {
			consumers = d.prev.consumers
		} else {
			consumers = sdk.NewConsumers(sdkConsumers(cfg.Consumers))
		}
	}
	// Consumers are shared by every Build of this snapshot.
	inner := d.build
	wasmCache := config.WasmCacheDir(&cfg.Server, d.configDir)
	d.build = func(route, service string) *sdk.Build {
		b := inner(route, service)
		b.Consumers = consumers
		b.WasmCacheDir = wasmCache
		return b
	}
	snap, err := compile(cfg, file, consumers, d)
	if snap != nil {
		snap.consumersKey, snap.consumersKnown = ckey, known
	}
	return snap, err
}

func sdkConsumers(cfg []config.Consumer) []*sdk.Consumer {
	// One array rather than a million small allocations.
	all := make([]sdk.Consumer, len(cfg))
	list := make([]*sdk.Consumer, len(cfg))
	for i := range cfg {
		c := &cfg[i]
		all[i] = sdk.Consumer{Name: c.Name, Groups: c.Groups, Credentials: c.Credentials}
		list[i] = &all[i]
	}
	return list
}

func sdkConsumer(c *config.Consumer) *sdk.Consumer {
	return &sdk.Consumer{Name: c.Name, Groups: c.Groups, Credentials: c.Credentials}
}

// Current returns the snapshot serving traffic now.
func (s *Server) Current() *Snapshot { return s.cur.Load() }

// Service returns the live pool service of the current snapshot.
func (s *Server) Service(name string) *pool.Service {
	if svc := s.cur.Load().services[name]; svc != nil {
		return svc.p
	}
	return nil
}

// LastReloadOK reports whether the last Apply succeeded.
func (s *Server) LastReloadOK() bool { return s.lastReloadGood.Load() }

// acquireSnapshot pins the current snapshot for one request. The re-check
// closes the race with a concurrent swap: a request that pinned a snapshot
// after it was replaced lets go and pins the new one, so a retiring
// snapshot's count can only fall.
func (s *Server) acquireSnapshot() *Snapshot {
	for {
		snap := s.cur.Load()
		snap.refs.Add(1)
		if s.cur.Load() == snap {
			return snap
		}
		snap.refs.Add(-1)
	}
}

// Apply validates and compiles cfg and swaps it in atomically. On any
// error the running snapshot stays and the error lists every problem.
func (s *Server) Apply(cfg *config.Config, file string) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	err := s.apply(cfg, file)
	s.countReload(err == nil)
	return err
}

// ApplyChecked is Apply for a cfg that config.Check (or CheckAdjusted)
// returned: defaults applied and every rule of config.Validate passed,
// so it is not validated a second time (at 10,000 routes the second pass
// was a tenth of a one-route reload). The compile still reports what only
// it finds.
func (s *Server) ApplyChecked(cfg *config.Config, file string) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	err := s.swapIn(cfg, file, nil)
	s.countReload(err == nil)
	return err
}

// ReloadFailed counts a reload that failed before Apply, a config file
// that could not be read or parsed, as Apply counts one that does not
// validate: weir_config_reloads_total and
// weir_config_last_reload_successful must not miss a broken file.
func (s *Server) ReloadFailed() {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.countReload(false)
}

// countReload records a reload's outcome; the caller holds applyMu.
func (s *Server) countReload(ok bool) {
	if ok {
		s.reloadOK.Inc()
	} else {
		s.reloadFailed.Inc()
	}
	s.lastReloadGood.Store(ok)
}

func (s *Server) apply(cfg *config.Config, file string) error {
	config.ApplyDefaults(cfg)
	if err := config.Validate(cfg, file); err != nil {
		return err
	}
	return s.swapIn(cfg, file, nil)
}

// ApplyConsumer applies cfg, which is the running config with one
// consumer changed: old (nil: none) replaced by cfg.Consumers[i] (i < 0:
// old removed). It checks that consumer only and updates the running
// consumers rather than rebuilding them (sdk.Consumers.With), and keeps
// every plugin instance that does not hold what it read from consumers:
// the admin API's change of one consumer costs the same at a hundred
// consumers as at a million (issue 17). cfg must share everything else
// with the running config, which is valid; defaults are not applied
// again. It counts as a reload, as Apply does.
func (s *Server) ApplyConsumer(cfg *config.Config, old *config.Consumer, i int, file string) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	err := s.applyConsumer(cfg, old, i, file)
	s.countReload(err == nil)
	return err
}

func (s *Server) applyConsumer(cfg *config.Config, old *config.Consumer, i int, file string) error {
	running := s.cur.Load()
	var next *sdk.Consumer
	if i >= 0 {
		c := &cfg.Consumers[i]
		err := config.ValidateConsumer(file, i, c, func(name string) (int, bool) {
			// The running config's consumers are unique, so another of
			// the name is the running one, unless it is the one replaced.
			if old != nil && old.Name == name {
				return 0, false
			}
			if running.consumers.Get(name) == nil {
				return 0, false
			}
			for j := range cfg.Consumers {
				if j != i && cfg.Consumers[j].Name == name {
					return j, true
				}
			}
			return 0, true
		})
		if err != nil {
			return err
		}
		next = sdkConsumer(c)
	}
	var prev *sdk.Consumer
	if old != nil {
		prev = running.consumers.Get(old.Name)
	}
	var cs *sdk.Consumers
	cs, err := running.consumers.With(prev, next, func() []*sdk.Consumer {
		list := make([]*sdk.Consumer, len(cfg.Consumers))
		for j := range cfg.Consumers {
			list[j] = cs.Get(cfg.Consumers[j].Name)
		}
		return list
	})
	if err != nil {
		place := "consumers"
		if i >= 0 {
			place = fmt.Sprintf("consumers[%d].credentials", i)
		}
		return appendPluginErrors(nil, file, place, err)
	}
	return s.swapIn(cfg, file, cs)
}

// swapIn compiles a valid cfg (with consumers, or consumers made from
// cfg when nil), starts it and makes it the running snapshot.
func (s *Server) swapIn(cfg *config.Config, file string, consumers *sdk.Consumers) error {
	old := s.cur.Load()
	if redisKey(cfg) != s.redisKey {
		// A changed redis section needs a new client; plugins of the new
		// snapshot get it, the old snapshot keeps the old one until it
		// retires.
		if err := s.setRedis(cfg); err != nil {
			return err
		}
	}
	snap, err := s.compileWith(cfg, file, false, consumers)
	if err != nil {
		return err
	}
	if err := snap.start(); err != nil {
		snap.closeResources(s.deps(false, ""))
		return fmt.Errorf("%s: starting the new config: %w", file, err)
	}
	if err := s.setAccessLog(snap, cfg, file); err != nil {
		snap.closeResources(s.deps(false, ""))
		return err
	}
	snap.Version = s.version.Add(1)
	s.applyServerSettings(cfg)
	s.cur.Store(snap)
	snap.handOver()
	s.retire(old)
	s.watchDiscovery(cfg)
	s.log.Info("config applied", "source", file, "version", snap.Version,
		"routes", len(cfg.Routes), "services", len(cfg.Services))
	return nil
}

// retire waits (in the background) for the old snapshot's in-flight
// requests, then releases its resources.
func (s *Server) retire(old *Snapshot) {
	if old == nil {
		return
	}
	old.retired.Store(true)
	s.retireWG.Add(1)
	go func() {
		defer s.retireWG.Done()
		deadline := time.Now().Add(5 * time.Minute)
		for old.refs.Load() > 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		old.closeResources(s.deps(false, ""))
	}()
}

// applyServerSettings publishes the server.* settings a reload can change
// to the handlers (atomics: requests read them concurrently). The fasthttp
// server's own timeouts and buffer sizes are fixed when it is created: it
// reads them unsynchronised, so they apply after a restart (cmd/weir warns).
func (s *Server) applyServerSettings(cfg *config.Config) {
	maxBody := cfg.Server.MaxBodyBytes
	if maxBody <= 0 {
		maxBody = 10 << 20
	}
	s.maxBody.Store(maxBody)
	s.latencyHeaders.Store(cfg.Server.LatencyHeaders)
	s.underscores.Store(cfg.Server.UnderscoresInHeaders)
	maxWS := cfg.Server.MaxWebSockets
	if maxWS <= 0 {
		maxWS = config.DefaultMaxWebSockets
	}
	s.ws.max.Store(int64(maxWS))
	var nets []netip.Prefix
	for _, t := range cfg.Server.TrustedProxies {
		if p, err := netip.ParsePrefix(t); err == nil {
			nets = append(nets, p.Masked())
		} else if a, err := netip.ParseAddr(t); err == nil {
			nets = append(nets, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		}
	}
	s.trusted.Store(&nets)
	// A started GC floor follows every applied config (file reload or
	// admin API); before cmd/weir starts it, this does nothing.
	gcfloor.Set(cfg.Server.HeapFloor())
	s.applyTracing(cfg)
	if a := cfg.Analytics; a != nil {
		s.consumers.set(a.Consumers, a.MaxConsumers)
	} else {
		s.consumers.set(false, 0)
	}
}

func (s *Server) newFastHTTPServer(cfg *config.Config) *fasthttp.Server {
	sc := cfg.Server
	rb := sc.MaxHeaderBytes
	if rb <= 0 {
		rb = 8192
	}
	return &fasthttp.Server{
		Handler:                      s.handle,
		ErrorHandler:                 s.protocolError,
		HeaderReceived:               nil,
		ReadBufferSize:               rb,
		WriteBufferSize:              16 << 10,
		ReadTimeout:                  sc.ReadTimeout.D(),
		WriteTimeout:                 sc.WriteTimeout.D(),
		IdleTimeout:                  sc.IdleTimeout.D(),
		Concurrency:                  sc.MaxConns,
		MaxConnsPerIP:                sc.MaxConnsPerIP,
		MaxRequestBodySize:           streamThreshold,
		StreamRequestBody:            true,
		NoDefaultServerHeader:        true,
		ReduceMemoryUsage:            true,
		NoDefaultContentType:         true,
		NoDefaultDate:                true, // upstream (and cached) Date headers pass through; finish adds one when absent
		DisablePreParseMultipartForm: true,
		TCPKeepalive:                 true,
		CloseOnShutdown:              true,
		// A WebSocket tunnel closes its client connection itself, so its
		// hijack handler can return at once (proxy/wstunnel.go).
		KeepHijackedConns:             true,
		DisableHeaderNamesNormalizing: false,
		Logger:                        fasthttpLogger{s.log},
		ConnState:                     expectRequest,
	}
}

// expectRequest tells a connection that waits for its next request to
// look at that request's first bytes, so that a header block only a bare
// LF ends is refused at once instead of waited on until the read timeout
// (fusedio.ErrBareLF).
func expectRequest(c net.Conn, st fasthttp.ConnState) {
	if st == fasthttp.StateNew || st == fasthttp.StateIdle {
		if fc, ok := c.(*fusedio.Conn); ok {
			fc.ExpectRequest()
		}
	}
}

// protocolError answers requests fasthttp could not parse, in the
// gateway's JSON error format. The connection is closed afterwards: after a
// framing error the stream position is unknown.
func (s *Server) protocolError(rc *fasthttp.RequestCtx, err error) {
	status, msg := fasthttp.StatusBadRequest, "malformed request"
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.As(err, &small):
		status, msg = fasthttp.StatusRequestHeaderFieldsTooLarge, "request header too large"
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		status, msg = fasthttp.StatusRequestEntityTooLarge, "request body too large"
	case errors.Is(err, fusedio.ErrBareLF):
		msg = "request header lines must end with CRLF"
	case strings.Contains(err.Error(), "unsupported http version"):
		// fasthttp's parser refuses a version that is not "HTTP/d.d"
		// ("HTTP/2", "HTTP/1.10") with this text and no error value of its
		// own; the answer is checkWire's for "HTTP/2.0".
		status, msg = refuseVersion.status, refuseVersion.msg
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			status, msg = fasthttp.StatusRequestTimeout, "request timed out"
		}
	}
	var id [36]byte
	sdk.WriteError(rc, status, msg, appendRequestID(id[:0]))
	var st reqState
	addDate(&rc.Response.Header, &st)
	rc.SetConnectionClose()
	if al := s.cur.Load().alog; al != nil && al.w != nil {
		// Refused requests are what an operator looks for in the log
		// (an attack, a broken client): log what was read of them.
		c := sdk.AcquireCtx(rc)
		c.SetRequestID(id[:])
		al.logRequest(s, c, &st, time.Since(c.Start), 0)
		sdk.ReleaseCtx(c)
	}
}

// Serve accepts connections on ln until Shutdown. TCP connections are
// wrapped in fusedio.Conns: answers are held and sent with the read that
// waits for the next request, and deadlines are lazy (see package
// fusedio), which saves three of the eight system-level operations a
// keep-alive request otherwise costs the client side. A TLS listener
// (package tlsfront, over the same TCP listener) is served as it is:
// fusedio's held writes and lazy deadlines cannot see through the record
// layer (under it tlsfront uses a plain fusedio.RawConn), and a
// tlsfront.Conn must stay the connection fasthttp sees for IsTLS.
//
// Either way the accepts are retried through the errors that pass, such
// as the process at its open-file limit (package acceptretry): fasthttp
// would stop the listener for good. The retrying wrapper is outermost, so
// that it covers both kinds, and is not what Shutdown records: draining
// needs the listener under it.
func (s *Server) Serve(ln net.Listener) error {
	if _, ok := ln.(*net.TCPListener); ok {
		ln = fusedio.Listener{Listener: ln, Slack: deadlineSlack(s.fs), Open: &s.drain.open}
	}
	if !s.drain.serving(ln) {
		return nil
	}
	return s.fs.Serve(&acceptretry.Listener{Listener: ln, State: &s.accept, Log: s.log})
}

// Accepting reports whether the listeners accept connections: false, with
// the last accept error, while one is refused (see package acceptretry).
func (s *Server) Accepting() (bool, string) { return s.accept.Accepting() }

// deadlineSlack is how much earlier than configured a client timeout may
// fire, so that back-to-back requests rarely move the socket's deadline: a
// 32nd of the shortest timeout, between 1 ms and 250 ms.
func deadlineSlack(fs *fasthttp.Server) time.Duration {
	d := time.Duration(0)
	for _, t := range []time.Duration{fs.ReadTimeout, fs.WriteTimeout, fs.IdleTimeout} {
		if t > 0 && (d == 0 || t < d) {
			d = t
		}
	}
	return min(max(d/32, time.Millisecond), 250*time.Millisecond)
}

// Handler exposes the request handler (tests over in-memory listeners).
func (s *Server) Handler() fasthttp.RequestHandler { return s.handle }

type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Debug(fmt.Sprintf(format, args...))
}

// Redis is the shared client, nil without a redis section.
func (s *Server) Redis() rueidis.Client { return s.redis }
