package wasm

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
)

// guestMetrics are the metrics a guest defines with proxy_define_metric.
// They are exported on /metrics as weir_wasm_guest_<name>{route="..."}
// (counters get a _total suffix), so a filter's own counters sit next to
// the gateway's. IDs are per filter and stable across its instances: every
// instance defines the same names at start-up and gets the same IDs.
type guestMetrics struct {
	route string
	mu    sync.Mutex // serialises define
	byKey map[string]uint32
	list  atomic.Pointer[[]*guestMetric] // index id-1; copy on define, lock-free reads
}

type guestMetric struct {
	kind    uint32
	counter *metrics.Counter
	gauge   *metrics.Gauge
	hist    *metrics.Histogram
}

// maxGuestMetrics bounds how many metrics one filter may define (each is
// a /metrics series for the life of the process).
const maxGuestMetrics = 256

func newGuestMetrics(route string) *guestMetrics {
	g := &guestMetrics{route: route, byKey: map[string]uint32{}}
	g.list.Store(&[]*guestMetric{})
	return g
}

func (g *guestMetrics) define(kind uint32, name []byte) (uint32, status) {
	if kind > metricHistogram {
		return 0, statusBadArgument
	}
	if len(name) == 0 || len(name) > 200 {
		return 0, statusBadArgument
	}
	key := fmt.Sprintf("%d/%s", kind, name)
	g.mu.Lock()
	defer g.mu.Unlock()
	if id, ok := g.byKey[key]; ok {
		return id, statusOK
	}
	old := *g.list.Load()
	if len(old) >= maxGuestMetrics {
		return 0, statusBadArgument
	}
	full := "weir_wasm_guest_" + metricName(name)
	m := &guestMetric{kind: kind}
	switch kind {
	case metricCounter:
		if !strings.HasSuffix(full, "_total") {
			full += "_total"
		}
		m.counter = metrics.GetOrCreateCounter(fmt.Sprintf("%s{route=%q}", full, g.route))
	case metricGauge:
		m.gauge = metrics.GetOrCreateGauge(fmt.Sprintf("%s{route=%q}", full, g.route), nil)
	case metricHistogram:
		m.hist = metrics.GetOrCreateHistogram(fmt.Sprintf("%s{route=%q}", full, g.route))
	}
	list := append(old[:len(old):len(old)], m)
	g.list.Store(&list)
	id := uint32(len(list))
	g.byKey[key] = id
	return id, statusOK
}

func (g *guestMetrics) get(id uint32) *guestMetric {
	list := *g.list.Load()
	if id == 0 || int(id) > len(list) {
		return nil
	}
	return list[id-1]
}

func (g *guestMetrics) increment(id uint32, delta int64) status {
	m := g.get(id)
	switch {
	case m == nil:
		return statusNotFound
	case m.kind == metricCounter:
		if delta < 0 {
			return statusBadArgument // a counter only goes up
		}
		m.counter.AddInt64(delta)
	case m.kind == metricGauge:
		m.gauge.Add(float64(delta))
	default:
		return statusBadArgument
	}
	return statusOK
}

func (g *guestMetrics) record(id uint32, v uint64) status {
	m := g.get(id)
	switch {
	case m == nil:
		return statusNotFound
	case m.kind == metricCounter:
		m.counter.Set(v)
	case m.kind == metricGauge:
		m.gauge.Set(float64(int64(v)))
	default:
		m.hist.Update(float64(v))
	}
	return statusOK
}

func (g *guestMetrics) value(id uint32) (uint64, status) {
	m := g.get(id)
	switch {
	case m == nil:
		return 0, statusNotFound
	case m.kind == metricCounter:
		return m.counter.Get(), statusOK
	case m.kind == metricGauge:
		return uint64(int64(m.gauge.Get())), statusOK
	}
	return 0, statusBadArgument // a histogram has no single value
}

// metricName makes a guest's metric name (Envoy style, with dots) a valid
// Prometheus name.
func metricName(name []byte) string {
	b := make([]byte, len(name))
	for i, c := range name {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_':
			b[i] = c
		default:
			b[i] = '_'
		}
	}
	return string(b)
}

// sharedData is the key-value store of proxy_get/set_shared_data, shared
// by every instance of every filter running the same module file (Envoy
// shares it per VM ID; the module path plays that role here). It lives as
// long as the process, so it survives config reloads.
type sharedData struct {
	mu      sync.Mutex
	entries map[string]*sharedEntry
	bytes   int
}

type sharedEntry struct {
	value []byte
	cas   uint32
}

// Limits of one module's shared data: it is process memory a guest
// controls.
const (
	maxSharedKey   = 1 << 10
	maxSharedBytes = 16 << 20
)

var (
	sharedMu     sync.Mutex
	sharedByPath = map[string]*sharedData{}
)

func sharedDataFor(path string) *sharedData {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	d := sharedByPath[path]
	if d == nil {
		d = &sharedData{entries: map[string]*sharedEntry{}}
		sharedByPath[path] = d
	}
	return d
}

// get appends the value of key to dst.
func (d *sharedData) get(dst, key []byte) ([]byte, uint32, status) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.entries[string(key)]
	if e == nil {
		return dst, 0, statusNotFound
	}
	return append(dst, e.value...), e.cas, statusOK
}

// set stores value under key unless cas is non-zero and differs from the
// entry's current one.
func (d *sharedData) set(key, value []byte, cas uint32) status {
	if len(key) == 0 || len(key) > maxSharedKey {
		return statusBadArgument
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.entries[string(key)]
	if e != nil && cas != 0 && cas != e.cas {
		return statusCASMismatch
	}
	grow := len(value)
	if e != nil {
		grow -= len(e.value)
	} else {
		grow += len(key)
	}
	if d.bytes+grow > maxSharedBytes {
		return statusBadArgument
	}
	if e == nil {
		e = &sharedEntry{}
		d.entries[string(key)] = e
	}
	d.bytes += grow
	e.value = append(e.value[:0], value...)
	e.cas++
	if e.cas == 0 { // 0 means "no CAS" to the guest
		e.cas = 1
	}
	return statusOK
}
