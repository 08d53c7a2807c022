package ratelimit

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
)

// storeKind says who made a decision, for weir_ratelimit_decisions_total.
type storeKind uint8

const (
	storeLocal    storeKind = iota // policy: local
	storeRedis                     // a Redis script decision
	storeLease                     // hybrid: spent from a lease, or refused by a remembered rejection, without Redis
	storeFallback                  // made without Redis because it failed (on_store_failure)
	numStores
)

var storeNames = [numStores]string{"local", "redis", "lease", "fallback"}

// routeMetrics are the counters of one route label. Handles are obtained
// when the filter is built (or, for a global instance, the first time a
// route is seen), never per request.
type routeMetrics struct {
	rejected    *metrics.Counter
	storeErrors *metrics.Counter
	decisions   [numStores]*metrics.Counter
	// coalesced counts policy redis decisions that rode on a Redis call
	// another request made for the same key (coalesce.go).
	coalesced *metrics.Counter
	// late counts answers to timed-out calls, [0] refused and [1]
	// granted (given back, see fallbackStore.late).
	late [2]*metrics.Counter
}

func newRouteMetrics(route string) *routeMetrics {
	l := `route="` + escapeLabel(route) + `"`
	m := &routeMetrics{
		rejected:    metrics.GetOrCreateCounter(`weir_ratelimit_rejected_total{` + l + `}`),
		storeErrors: metrics.GetOrCreateCounter(`weir_ratelimit_store_errors_total{` + l + `}`),
		coalesced:   metrics.GetOrCreateCounter(`weir_ratelimit_coalesced_total{` + l + `}`),
	}
	m.late[0] = metrics.GetOrCreateCounter(`weir_ratelimit_late_answers_total{` + l + `,result="refused"}`)
	m.late[1] = metrics.GetOrCreateCounter(`weir_ratelimit_late_answers_total{` + l + `,result="granted"}`)
	for i := range m.decisions {
		m.decisions[i] = metrics.GetOrCreateCounter(`weir_ratelimit_decisions_total{` + l + `,store="` + storeNames[i] + `"}`)
	}
	return m
}

// escapeLabel escapes a Prometheus label value (text format: \\, \" and \n).
func escapeLabel(s string) string {
	if !strings.ContainsAny(s, "\\\"\n") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return r.Replace(s)
}

// metricSet returns the counters for a request's route. A route-level
// instance has one fixed set; a global instance (it runs on every route)
// keeps one per route name in a copy-on-write map, so the lookup on the
// request path takes no lock and does not allocate.
type metricSet struct {
	fixed *routeMetrics
	mu    sync.Mutex
	byRt  atomic.Pointer[map[string]*routeMetrics]
}

func (s *metricSet) get(route string) *routeMetrics {
	if s.fixed != nil {
		return s.fixed
	}
	if mp := s.byRt.Load(); mp != nil {
		if m, ok := (*mp)[route]; ok {
			return m
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.byRt.Load()
	if old != nil {
		if m, ok := (*old)[route]; ok {
			return m
		}
	}
	next := make(map[string]*routeMetrics, 1+lenMap(old))
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	m := newRouteMetrics(route)
	next[route] = m
	s.byRt.Store(&next)
	return m
}

func lenMap(m *map[string]*routeMetrics) int {
	if m == nil {
		return 0
	}
	return len(*m)
}
