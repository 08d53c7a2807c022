package redisguard

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"
)

func TestBreaker(t *testing.T) {
	g := New()
	b := &g.Breaker
	now := int64(time.Hour)
	for i := range FailThreshold - 1 {
		b.Failure(now)
		if !b.Allow(now) {
			t.Fatalf("open after %d failures", i+1)
		}
	}
	b.Success()
	for range FailThreshold - 1 {
		b.Failure(now)
	}
	if !b.Allow(now) {
		t.Fatal("a success must reset the failure count")
	}
	b.Failure(now)
	if b.Allow(now) || b.Allow(now+b.openFor-1) {
		t.Fatal("open breaker let a request through before OpenFor")
	}
	at := now + b.openFor
	if !b.Allow(at) {
		t.Fatal("no probe after OpenFor")
	}
	if b.Allow(at) {
		t.Fatal("two probes at once")
	}
	b.Failure(at) // the probe failed: open again
	if b.Allow(at + b.openFor - 1) {
		t.Fatal("failed probe did not reopen the breaker")
	}
	if !b.Allow(at + b.openFor) {
		t.Fatal("no second probe")
	}
	b.Success()
	if !b.Allow(at+b.openFor) || b.Open() {
		t.Fatal("successful probe did not close the breaker")
	}
}

// TestDoReturnsWhenTheBudgetEnds: a call that ignores its context (as
// rueidis does while a caller waits for another caller's reconnect) still
// costs the request no more than its budget, and the budget is shared by
// the calls of one request.
func TestDoReturnsWhenTheBudgetEnds(t *testing.T) {
	g := New()
	release := make(chan struct{})
	defer close(release)
	stuck := func(context.Context) error { <-release; return nil }
	b := NewBudget(30 * time.Millisecond)
	start := time.Now()
	if err := g.Do(0, &b, stuck); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline error", err)
	}
	// 30ms budget; 100ms leaves room for a loaded 2-core test machine
	// while still failing a call that waited for the callee.
	if el := time.Since(start); el > 100*time.Millisecond {
		t.Fatalf("Do took %v with a 30ms budget", el)
	}
	if b.Left() > 0 {
		t.Fatalf("budget left after a timeout: %v", b.Left())
	}
	if err := g.Do(0, &b, stuck); err != ErrBudget {
		t.Fatalf("second call on a spent budget: %v, want ErrBudget", err)
	}
	// Two timeouts so far; the third opens the breaker.
	b = NewBudget(time.Millisecond)
	_ = g.Do(0, &b, stuck)
	b = NewBudget(time.Millisecond)
	_ = g.Do(0, &b, stuck)
	if !g.Breaker.Open() {
		t.Fatal("breaker not open after three timeouts")
	}
	b = NewBudget(time.Second)
	called := false
	if err := g.Do(1, &b, func(context.Context) error { called = true; return nil }); err != ErrOpen || called {
		t.Fatalf("open breaker: err %v, called %v", err, called)
	}
}

// TestDoRedisRepliesAreSuccess: a nil reply or a Redis error is Redis
// answering; it must not open the breaker.
func TestDoRedisRepliesAreSuccess(t *testing.T) {
	g := New()
	for range 2 * FailThreshold {
		b := NewBudget(time.Second)
		err := g.Do(0, &b, func(context.Context) error {
			return rueidis.Nil
		})
		if !rueidis.IsRedisNil(err) {
			t.Fatalf("err = %v", err)
		}
	}
	if g.Breaker.Open() {
		t.Fatal("nil replies opened the breaker")
	}
}

// lateCall is a LateCall from two functions.
type lateCall struct {
	call func(context.Context) error
	late func(error)
}

func (c lateCall) Call(ctx context.Context) error { return c.call(ctx) }
func (c lateCall) Late(err error)                 { c.late(err) }

// TestDoLateReadsTheAnswerAfterTheBudget: DoLate returns when the budget
// ends, as Do does, but the call keeps its context for the grace period
// and its outcome reaches Late; a call that finishes in time does not.
func TestDoLateReadsTheAnswerAfterTheBudget(t *testing.T) {
	g := New()
	release := make(chan struct{})
	got := make(chan error, 1)
	b := NewBudget(20 * time.Millisecond)
	start := time.Now()
	err := g.DoLate(0, &b, time.Minute, lateCall{func(ctx context.Context) error {
		<-release
		return ctx.Err() // still alive: the grace is a minute
	}, func(err error) { got <- err }})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline error", err)
	}
	if el := time.Since(start); el > 100*time.Millisecond {
		t.Fatalf("DoLate took %v with a 20ms budget", el)
	}
	close(release)
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("Late got %v: the call's context ended with the budget", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Late was never called")
	}

	var called atomic.Bool
	for range 3 { // the pooled timer is reused
		b = NewBudget(time.Second)
		if err := g.DoLate(0, &b, time.Minute, lateCall{func(context.Context) error { return nil },
			func(error) { called.Store(true) }}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(10 * time.Millisecond)
	if called.Load() {
		t.Fatal("Late called for a call that answered in time")
	}
}

// TestDoLateAllocatesNothing: a call answered within the budget reuses
// its worker, context and timers.
func TestDoLateAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race (sync.Pool drops items)")
	}
	g := New()
	c := lateCall{func(context.Context) error { return nil }, func(error) {}}
	var lc LateCall = c
	allocs := testing.AllocsPerRun(1000, func() {
		b := NewBudget(time.Second)
		if err := g.DoLate(0, &b, time.Second, lc); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocs per DoLate, want 0", allocs)
	}
}

// TestDoLateReusesOnlyLiveContexts: a call whose context ended (budget
// and grace spent) does not hand its closed context to later calls,
// which find theirs live and are answered in time.
func TestDoLateReusesOnlyLiveContexts(t *testing.T) {
	g := New()
	late := make(chan error, 1)
	b := NewBudget(5 * time.Millisecond)
	err := g.DoLate(0, &b, time.Millisecond, lateCall{func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	}, func(err error) { late <- err }})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("DoLate = %v, want the deadline", err)
	}
	if err := <-late; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Late got %v, want the context's deadline", err)
	}
	for i := range 100 {
		b := NewBudget(time.Second)
		err := g.DoLate(0, &b, time.Second, lateCall{func(ctx context.Context) error {
			if _, ok := ctx.Deadline(); !ok {
				return errors.New("no deadline")
			}
			return ctx.Err()
		}, func(error) {}})
		if err != nil {
			t.Fatalf("call %d after a spent context: %v", i, err)
		}
	}
}
