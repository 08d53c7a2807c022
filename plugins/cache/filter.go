// Package cache is Weir's RFC 9111 shared HTTP cache for GET and HEAD,
// with request collapsing, a sharded in-process store or Redis with
// client-side caching, and purge by URL, prefix and surrogate key.
// README.md describes the behaviour and its deliberate deviations.
package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/redis/rueidis"
	"github.com/weirgw/weir/sdk"
)

func init() {
	sdk.Register(sdk.Factory{Name: "cache", New: New})
	// The purge API on the admin listener: POST /cache/purge with
	// {"url": ...}, {"prefix": ...} or {"tag": ...}. With Redis the purge
	// reaches every node.
	sdk.RegisterAdmin(sdk.AdminEndpoint{Pattern: "POST /cache/purge", MaxBody: 1 << 20, Handle: HandlePurge})
}

// Filter is one cache plugin instance. It is shared by all requests of a
// snapshot; its scope (store and collapsing table) may outlive it.
type Filter struct {
	cfg   Config
	route string
	log   *slog.Logger
	redis rueidis.Client

	scope   atomic.Pointer[scope]
	started atomic.Bool
	// now is the clock (tests replace it).
	now func() time.Time

	getOK, headOK bool
	varyBy        [][]byte
	tagHeader     string
	statusOK      *[1000]bool // nil: any final status with explicit freshness
	maxObject     int
	lockTimeout   time.Duration
	collapse      bool
	keepStale     int64
	defaultTTL    int64

	counters  *resultCounters // nil for a global instance (per-route below)
	perRouteM sync.RWMutex
	perRoute  map[string]*resultCounters
	storeErrs *metrics.Counter
	evictions *metrics.Counter
}

// New builds a cache instance from its config (sdk.Factory.New).
func New(b *sdk.Build, raw json.RawMessage) (sdk.Filter, error) {
	var cfg Config
	if err := sdk.DecodeConfig(raw, &cfg); err != nil {
		return nil, err
	}
	cfg.applyDefaults()
	err := cfg.validate()
	if cfg.Store == "redis" && b.Redis == nil && !b.Validating {
		err = errors.Join(err, errors.New("store: redis needs the top-level redis section (or use store: memory)"))
	}
	if err != nil {
		return nil, err
	}
	f := &Filter{
		cfg:         cfg,
		route:       b.Route,
		log:         b.Log,
		redis:       b.Redis,
		now:         time.Now,
		tagHeader:   cfg.TagHeader,
		maxObject:   int(cfg.MaxObjectBytes),
		lockTimeout: time.Duration(cfg.LockTimeout),
		collapse:    *cfg.Collapse && cfg.LockTimeout > 0,
		keepStale:   int64(cfg.KeepStale),
		defaultTTL:  int64(cfg.DefaultTTL),
		perRoute:    map[string]*resultCounters{},
	}
	if f.log == nil {
		f.log = slog.Default()
	}
	for _, m := range cfg.Methods {
		switch m {
		case "GET":
			f.getOK = true
		case "HEAD":
			f.headOK = true
		}
	}
	for _, h := range cfg.VaryBy {
		f.varyBy = append(f.varyBy, []byte(strings.ToLower(h)))
	}
	if len(cfg.StatusCodes) > 0 {
		f.statusOK = new([1000]bool)
		for _, s := range cfg.StatusCodes {
			f.statusOK[s] = true
		}
	}
	lbl := `route="` + escapeLabel(b.Route) + `"`
	if b.Route != "" {
		f.counters = newResultCounters(lbl)
	}
	f.evictions = metrics.GetOrCreateCounter(`weir_cache_evictions_total{` + lbl + `}`)
	f.storeErrs = metrics.GetOrCreateCounter(`weir_cache_store_errors_total{` + lbl + `,store="` + cfg.Store + `"}`)
	f.scope.Store(f.newScope())
	return f, nil
}

// newScope builds the private scope New starts with.
func (f *Filter) newScope() *scope {
	s := &scope{flights: newFlightGroup()}
	if f.cfg.Store == "redis" && f.redis != nil {
		rs := newRedisStore(f.redis, time.Duration(f.cfg.RedisTimeout))
		rs.errors = f.storeErrs
		s.st, s.redis = rs, f.redis
		s.key = fmt.Sprintf("redis|%s|%p", f.route, f.redis)
	} else {
		ms := newMemoryStore(int64(f.cfg.MaxBytes), int64(f.cfg.MaxObjectBytes))
		ms.evictions = f.evictions
		s.st, s.mem = ms, ms
		s.key = "memory|" + f.route
	}
	return s
}

// Start registers the instance so that purges reach it, adopting the
// store of the previous snapshot's instance for the same route (sdk.Starter).
func (f *Filter) Start() error {
	if f.started.Swap(true) {
		return nil
	}
	own := f.scope.Load()
	f.scope.Store(acquireScope(own, int64(f.cfg.MaxBytes)))
	if f.redis != nil {
		acquireBus(f.redis, f.log)
	}
	return nil
}

// Close releases the scope and the purge subscription (sdk.Closer).
func (f *Filter) Close() error {
	if !f.started.Swap(false) {
		return nil
	}
	releaseScope(f.scope.Load())
	if f.redis != nil {
		releaseBus(f.redis)
	}
	return nil
}

// Results counted in weir_cache_requests_total{route,result}.
const (
	resHit = iota
	resMiss
	resStale
	resBypass
	resRevalidated
)

// resultNames are the results as the metric's label and the access
// log's cache field (sdk.Ctx.SetLogField) write them.
var resultNames = [...]string{"hit", "miss", "stale", "bypass", "revalidated"}

// resultLogValues are resultNames as []byte, for SetLogField.
var resultLogValues = func() (v [len(resultNames)][]byte) {
	for i, n := range resultNames {
		v[i] = []byte(n)
	}
	return v
}()

type resultCounters struct {
	c [5]*metrics.Counter
}

func newResultCounters(lbl string) *resultCounters {
	rc := &resultCounters{}
	for i, r := range resultNames {
		rc.c[i] = metrics.GetOrCreateCounter(`weir_cache_requests_total{` + lbl + `,result="` + r + `"}`)
	}
	return rc
}

// count records a result. A global instance counts under the request's
// route, whose counters are created once per route name.
func (f *Filter) count(c *sdk.Ctx, res int) {
	c.SetLogField("cache", resultLogValues[res])
	rc := f.counters
	if rc == nil {
		f.perRouteM.RLock()
		rc = f.perRoute[c.Route]
		f.perRouteM.RUnlock()
		if rc == nil {
			f.perRouteM.Lock()
			if rc = f.perRoute[c.Route]; rc == nil {
				rc = newResultCounters(`route="` + escapeLabel(c.Route) + `"`)
				f.perRoute[c.Route] = rc
			}
			f.perRouteM.Unlock()
		}
	}
	rc.c[res].Inc()
}

func escapeLabel(s string) string {
	if !strings.ContainsAny(s, "\\\"\n") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return r.Replace(s)
}
