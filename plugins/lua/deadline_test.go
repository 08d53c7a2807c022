package lua

import (
	"testing"
	"time"
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
