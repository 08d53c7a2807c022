package proxy

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
)

// Per-consumer traffic (analytics.consumers): weir_consumer_requests_total
// {consumer,status_class}. Opt-in, because a gateway may have a million
// consumers; and capped: the first analytics.max_consumers consumers seen
// get their own label value, later ones count as "_other". The label's
// values thus come from the config's consumer names and the cap, never
// from what a client sends (only an authenticated consumer is counted).

// otherConsumer is the label value of consumers beyond the cap.
const otherConsumer = "_other"

type consumerCounters struct {
	byClass [5]atomic.Pointer[metrics.Counter] // 1xx..5xx
	name    string
	total   atomic.Uint64 // for the status page's top consumers
}

var statusClasses = [5]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

func (cc *consumerCounters) count(status int) {
	class := min(max(status/100, 1), 5) - 1
	c := cc.byClass[class].Load()
	if c == nil {
		c = metrics.GetOrCreateCounter(fmt.Sprintf(`weir_consumer_requests_total{consumer=%q,status_class=%q}`, cc.name, statusClasses[class]))
		cc.byClass[class].Store(c)
	}
	c.Inc()
	cc.total.Add(1)
}

// consumerMetrics is the Server's; it outlives snapshots, so a reload
// keeps the series and the consumers already given one.
type consumerMetrics struct {
	on     atomic.Bool
	max    atomic.Int64
	mu     sync.RWMutex
	byName map[string]*consumerCounters
	other  consumerCounters
}

func (m *consumerMetrics) set(on bool, maxConsumers int) {
	m.max.Store(int64(maxConsumers))
	m.on.Store(on)
}

// count records one answer to the consumer named name.
func (m *consumerMetrics) count(name string, status int) {
	m.mu.RLock()
	cc := m.byName[name]
	m.mu.RUnlock()
	if cc == nil {
		cc = m.add(name)
	}
	cc.count(status)
}

func (m *consumerMetrics) add(name string) *consumerCounters {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cc := m.byName[name]; cc != nil {
		return cc
	}
	if int64(len(m.byName)) >= m.max.Load() {
		m.other.name = otherConsumer
		return &m.other
	}
	if m.byName == nil {
		m.byName = map[string]*consumerCounters{}
	}
	cc := &consumerCounters{name: name}
	m.byName[name] = cc
	return cc
}

// TopEntry is a route or consumer and its requests since the start.
type TopEntry struct {
	Name     string `json:"name"`
	Requests uint64 `json:"requests"`
}

// top lists the n consumers with the most requests ("_other" included).
func (m *consumerMetrics) top(n int) []TopEntry {
	m.mu.RLock()
	out := make([]TopEntry, 0, len(m.byName)+1)
	for _, cc := range m.byName {
		out = append(out, TopEntry{cc.name, cc.total.Load()})
	}
	m.mu.RUnlock()
	if t := m.other.total.Load(); t > 0 {
		out = append(out, TopEntry{otherConsumer, t})
	}
	return topN(out, n)
}

// topN sorts by requests (then name) and keeps the first n.
func topN(es []TopEntry, n int) []TopEntry {
	slices.SortFunc(es, func(a, b TopEntry) int {
		if c := cmp.Compare(b.Requests, a.Requests); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	return es[:min(n, len(es))]
}
