package transport

import (
	"errors"
	"testing"
	"time"
)

// TestWaitQueueFirstComeFirstServed: with the one token taken, waiters
// get it in the order they came, each from the release before it, and a
// request that arrives while others wait queues behind them instead of
// taking a token a release put back.
func TestWaitQueueFirstComeFirstServed(t *testing.T) {
	tr := New(Config{Addr: "127.0.0.1:1", MaxConns: 1, MaxConnWait: 10 * time.Second})
	defer tr.Close()
	if !tr.tryToken() {
		t.Fatal("no first token")
	}
	const n = 8
	order := make(chan int, n)
	for i := 0; i < n; i++ {
		go func() {
			if err := tr.waitToken(time.Time{}); err != nil {
				t.Error(err)
			}
			order <- i
		}()
		for tr.queue.n.Load() != int64(i+1) { // queued, in this order
			time.Sleep(time.Millisecond)
		}
	}
	for i := 0; i < n; i++ {
		tr.putToken()
		if got := <-order; got != i {
			t.Fatalf("waiter %d got the token %d-th", got, i)
		}
		if tr.inUse.Load() != 1 {
			t.Fatalf("%d tokens in use after a hand-off, want 1", tr.inUse.Load())
		}
	}
	tr.putToken()
	if tr.inUse.Load() != 0 || tr.queue.n.Load() != 0 || tr.queue.head != nil {
		t.Fatalf("in use %d, queued %d", tr.inUse.Load(), tr.queue.n.Load())
	}
}

// TestWaitQueueTimeouts: waiters with different waits are answered
// ErrPoolTimeout each at its own deadline (within the sweep's slack), by
// the transport's one timer, and leave the queue; those still inside
// their wait stay and get tokens.
func TestWaitQueueTimeouts(t *testing.T) {
	tr := New(Config{Addr: "127.0.0.1:1", MaxConns: 1, MaxConnWait: 5 * time.Second})
	defer tr.Close()
	tr.tryToken()
	type res struct {
		err  error
		took time.Duration
	}
	waits := []time.Duration{300 * time.Millisecond, 100 * time.Millisecond, 0} // 0: MaxConnWait
	out := make([]chan res, len(waits))
	for i, d := range waits {
		out[i] = make(chan res, 1)
		go func() {
			var dl time.Time
			if d > 0 {
				dl = time.Now().Add(d)
			}
			t0 := time.Now()
			err := tr.waitToken(dl)
			out[i] <- res{err, time.Since(t0)}
		}()
		for tr.queue.n.Load() != int64(i+1) {
			time.Sleep(time.Millisecond)
		}
	}
	for _, i := range []int{1, 0} {
		r := <-out[i]
		if !errors.Is(r.err, ErrPoolTimeout) || r.took < waits[i] || r.took > waits[i]+2*time.Second {
			t.Fatalf("waiter with %v: %v after %v, want ErrPoolTimeout at its deadline", waits[i], r.err, r.took)
		}
	}
	if tr.queue.n.Load() != 1 {
		t.Fatalf("%d waiting, want the one with the long wait", tr.queue.n.Load())
	}
	tr.putToken()
	if r := <-out[2]; r.err != nil {
		t.Fatalf("the waiter still inside its wait: %v", r.err)
	}
}

// BenchmarkWaitToken is a request that finds no free connection, waits
// and is handed one (the allocation per wait is what it measures).
func BenchmarkWaitToken(b *testing.B) {
	tr := New(Config{Addr: "127.0.0.1:1", MaxConns: 1, MaxConnWait: 10 * time.Second})
	defer tr.Close()
	tr.tryToken()
	b.ReportAllocs()
	done := make(chan struct{})
	go func() {
		for i := 0; i < b.N; i++ {
			for tr.queue.n.Load() == 0 {
				time.Sleep(time.Microsecond)
			}
			tr.putToken()
		}
		close(done)
	}()
	for i := 0; i < b.N; i++ {
		if err := tr.waitToken(time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
	<-done
}
