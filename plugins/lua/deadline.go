package lua

import (
	"context"
	"time"
)

// deadline is the context.Context a pooled Lua state runs under. gopher-lua
// has no instruction counter; with LState.SetContext its VM loop checks
// Done() before every instruction and raises an error once the channel is
// closed, which is how a phase call is cut off at its timeout.
//
// context.WithTimeout would allocate a context and a timer per call.
// Instead each state owns one deadline: arm re-arms its timer (no
// allocation), and disarm stops it. When the timer fires, done is closed
// for good; the state is then discarded rather than returned to the pool
// (a closed channel cannot be reopened, and a state that was cut off in the
// middle of the script is in an unknown condition anyway), so a deadline
// fires at most once and the timer callback needs no locking.
//
// A deadline belongs to one state and is used by one goroutine at a time,
// like the state itself; only the timer callback runs elsewhere, and it
// only closes the channel.
type deadline struct {
	done  chan struct{}
	timer *time.Timer
}

func newDeadline() *deadline {
	d := &deadline{done: make(chan struct{})}
	d.timer = time.AfterFunc(time.Hour, func() { close(d.done) })
	d.timer.Stop()
	return d
}

// arm starts the countdown for one call.
func (d *deadline) arm(timeout time.Duration) { d.timer.Reset(timeout) }

// disarm stops the countdown and reports whether the call finished in
// time. false means the timer fired (or its callback is starting): done is
// or will be closed and the state must not be reused. Since Go 1.23 Stop
// on an AfterFunc timer returns false exactly when the function has been
// started.
func (d *deadline) disarm() bool { return d.timer.Stop() }

// expired reports whether the deadline has fired.
func (d *deadline) expired() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// stop releases the timer of a state being discarded.
func (d *deadline) stop() { d.timer.Stop() }

// Deadline implements context.Context. The instant is not tracked (only
// Done matters to the VM), so it reports none.
func (d *deadline) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done implements context.Context.
func (d *deadline) Done() <-chan struct{} { return d.done }

// Err implements context.Context.
func (d *deadline) Err() error {
	if d.expired() {
		return context.DeadlineExceeded
	}
	return nil
}

// Value implements context.Context.
func (d *deadline) Value(any) any { return nil }
