// Package redisguard bounds what Redis may cost a request: every plugin
// that calls Redis on a request's time (rate_limit, cache) goes through a
// Guard, so that a slow, hung or absent Redis adds at most the plugin's
// configured timeout to a request, and nothing at all once it is known to
// be failing.
//
// Two mechanisms make that bound hold whatever Redis (or the client
// library) does:
//
//   - A Budget is the Redis time a request may still spend. A request that
//     calls Redis more than once (the cache's marker and variant lookups,
//     a hybrid rate limit that waited for another request's fetch) shares
//     one budget, so the calls together stay within the timeout.
//   - Do runs the call on another goroutine (a worker kept between calls)
//     and returns when the budget ends even if the call has not. rueidis honours a context's deadline
//     while a command waits for its reply, but not everywhere: a caller
//     queues behind another caller's reconnect (dial and handshake, bounded
//     only by the dial timeout), and behind a full pipeline ring. A Redis
//     stopped with SIGSTOP (a frozen VM, a long fork) produced 0.5–1 s
//     requests under a 20 ms timeout that way.
//
// The Breaker stops calls to a Redis that keeps failing, so that a dead
// Redis costs requests nothing and is not hammered while it restarts.
package redisguard

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// ErrOpen is returned by Do while the breaker is open: Redis was not asked.
var ErrOpen = errors.New("redis circuit open")

// ErrBudget is returned by Do when the request's Redis budget was already
// spent: Redis was not asked.
var ErrBudget = errors.New("redis time budget spent")

// Budget is the Redis time one request may still spend; the zero value has
// nothing left. It is a plain value kept in the request's own state.
type Budget struct {
	left time.Duration
}

// NewBudget returns a budget of d.
func NewBudget(d time.Duration) Budget { return Budget{left: d} }

// Left is what remains of the budget.
func (b *Budget) Left() time.Duration { return b.left }

// Charge takes d off the budget: time a request spent waiting for Redis
// work done on its behalf by another request.
func (b *Budget) Charge(d time.Duration) { b.left -= d }

// Guard bounds one plugin instance's Redis calls. The zero value is not
// ready; use New.
type Guard struct {
	Breaker Breaker
}

// New returns a guard with a closed breaker.
func New() *Guard {
	g := &Guard{}
	g.Breaker.init()
	return g
}

// Do runs fn with a context that ends when b is spent, unless the breaker
// is open (ErrOpen) or nothing is left of b (ErrBudget). It returns by the
// end of the budget whatever fn does: when fn is still running then, Do
// returns context.DeadlineExceeded and fn finishes in the background, its
// results unread. So fn must only write to variables its caller reads when
// Do returned nil or fn's own error, never after a timeout.
//
// now is the caller's monotonic clock in ns, for the breaker. fn's error
// counts as a Redis failure unless it is a reply Redis sent (a Redis error
// or nil reply: Redis is up and answering). The time Do took is charged to
// b.
func (g *Guard) Do(now int64, b *Budget, fn func(ctx context.Context) error) error {
	return g.DoLate(now, b, 0, funcCall(fn))
}

// funcCall is Do's call: a LateCall that ignores a late answer.
type funcCall func(ctx context.Context) error

func (f funcCall) Call(ctx context.Context) error { return f(ctx) }
func (funcCall) Late(error)                       {}

// settle charges b with the time since start and tells the breaker how
// the call went.
func (g *Guard) settle(now int64, b *Budget, start time.Time, err error) {
	b.left -= time.Since(start)
	if err == nil || isReply(err) {
		g.Breaker.Success()
	} else {
		g.Breaker.Failure(now)
	}
}

// LateCall is a Redis call whose outcome matters even when it comes too
// late for the request: Redis runs a command it has received whether or
// not anyone still waits for the answer, so a call that timed out may
// have changed state there (see DoLate).
type LateCall interface {
	// Call makes the call; its results are for the caller when DoLate
	// returned nil or Call's own error, and for Late otherwise.
	Call(ctx context.Context) error
	// Late is called, on Call's goroutine, with Call's error when Call
	// finished after DoLate had returned.
	Late(err error)
}

// DoLate is Do for a LateCall: it returns by the end of b as Do does, but
// the call's context lasts grace longer, and a call that finishes after
// DoLate has returned reports to c.Late, so that the caller learns what
// Redis did. DoLate returns context.DeadlineExceeded only when it gave c
// up to Late: then c belongs to Late.
//
// The call runs on a worker goroutine kept between calls (no goroutine is
// started while one waits idle), with a context and timers reused from
// call to call: a decision that Redis answers in time allocates nothing
// here. The context's Done channel is closed only once the call has
// outlived the budget and the grace: until the budget ends it cannot
// fire, so it is armed only then.
func (g *Guard) DoLate(now int64, b *Budget, grace time.Duration, c LateCall) error {
	if b.left <= 0 {
		return ErrBudget
	}
	if !g.Breaker.Allow(now) {
		return ErrOpen
	}
	start := time.Now()
	r := runs.Get().(*lateRun)
	r.c = c
	r.ctx.deadline = start.Add(b.left + grace)
	submit(r)
	r.budget.Reset(b.left)
	var err error
	select {
	case err = <-r.res:
		r.budget.Stop() // since Go 1.23 a stopped timer's channel is empty
		r.release()
	case <-r.budget.C:
		r.grace.Reset(grace)
		if r.state.CompareAndSwap(0, 2) {
			// The call is Late's now, and so is r: see lateRun.run.
			err = context.DeadlineExceeded
		} else { // the call finished at the same instant: its answer is ours
			err = <-r.res
			if r.grace.Stop() {
				r.release()
			} // else ctx's Done is closed: r is not reused
		}
	}
	g.settle(now, b, start, err)
	return err
}

// lateRun is one DoLate call. It is reused (runs) as long as its
// context's Done channel was never closed.
type lateRun struct {
	c      LateCall
	ctx    callCtx
	res    chan error   // Call's error, when it is DoLate's
	budget *time.Timer  // DoLate's wait for res
	grace  *time.Timer  // closes ctx.done: armed when the budget ends
	state  atomic.Int32 // 0 while Call runs, 1 once its result is DoLate's, 2 once DoLate gave up on it
}

var runs = sync.Pool{New: func() any {
	r := &lateRun{res: make(chan error, 1)}
	r.ctx.done = make(chan struct{})
	r.budget = time.NewTimer(time.Hour)
	r.budget.Stop()
	r.grace = time.AfterFunc(time.Hour, func() { close(r.ctx.done) })
	r.grace.Stop()
	return r
}}

func (r *lateRun) release() {
	r.c = nil
	r.state.Store(0)
	runs.Put(r)
}

func (r *lateRun) run() {
	err := r.c.Call(&r.ctx)
	if r.state.CompareAndSwap(0, 1) {
		r.res <- err // r is DoLate's again from here
		return
	}
	// DoLate gave up on the call, and armed r.grace before it did.
	r.c.Late(err)
	if r.grace.Stop() {
		r.release()
	}
}

// callCtx is a lateRun's context: a deadline for rueidis (which bounds a
// call it makes on the caller's goroutine by the socket's deadline) and a
// Done channel closed by lateRun.grace.
type callCtx struct {
	deadline time.Time
	done     chan struct{}
}

func (c *callCtx) Deadline() (time.Time, bool) { return c.deadline, true }
func (c *callCtx) Done() <-chan struct{}       { return c.done }
func (c *callCtx) Value(any) any               { return nil }
func (c *callCtx) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

// Workers run the calls. A worker that finishes a call waits for the
// next one unless maxIdle others already wait: so calls start no
// goroutine while the load is steady, and a burst (a slow Redis holds a
// worker per call for up to the grace) leaves at most maxIdle behind.
var (
	work        = make(chan *lateRun)
	idleWorkers atomic.Int32
)

const maxIdle = 256

func submit(r *lateRun) {
	select {
	case work <- r: // an idle worker took it
	default:
		go worker(r)
	}
}

func worker(r *lateRun) {
	for {
		r.run()
		if idleWorkers.Add(1) > maxIdle {
			idleWorkers.Add(-1)
			return
		}
		r = <-work
		idleWorkers.Add(-1)
	}
}

// isReply reports whether err is an answer Redis gave (so Redis is up).
func isReply(err error) bool {
	_, ok := rueidis.IsRedisErr(err)
	return ok || rueidis.IsRedisNil(err)
}

// Breaker opens after consecutive failures so that no call goes to a
// failing Redis: no timeout waited, no connection attempt.
//
// Closed: every call goes to Redis; FailThreshold consecutive failures open
// it. Open: no call goes to Redis until OpenFor has passed; then exactly
// one request is let through as a probe (half-open). The probe's success
// closes the breaker, its failure opens it for another OpenFor. So
// recovery after Redis returns takes at most OpenFor plus one round trip.
type Breaker struct {
	fails     atomic.Int32
	openUntil atomic.Int64 // monotonic ns; 0 when closed
	probing   atomic.Bool
	threshold int32
	openFor   int64
}

const (
	// FailThreshold is how many consecutive failures open the breaker.
	FailThreshold = 3
	// OpenFor is how long the breaker stays open before a probe.
	OpenFor = 250 * time.Millisecond
)

func (b *Breaker) init() {
	b.threshold = FailThreshold
	b.openFor = int64(OpenFor)
}

// Allow reports whether a call may go to Redis now.
func (b *Breaker) Allow(now int64) bool {
	ou := b.openUntil.Load()
	if ou == 0 {
		return true
	}
	if now < ou {
		return false
	}
	return b.probing.CompareAndSwap(false, true)
}

// Success records a call Redis answered.
func (b *Breaker) Success() {
	if b.fails.Load() != 0 {
		b.fails.Store(0)
	}
	if b.openUntil.Load() != 0 {
		b.openUntil.Store(0)
		b.probing.Store(false)
	}
}

// Failure records a call Redis did not answer.
func (b *Breaker) Failure(now int64) {
	if b.probing.Load() {
		b.openUntil.Store(now + b.openFor)
		b.probing.Store(false)
		return
	}
	if b.fails.Add(1) >= b.threshold && b.openUntil.Load() == 0 {
		b.openUntil.Store(now + b.openFor)
	}
}

// Open reports whether the breaker is open (for tests and metrics).
func (b *Breaker) Open() bool { return b.openUntil.Load() != 0 }
