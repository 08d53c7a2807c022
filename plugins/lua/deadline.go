package lua

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	glua "github.com/yuin/gopher-lua"
)

// deadline is the context.Context a pooled Lua state runs under, and the
// budget of one phase call.
//
// gopher-lua has no instruction counter, but with LState.SetContext its VM
// loop calls Done() once every glua.ContextPollInterval (64) instructions
// (our patch, third_party/gopher-lua/PATCH.md; upstream polls before
// every instruction) and raises an error once the returned channel is
// closed. Done is therefore where the budget is kept: each call counts
// the instructions since the last, and once the steps are spent (or the
// memory the call holds is over its limit) Done returns a closed channel.
// A call may so run up to 63 instructions past its budget. The
// limit is work done, not time passed, so a script that is only waiting
// for a CPU (a loaded machine, a GC pause) is not cut off; a wall-clock
// limit remains as a backstop at wallFactor times the timeout, kept by
// one watchdog for the whole process (see watchdog) rather than a timer
// per call: arming and stopping a runtime timer takes its lock and was
// a quarter of the cost of a short phase call.
//
// Done also samples the size of the tables the call holds (tables.go).
//
// Library functions that can run long in one instruction (pattern matching,
// gsub, rep, concat, format; see strlib.go) and the `..` operator (see
// concat.go) charge their work with charge and the bytes they create with
// alloc, so the budget holds inside them too.
//
// A state's deadline fires at most once: a fired state is discarded rather
// than pooled (it was cut off in an unknown condition), so done is closed
// at most once.
type deadline struct {
	done chan struct{}
	// armed is the watchdog tick at which the running call is past its
	// wall-clock limit; 0 between calls, firedTick once the watchdog has
	// fired (it closed done).
	armed atomic.Int64
	L     *glua.LState

	steps    int64 // steps left in this call
	mem      int64 // bytes created by library calls in this call
	memLimit int64
	// tables is the size of the tables the call reached at the last
	// sample (tables.go), taken when steps falls below sampleAt.
	tables   int64
	sampleAt int64
	// why the call was cut by its budget (errSteps, errMemory); written
	// and read by the goroutine running the state only (the watchdog
	// only closes done).
	why error
}

var (
	errSteps  = errors.New("the script used up its instruction budget")
	errMemory = errors.New("the script went over its memory limit")
	errWall   = errors.New("the script did not finish in time")
)

// closedCh is returned by Done once a call's budget is spent.
var closedCh = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// stepsPerMs converts the timeout into an instruction budget: 100 000
// steps per millisecond of timeout, about what a 2020s server core runs
// (gopher-lua takes 10-25 ns per instruction).
const stepsPerMs = 100_000

// wallFactor: the wall-clock backstop is this many times the timeout (at
// least minWall), for time spent outside any counted work.
const (
	wallFactor = 10
	minWall    = time.Second
)

// newDeadline returns a deadline watched by the watchdog until stop.
func newDeadline() *deadline {
	d := &deadline{done: make(chan struct{})}
	watch.add(d)
	return d
}

// budgetSteps returns the instruction budget of timeout.
func budgetSteps(timeout time.Duration) int64 {
	return max(int64(timeout/time.Millisecond)*stepsPerMs, stepsPerMs)
}

// wall returns the wall-clock backstop of timeout.
func wall(timeout time.Duration) time.Duration { return max(wallFactor*timeout, minWall) }

// arm starts the budget of one call.
func (d *deadline) arm(timeout time.Duration, memLimit int64) {
	d.steps = budgetSteps(timeout)
	d.mem = 0
	d.memLimit = memLimit
	d.tables = 0
	d.sampleAt = d.steps - sampleEvery
	d.why = nil
	d.armed.Store(watch.tick.Load() + wallTicks(timeout))
}

// disarm ends the call and reports whether it finished within its
// budget. false means the budget is spent or the watchdog fired: the
// state must not be reused.
func (d *deadline) disarm() bool { return d.armed.Swap(0) != firedTick && d.why == nil }

// expired reports whether the call was cut off (budget, memory or time).
func (d *deadline) expired() bool {
	if d.why != nil {
		return true
	}
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// reason is why the call was cut off, once expired.
func (d *deadline) reason() error {
	if d.why != nil {
		return d.why
	}
	return errWall
}

// stop ends the watch of a state being discarded.
func (d *deadline) stop() { watch.remove(d) }

// trip cuts the call off for good.
func (d *deadline) trip(why error) {
	if d.why == nil {
		d.why = why
	}
}

// charge counts n steps of work done inside a library call and raises the
// budget error once they are spent.
func (d *deadline) charge(L *glua.LState, n int) {
	d.steps -= int64(n)
	if d.steps < 0 || d.why != nil {
		d.trip(errSteps)
		L.RaiseError("%s", d.why.Error())
	}
}

// alloc counts n bytes created by a library call and raises the memory
// error once the call is over its limit. Creating bytes is also work: it
// is charged to the step budget at 64 bytes per step.
func (d *deadline) alloc(L *glua.LState, n int) {
	if n < 0 || int64(n) > d.memLimit-d.mem-d.tables {
		d.trip(errMemory)
		L.RaiseError("%s", d.why.Error())
	}
	d.mem += int64(n)
	d.charge(L, n>>6)
}

// sampleTables measures the tables the call reaches (tables.go) and cuts
// the call once they and the strings it created are over the limit. The
// next sample waits at least as many instructions as this one visited
// entries.
func (d *deadline) sampleTables() {
	room := d.memLimit - d.mem
	var visited int
	d.tables, visited = reachable(d.L, room)
	if d.tables > room {
		d.trip(errMemory)
	}
	d.sampleAt = d.steps - max(sampleEvery, int64(visited))
}

// Deadline implements context.Context. The instant is not tracked (only
// Done matters to the VM), so it reports none.
func (d *deadline) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done implements context.Context; the VM calls it once every
// glua.ContextPollInterval instructions, so it is also the instruction
// counter. While the call may
// go on it returns nil, which the VM's select skips at once (a receive
// from an open channel costs a few dozen instructions more, on every
// instruction); once the budget is spent or the watchdog fired, a
// closed channel. gopher-lua's channel library, which would wait on it,
// is never opened (sandbox.go).
func (d *deadline) Done() <-chan struct{} {
	d.steps -= glua.ContextPollInterval
	if d.steps < d.sampleAt {
		d.sampleTables()
	}
	if d.steps < 0 {
		d.trip(errSteps)
	}
	if d.why != nil || d.armed.Load() == firedTick {
		return closedCh
	}
	return nil
}

// Err implements context.Context.
func (d *deadline) Err() error {
	if d.expired() {
		return d.reason()
	}
	return nil
}

// Value implements context.Context.
func (d *deadline) Value(any) any { return nil }

// The watchdog keeps the wall-clock backstop of every deadline of the
// process: a goroutine counts ticks of watchTick and, at each, fires the
// deadlines armed for longer than their wall(timeout). A call pays two
// atomic operations (arm, disarm) and no lock. The backstop fires between
// wall and wall plus two ticks after arm.
const watchTick = 100 * time.Millisecond

// firedTick is deadline.armed once the watchdog fired it.
const firedTick = -1

var watch = &watchdog{all: map[*deadline]struct{}{}}

type watchdog struct {
	tick atomic.Int64 // ticks since the watchdog started
	once sync.Once
	mu   sync.Mutex
	all  map[*deadline]struct{}
}

// wallTicks is wall(timeout) in watchdog ticks, rounded up, plus the tick
// under way.
func wallTicks(timeout time.Duration) int64 {
	return int64((wall(timeout)+watchTick-1)/watchTick) + 1
}

func (w *watchdog) add(d *deadline) {
	w.once.Do(func() { go w.run() })
	w.mu.Lock()
	w.all[d] = struct{}{}
	w.mu.Unlock()
}

func (w *watchdog) remove(d *deadline) {
	w.mu.Lock()
	delete(w.all, d)
	w.mu.Unlock()
}

func (w *watchdog) run() {
	t := time.NewTicker(watchTick)
	for range t.C {
		w.check(w.tick.Add(1))
	}
}

// check fires the deadlines that were armed at or before tick now minus
// their wall limit and are still running.
func (w *watchdog) check(now int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for d := range w.all {
		if at := d.armed.Load(); at > 0 && now >= at && d.armed.CompareAndSwap(at, firedTick) {
			close(d.done)
		}
	}
}
