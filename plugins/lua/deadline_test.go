package lua

import (
	"testing"
	"time"

	"github.com/weirgw/weir/sdk"
	glua "github.com/yuin/gopher-lua"
)

// TestWatchdogFires: the wall-clock backstop fires a call armed for
// longer than wall(timeout) in watchdog ticks, never earlier, and a
// fired deadline reports it at disarm (its state is then discarded).
func TestWatchdogFires(t *testing.T) {
	d := newDeadline()
	defer d.stop()
	const timeout = 50 * time.Millisecond // wall: 1s = 10 ticks
	d.arm(timeout, 1<<20)
	at := d.armed.Load()
	if got := at - watch.tick.Load(); got != wallTicks(timeout) || got < int64(wall(timeout)/watchTick) {
		t.Fatalf("armed %d ticks ahead, want %d (wall %s)", got, wallTicks(timeout), wall(timeout))
	}
	watch.check(at - 1)
	if d.expired() {
		t.Fatal("fired before its wall limit")
	}
	watch.check(at)
	select {
	case <-d.Done():
	default:
		t.Fatal("Done is not closed once the watchdog fired")
	}
	if !d.expired() || d.reason() != errWall {
		t.Fatalf("expired %v reason %v, want the wall-clock reason", d.expired(), d.reason())
	}
	if d.disarm() {
		t.Fatal("disarm reported a fired call as within its budget")
	}
}

// TestWatchdogIgnoresIdle: a disarmed deadline is never fired, and one
// disarmed in time reports so.
func TestWatchdogIgnoresIdle(t *testing.T) {
	d := newDeadline()
	defer d.stop()
	d.arm(50*time.Millisecond, 1<<20)
	at := d.armed.Load()
	if !d.disarm() {
		t.Fatal("a call that ended in time reported as cut off")
	}
	watch.check(at + 100)
	if d.expired() {
		t.Fatal("the watchdog fired an idle deadline")
	}
}

// TestWatchdogForgetsStopped: a stopped deadline leaves the watch.
func TestWatchdogForgetsStopped(t *testing.T) {
	d := newDeadline()
	d.stop()
	watch.mu.Lock()
	_, in := watch.all[d]
	watch.mu.Unlock()
	if in {
		t.Fatal("a stopped deadline is still watched")
	}
}

// TestBudgetCountsEveryInstruction: the VM polls Done once every
// glua.ContextPollInterval instructions, and the budget still counts
// every instruction run, within one interval.
func TestBudgetCountsEveryInstruction(t *testing.T) {
	// 100 000 iterations of FORLOOP, plus a handful of instructions.
	f := base(newFilter(t, `function access() for i = 1, 100000 do end end`, map[string]any{"pool_size": 1}, nil))
	_, c := request("GET", "/")
	defer sdk.ReleaseCtx(c)
	access(t, f, c)
	st, err := f.pool.get()
	if err != nil {
		t.Fatal(err)
	}
	defer f.pool.put(st)
	spent := budgetSteps(f.s.timeout) - st.dl.steps
	if spent < 100_000-glua.ContextPollInterval || spent > 100_010+glua.ContextPollInterval {
		t.Fatalf("the call was charged %d steps for about 100 005 instructions", spent)
	}
}
