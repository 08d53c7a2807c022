package pool

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
)

// Gauges are func-backed: reading /metrics evaluates the target's state,
// so nothing is written per request. A gauge reads its state through a
// slot rather than a captured pointer because metrics.GetOrCreateGauge
// keeps the first func registered under a name: when a target's state is
// dropped and later recreated (service removed and added back), the same
// gauge must read the new state.
var (
	gaugeMu    sync.Mutex
	gaugeSlots = map[string]*atomic.Pointer[targetState]{}
)

func bindGauges(st *targetState) [2]string {
	labels := `{service="` + escapeLabel(st.key.service) + `",target="` + escapeLabel(st.key.url) + `"}`
	names := [2]string{
		"weir_upstream_target_healthy" + labels,
		"weir_circuit_open" + labels,
	}
	bindGauge(names[0], st, func(s *targetState) float64 { return boolGauge(s.healthy()) })
	bindGauge(names[1], st, func(s *targetState) float64 { return boolGauge(s.brk.state() != circuitClosed) })
	return names
}

func unbindGauges(st *targetState) {
	for _, n := range st.gauges {
		unbindGauge(n, st)
	}
}

func bindGauge(name string, st *targetState, read func(*targetState) float64) {
	gaugeMu.Lock()
	defer gaugeMu.Unlock()
	slot := gaugeSlots[name]
	if slot == nil {
		slot = new(atomic.Pointer[targetState])
		gaugeSlots[name] = slot
	}
	slot.Store(st)
	metrics.GetOrCreateGauge(name, func() float64 {
		if s := slot.Load(); s != nil {
			return read(s)
		}
		return 0
	})
}

// unbindGauge removes the series when st still owns it; a newer state
// bound under the same name (another registry, in tests) keeps it.
func unbindGauge(name string, st *targetState) {
	gaugeMu.Lock()
	defer gaugeMu.Unlock()
	slot := gaugeSlots[name]
	if slot == nil || !slot.CompareAndSwap(st, nil) {
		return
	}
	delete(gaugeSlots, name)
	metrics.UnregisterMetric(name)
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// escapeLabel escapes a Prometheus label value: backslash, double quote
// and line feed (Prometheus text exposition format).
var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }
