package proxy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/weirgw/weir/pool"
	"github.com/weirgw/weir/proxy/config"
	"github.com/weirgw/weir/proxy/router"
	"github.com/weirgw/weir/proxy/transport"
	"github.com/weirgw/weir/sdk"
)

// Snapshot is one compiled, immutable config: everything a request needs,
// built before the first request that needs it (docs/architecture.md, the one rule).
// The server swaps snapshots atomically; a request sees exactly one.
type Snapshot struct {
	Version int64
	Config  *config.Config
	Source  string // file name or "admin API", for errors and /status
	Loaded  time.Time

	router    *router.Router
	routes    []*route
	services  map[string]*service
	consumers *sdk.Consumers
	// consumersKey is consumersKey(Config.Consumers) when consumersKnown
	// (a snapshot made by a change of one consumer does not hash them all).
	consumersKey   unitKey
	consumersKnown bool
	// units hold every plugin instance and route metric handle of the
	// snapshot, each built by this snapshot or reused from the one it
	// replaced (reuse.go); globals and byKey index them for the next one.
	units   []*unit
	globals *unit
	byKey   map[unitKey]*unit
	reuse   reuseCtx
	started bool

	alog *accessLog // access_log, nil when off (accesslog.go)

	refs    atomic.Int64 // requests in flight on this snapshot
	retired atomic.Bool
}

type route struct {
	name string
	svc  *service
	chain
	stripPath    bool
	preserveHost bool
	agg          *aggregate
	m            *routeMetrics // shared by the snapshots that reuse the route's unit
	// snap is pinned until the chain's deferred log filters have run.
	snap        *Snapshot
	noAccessLog bool          // routes[].access_log: false
	wsIdle      time.Duration // websocket.idle_timeout, the route's or the server's
}

type service struct {
	name       string
	p          *pool.Service
	retries    int
	timeout    time.Duration
	hash       hashKind
	hashName   string                          // header or cookie name for consistent hashing
	trans      map[string]*transport.Transport // by member URL, immutable; from the upstreams registry
	upstreamMs *sdk.Histogram
	cfg        config.Service
}

type hashKind uint8

const (
	hashNone hashKind = iota
	hashIP
	hashConsumer
	hashPath
	hashHeader
	hashCookie
)

type routeMetrics struct {
	duration *sdk.Histogram
	overhead *sdk.Histogram
	label    string // route="x",service="y"
	// byClass holds the counters by status, a table of a hundred per
	// class (1xx..5xx), each made at the class's first answer: a flat
	// table of all 600 was 4.8 KB per route, half the heap of a
	// 10,000-route config, which every GC cycle scanned.
	byClass [6]atomic.Pointer[statusCounters]
	ws      atomic.Pointer[wsMetrics] // made at the route's first WebSocket
}

type statusCounters [100]atomic.Pointer[metrics.Counter]

func (m *routeMetrics) count(status int) {
	if status < 100 || status >= 600 {
		status = 599
	}
	t := m.byClass[status/100].Load()
	if t == nil {
		m.byClass[status/100].CompareAndSwap(nil, new(statusCounters))
		t = m.byClass[status/100].Load()
	}
	c := t[status%100].Load()
	if c == nil {
		c = metrics.GetOrCreateCounter(fmt.Sprintf(`weir_requests_total{%s,status="%d"}`, m.label, status))
		t[status%100].Store(c)
	}
	c.Inc()
}

// counter is the counter of answers with status, nil before the first.
func (m *routeMetrics) counter(status int) *metrics.Counter {
	if t := m.byClass[status/100].Load(); t != nil {
		return t[status%100].Load()
	}
	return nil
}

// compileDeps are the long-lived parts a snapshot borrows.
type compileDeps struct {
	pools      *pool.Registry
	upstreams  *upstreams
	build      func(route, service string) *sdk.Build
	validating bool
	// discovered returns a service's targets found by DNS discovery (nil
	// when validating: a config check resolves nothing).
	discovered func(service string) []pool.TargetConfig
	// configDir resolves relative file names (services[].tls files); ""
	// for configs that came from no file (admin API, cluster).
	configDir string
	// prev is the snapshot serving now, whose units an unchanged route
	// reuses; nil when validating or at start. reuse says what every
	// plugin instance was built with besides its own config.
	prev  *Snapshot
	reuse reuseCtx
}

// compile builds a snapshot from a validated config. Every error is
// reported, each with its place in the file.
func compile(cfg *config.Config, file string, consumers *sdk.Consumers, d compileDeps) (*Snapshot, error) {
	var errs config.ErrorList
	add := func(place, format string, args ...any) {
		errs = append(errs, &config.Error{File: file, Place: place, Msg: fmt.Sprintf(format, args...)})
	}
	s := &Snapshot{Config: cfg, Source: file, Loaded: time.Now(), services: map[string]*service{}, consumers: consumers}

	// Services.
	for i := range cfg.Services {
		sc := &cfg.Services[i]
		place := fmt.Sprintf("services[%d]", i)
		ut, field, err := buildUpstreamTLS(sc.TLS, d.configDir)
		if err != nil {
			add(place+".tls."+field, "%v", err)
			continue
		}
		svc, err := s.buildService(sc, ut, d)
		if err != nil {
			add(place, "%v", err)
			continue
		}
		s.services[sc.Name] = svc
	}

	// Router.
	specs := make([]router.Spec, len(cfg.Routes))
	for i, r := range cfg.Routes {
		specs[i] = router.Spec{Hosts: r.Hosts, Paths: r.Paths, Methods: r.Methods, Headers: r.Headers, StripPath: r.StripPath}
	}
	// The running snapshot's router has every unchanged route parsed
	// (and its regexes compiled) already.
	var prevRouter *router.Router
	if d.prev != nil {
		prevRouter = d.prev.router
	}
	rt, rerrs := router.CompileFrom(specs, prevRouter)
	for _, e := range rerrs {
		add(fmt.Sprintf("routes[%d].%s", e.Route, e.Field), "%s", e.Msg)
	}
	s.router = rt
	s.alog = compileAccessLog(cfg.AccessLog)
	if err := checkAccessLogPath(cfg.AccessLog, d.configDir); err != nil {
		add("access_log.path", "%v", err)
	}

	// Global plugins, then each route's own; a route's instance of a plugin
	// replaces the global instance of the same name (for a plugin with
	// several instances, of the same instance name: sdk.InstanceName), and
	// several instances of a plugin with sdk.Factory.Group run as one
	// filter (README.md, "Plugins").
	s.reuse = d.reuse
	s.byKey = make(map[unitKey]*unit, len(cfg.Routes)+1)
	prev := d.prev
	if prev != nil && prev.reuse != d.reuse {
		prev = nil // the plugins were built with another redis or directory
	}
	globalNames := make([]string, len(cfg.Plugins))
	globalIDs := make([]string, len(cfg.Plugins)) // "" for an unnamed instance: no route's replaces it
	for i, p := range cfg.Plugins {
		globalNames[i] = p.Name
		globalIDs[i], _ = sdk.InstanceName(p.Name, p.Config)
	}
	gkey := keyOf(cfg.Plugins)
	if u := prev.lookup(gkey, consumers); u != nil {
		adoptIndexes(u, consumers, func(k int, err error) {
			place := "consumers"
			if k >= 0 {
				place = pluginPlace(-1, k, cfg.Plugins[k].Name)
			}
			errs = appendPluginErrors(errs, file, place, err)
		})
		s.adopt(u)
		s.globals = u
	} else {
		u := s.newUnit(gkey)
		u.filters = make([]sdk.Filter, len(cfg.Plugins))
		buildUnit(u, consumers, func() {
			for i, p := range cfg.Plugins {
				if p.Enabled != nil && !*p.Enabled {
					continue
				}
				f, err := buildFilter(p, d.build("", ""))
				if err != nil {
					errs = appendPluginErrors(errs, file, pluginPlace(-1, i, p.Name), err)
					continue
				}
				u.filters[i] = f
			}
		})
		s.globals = u
	}
	svcKeys := map[string]unitKey{}
	for i := range cfg.Routes {
		rc := &cfg.Routes[i]
		r := &route{name: rc.Name, stripPath: rc.StripPath, preserveHost: rc.PreserveHost, snap: s,
			noAccessLog: rc.AccessLog != nil && !*rc.AccessLog}
		if w := rc.WebSocket; w != nil && w.IdleTimeout > 0 {
			r.wsIdle = w.IdleTimeout.D()
		} else if w := cfg.Server.WebSocket; w != nil && w.IdleTimeout > 0 {
			r.wsIdle = w.IdleTimeout.D()
		} else {
			r.wsIdle = config.DefaultWebSocketIdle
		}
		if rc.Service != "" {
			r.svc = s.services[rc.Service]
			if r.svc == nil && findService(cfg, rc.Service) < 0 {
				add(fmt.Sprintf("routes[%d].service", i), "no service named %q", rc.Service)
			}
		}
		key := routeKey(cfg, i, svcKeys)
		u := prev.lookup(key, consumers)
		if u != nil && s.byKey[key] == nil {
			adoptIndexes(u, consumers, func(k int, err error) {
				place := fmt.Sprintf("routes[%d].plugins", i)
				if k >= 0 {
					place = pluginPlace(i, enabledPlugin(rc.Plugins, k), u.names[k])
				}
				errs = appendPluginErrors(errs, file, place, err)
			})
			s.adopt(u)
		} else {
			u = s.newUnit(key)
			buildUnit(u, consumers, func() {
				for j, p := range rc.Plugins {
					if p.Enabled != nil && !*p.Enabled {
						continue
					}
					b := d.build(rc.Name, rc.Service)
					b.Params = config.RouteParams(rc.Paths)
					f, err := buildFilter(p, b)
					if err != nil {
						errs = appendPluginErrors(errs, file, pluginPlace(i, j, p.Name), err)
						continue
					}
					u.filters = append(u.filters, f)
					u.names = append(u.names, p.Name)
				}
			})
			svcName := rc.Service
			if svcName == "" {
				svcName = "_aggregate"
			}
			u.m = &routeMetrics{label: fmt.Sprintf(`route=%q,service=%q`, rc.Name, svcName)}
			if !d.validating {
				u.m.duration = sdk.GetOrCreateHistogram(fmt.Sprintf(`weir_request_duration_seconds{route=%q}`, rc.Name))
				u.m.overhead = sdk.GetOrCreateHistogram(fmt.Sprintf(`weir_proxy_overhead_seconds{route=%q}`, rc.Name))
			}
		}
		if u.chain == nil || u.chain.globals != s.globals {
			u.chain = newChain(s.globals, rc.Plugins, globalNames, globalIDs, u)
		}
		r.chain = *u.chain
		r.m = u.m
		if rc.Aggregate != nil {
			agg, err := s.buildAggregate(rc, i)
			if err != nil {
				errs = append(errs, err...)
			}
			r.agg = agg
		}
		s.routes = append(s.routes, r)
	}
	if len(errs) > 0 {
		s.closeResources(d)
		return nil, errs
	}
	return s, nil
}

// chain is a route's filters, the globals' and its own, as a request
// runs them. It is made once per unit and globals unit (newChain) and
// copied into each route that uses them: a reload that keeps both keeps
// the chain, with no grouping or interface checks per unchanged route.
// Its slices are shared by those routes and never written.
type chain struct {
	globals     *unit // the globals unit the chain was made with
	filters     []sdk.Filter
	respFilters []sdk.ResponseFilter // parallel to filters; nil where absent
	logFilters  []sdk.LogFilter
	hasResp     bool
	// wholeBody: a response filter reads whole bodies (sdk.WholeBodyFilter)
	wholeBody bool
	// deferredLog run after the answer is sent, on a copy of the Ctx
	// (logphase.go); logFilters run in finish, on the request's time.
	deferredLog []sdk.LogFilter
}

// newChain makes the chain of a route with plugins own (its config's)
// and unit u: the globals of g that own does not replace (a route's
// instance of a plugin replaces the global instance of the same
// instance name: sdk.InstanceName), then u's filters, grouped
// (groupFilters). names and ids are the global plugins' names and
// instance names ("" for an unnamed instance), by index.
func newChain(g *unit, own []config.Plugin, names, ids []string, u *unit) *chain {
	ownIDs := map[string]bool{}
	for _, p := range own {
		if id, ok := sdk.InstanceName(p.Name, p.Config); ok {
			ownIDs[id] = true
		}
	}
	var fs []sdk.Filter
	var fnames []string // of fs, for groupFilters
	for gi, f := range g.filters {
		if f != nil && !(ids[gi] != "" && ownIDs[ids[gi]]) {
			fs = append(fs, f)
			fnames = append(fnames, names[gi])
		}
	}
	c := &chain{globals: g}
	c.filters = groupFilters(append(fs, u.filters...), append(fnames, u.names...))
	c.respFilters = make([]sdk.ResponseFilter, len(c.filters))
	for k, f := range c.filters {
		if rf, ok := f.(sdk.ResponseFilter); ok {
			c.respFilters[k] = rf
			c.hasResp = true
		}
		if wf, ok := f.(sdk.WholeBodyFilter); ok && wf.WholeResponseBody() {
			c.wholeBody = true
		}
		if df, ok := f.(sdk.DeferredLogFilter); ok {
			c.deferredLog = append(c.deferredLog, df)
		} else if lf, ok := f.(sdk.LogFilter); ok {
			c.logFilters = append(c.logFilters, lf)
		}
	}
	return c
}

// groupFilters replaces the instances of each plugin with a
// sdk.Factory.Group, when a route has two or more, by the one filter Group
// makes of them, at the place of the first. names[i] is the plugin name of
// fs[i].
func groupFilters(fs []sdk.Filter, names []string) []sdk.Filter {
	count := map[string]int{}
	for _, n := range names {
		count[n]++
	}
	grouped := false
	for n, c := range count {
		if fac, _ := sdk.Lookup(n); c > 1 && fac.Group != nil {
			grouped = true
		} else {
			delete(count, n)
		}
	}
	if !grouped {
		return fs
	}
	out := make([]sdk.Filter, 0, len(fs))
	for i, f := range fs {
		n := names[i]
		if count[n] == 0 {
			out = append(out, f)
			continue
		}
		if count[n] < 0 {
			continue // taken into the group already
		}
		var members []sdk.Filter
		for j := i; j < len(fs); j++ {
			if names[j] == n {
				members = append(members, fs[j])
			}
		}
		fac, _ := sdk.Lookup(n)
		out = append(out, fac.Group(members))
		count[n] = -1
	}
	return out
}

func findService(cfg *config.Config, name string) int {
	for i, s := range cfg.Services {
		if s.Name == name {
			return i
		}
	}
	return -1
}

func buildFilter(p config.Plugin, b *sdk.Build) (f sdk.Filter, err error) {
	fac, ok := sdk.Lookup(p.Name)
	if !ok {
		return nil, fmt.Errorf("unknown plugin %q (compiled in: %s)", p.Name, strings.Join(sdk.Names(), ", "))
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("plugin panicked while building: %v", r)
		}
	}()
	f, err = fac.New(b, p.Config)
	if err == nil && f == nil {
		err = errors.New("plugin returned no filter")
	}
	return f, err
}

func (s *Snapshot) buildService(sc *config.Service, ut *upstreamTLS, d compileDeps) (*service, error) {
	pc := pool.ServiceConfig{
		Name:     sc.Name,
		Balancer: sc.Balancer,
		TLS:      ut.cfg,
		TLSID:    ut.id,
	}
	for _, t := range sc.Targets {
		w := 100
		if t.Weight != nil {
			w = *t.Weight
		}
		pc.Targets = append(pc.Targets, pool.TargetConfig{URL: t.URL, Weight: w})
	}
	if sc.Discovery != nil && d.discovered != nil {
		static := len(pc.Targets)
		for _, t := range d.discovered(sc.Name) {
			// A static target that DNS also names stays as configured.
			if !slices.ContainsFunc(pc.Targets[:static], func(x pool.TargetConfig) bool { return x.URL == t.URL }) {
				pc.Targets = append(pc.Targets, t)
			}
		}
	}
	if hc := sc.HealthCheck; hc != nil {
		if a := hc.Active; a != nil {
			pc.Health.Active = &pool.ActiveConfig{Path: a.Path, Interval: a.Interval.D(), Timeout: a.Timeout.D(),
				HealthyAfter: a.HealthyAfter, UnhealthyAfter: a.UnhealthyAfter, ExpectStatus: a.ExpectStatus}
		}
		if p := hc.Passive; p != nil {
			pc.Health.Passive = &pool.PassiveConfig{UnhealthyAfter: p.UnhealthyAfter,
				HealthyAfter: time.Duration(p.HealthyAfterMs) * time.Millisecond}
		}
	}
	if cb := sc.CircuitBreaker; cb != nil {
		pc.Breaker = &pool.BreakerConfig{FailureRatio: cb.FailureRatio, MinRequests: cb.MinRequests,
			Window: cb.Window.D(), OpenFor: cb.OpenFor.D()}
	}
	ps, err := d.pools.NewService(pc)
	if err != nil {
		return nil, err
	}
	svc := &service{name: sc.Name, p: ps, timeout: sc.Timeout.D(), cfg: *sc}
	if sc.Retries != nil {
		svc.retries = *sc.Retries
	}
	svc.hash, svc.hashName = parseHashOn(sc.HashOn)
	if !d.validating {
		svc.upstreamMs = sdk.GetOrCreateHistogram(fmt.Sprintf(`weir_upstream_duration_seconds{service=%q}`, sc.Name))
	}
	// Keyed by the pool's name for each member, the one the request path
	// looks up (service.transport): a target written other than in its
	// canonical form still finds its transport.
	m := map[string]*transport.Transport{}
	if !d.validating {
		for _, mem := range ps.Members() {
			tr, err := d.upstreams.acquire(mem.URL(), svc.transportConfig(), ut)
			if err != nil {
				return nil, fmt.Errorf("target %q: %v", mem.URL(), err)
			}
			m[mem.URL()] = tr
		}
	}
	svc.trans = m
	return svc, nil
}

func (svc *service) transportConfig() transport.Config {
	return transport.Config{
		ConnectTimeout:  svc.cfg.ConnectTimeout.D(),
		MaxConns:        svc.cfg.MaxConnsPerTarget,
		MaxConnWait:     svc.cfg.MaxConnWait.D(),
		StreamThreshold: streamThreshold,
	}
}

func parseHashOn(s string) (hashKind, string) {
	switch {
	case s == "ip":
		return hashIP, ""
	case s == "consumer":
		return hashConsumer, ""
	case s == "path":
		return hashPath, ""
	case strings.HasPrefix(s, "header:"):
		return hashHeader, s[len("header:"):]
	case strings.HasPrefix(s, "cookie:"):
		return hashCookie, s[len("cookie:"):]
	}
	return hashNone, ""
}

// start launches the snapshot's background work (health checks, plugin
// refreshers) once it is about to serve.
func (s *Snapshot) start() error {
	if s.started {
		return nil
	}
	s.started = true
	for _, svc := range s.services {
		svc.p.Start()
	}
	for _, u := range s.units {
		// A reused unit's filters were started by the snapshot that
		// built them.
		if u.owner.Load() != s || u.started {
			continue
		}
		u.started = true
		for _, f := range u.filters {
			if st, ok := f.(sdk.Starter); ok {
				if err := st.Start(); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// closeResources stops what start started and drops the snapshot's
// references to shared transports.
func (s *Snapshot) closeResources(d compileDeps) {
	for _, u := range s.units {
		// A unit the next snapshot took over is its to close.
		if u.owner.Load() != s {
			continue
		}
		for _, f := range u.filters {
			if c, ok := f.(sdk.Closer); ok {
				_ = c.Close()
			}
		}
	}
	for _, svc := range s.services {
		svc.p.Close()
		if d.upstreams != nil {
			for _, t := range svc.trans {
				d.upstreams.release(t)
			}
		}
	}
}

// HasConsumer reports whether the snapshot has a consumer named name,
// without a walk through the config's list.
func (s *Snapshot) HasConsumer(name string) bool { return s.consumers.Get(name) != nil }
