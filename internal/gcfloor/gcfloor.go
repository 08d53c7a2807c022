// Package gcfloor keeps the Go garbage collector's heap goal at or above a
// floor (server.gc_heap_floor). A gateway's live heap is often under 1 MB,
// so Go's 4 MiB minimum goal applies and every path that makes garbage
// (a Lua body filter, gRPC, an unseen JWT) starts a collection every few
// MiB of it. After each cycle the controller reads the live heap and sets
// the GC percent so that the next goal is max(Go's own goal, floor): a
// floor, not a multiplier, so a large live heap (10,000 connections) keeps
// GOGC 100's goal and its resident size.
//
// GOGC or GOMEMLIMIT in the environment is the operator's choice: the
// controller then never starts. debug.SetGCPercent takes the heap lock,
// not a stop-the-world (runtime/mgcpacer.go, setGCPercent), and a memory
// limit still wins over the goal it sets (heapGoalInternal takes the
// smaller of the two).
package gcfloor

import (
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// runtimeMinimum is Go's minimum heap goal at GOGC 100 (defaultHeapMinimum
// in runtime/mgcpacer.go). The runtime scales it with the percent
// (4 MiB × percent/100), so Percent caps the percent at the one that makes
// that minimum the floor itself.
const runtimeMinimum = 4 << 20

// base is the GC percent without a floor: Go's default, since the
// controller runs only when GOGC is not set.
const base = 100

// Percent is the GC percent whose heap goal is max(live + (live+scan) ×
// base/100, floor), with live the heap marked live by the last cycle and
// scan the stacks and globals it scanned: the runtime's goal is
// live + (live+scan) × percent/100, and at least 4 MiB × percent/100.
// floor <= 0 is off: base.
func Percent(live, scan, floor int64, base int) int {
	if floor <= 0 || live+(live+scan)*int64(base)/100 >= floor {
		return base
	}
	limit := floor * 100 / runtimeMinimum
	p := limit
	if work := live + scan; work > 0 && (floor-live)*100/work < limit {
		p = (floor - live) * 100 / work
	}
	if p < int64(base) {
		return base
	}
	return int(p)
}

var (
	floor   atomic.Int64
	started atomic.Bool
	mu      sync.Mutex // serialises tune: the finalizer goroutine and Set
	last    = base     // the percent last set, under mu
	samples = []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/scan/stack:bytes"},
		{Name: "/gc/scan/globals:bytes"},
	}
)

// Off returns why the floor must stay off whatever the config says (GOGC
// or GOMEMLIMIT in the environment), "" when it may run.
func Off() string {
	for _, k := range []string{"GOGC", "GOMEMLIMIT"} {
		if os.Getenv(k) != "" {
			return k + " is set in the environment"
		}
	}
	return ""
}

// Start starts the controller with floor bytes (0: off until Set), unless
// Off says otherwise; it logs which.
func Start(bytes int64, log *slog.Logger) {
	if why := Off(); why != "" {
		log.Info("server.gc_heap_floor is off: "+why+"; the Go runtime's own GC settings apply", "gc_heap_floor", bytes)
		return
	}
	floor.Store(bytes)
	if started.Swap(true) {
		return
	}
	log.Info("gc heap floor", "gc_heap_floor", bytes)
	tune()
	arm()
}

// Set changes the floor of a started controller (a reload) and applies it
// now; before Start, or when Off, it does nothing.
func Set(bytes int64) {
	if !started.Load() || floor.Swap(bytes) == bytes {
		return
	}
	tune()
}

// sentinel holds a pointer so that it is not a tiny allocation, whose
// finalizer may never run.
type sentinel struct{ _ *int }

// arm sets a finalizer on a fresh unreachable object: it runs after the
// next cycle, tunes, and arms again: one call per GC cycle.
func arm() {
	runtime.SetFinalizer(&sentinel{}, func(*sentinel) {
		tune()
		arm()
	})
}

// tune sets the GC percent for the live heap the last cycle found.
func tune() {
	mu.Lock()
	defer mu.Unlock()
	metrics.Read(samples)
	scan := int64(samples[1].Value.Uint64() + samples[2].Value.Uint64())
	p := Percent(int64(samples[0].Value.Uint64()), scan, floor.Load(), base)
	if p != last {
		debug.SetGCPercent(p)
		last = p
	}
}
