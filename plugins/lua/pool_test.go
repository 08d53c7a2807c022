package lua

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/weirgw/weir/sdk"
)

// TestPoolStartClose: Start prepares pool_size states; Close closes the
// idle ones, and a state given back after Close is closed too.
func TestPoolStartClose(t *testing.T) {
	f := newFilter(t, `function access() end`, map[string]any{"pool_size": 3}, nil)
	p := base(f).pool
	if p.idleCount() != 1 {
		t.Fatalf("after New: %d idle, want 1 (the state New prepared)", p.idleCount())
	}
	if err := f.(sdk.Starter).Start(); err != nil {
		t.Fatal(err)
	}
	if p.idleCount() != 3 || p.created.Load() != 3 {
		t.Fatalf("after Start: idle %d created %d, want 3 3", p.idleCount(), p.created.Load())
	}
	st, err := p.get()
	if err != nil {
		t.Fatal(err)
	}
	f.(sdk.Closer).Close()
	if p.idleCount() != 0 {
		t.Fatalf("after Close: %d idle", p.idleCount())
	}
	p.put(st)
	if p.idleCount() != 0 || !st.L.IsClosed() {
		t.Fatal("a state returned after Close was pooled")
	}
}

// TestPoolOverflow: with every state borrowed, get waits up to the
// timeout, then prepares an extra state that put closes.
func TestPoolOverflow(t *testing.T) {
	// The wait is the timeout, at most maxPoolWait (50ms): long enough
	// for the waiter below to be waiting on a loaded machine.
	f := newFilter(t, `function access() end`, map[string]any{"pool_size": 1, "timeout": "1s"}, nil)
	p := base(f).pool
	a, err := p.get()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	b, err := p.get()
	if err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 40*time.Millisecond {
		t.Fatalf("got an extra state after %s, want a wait of ~50ms first", waited)
	}
	if !b.overflow || a.overflow {
		t.Fatalf("overflow flags: a %v b %v", a.overflow, b.overflow)
	}
	p.put(b)
	if !b.L.IsClosed() || p.idleCount() != 0 {
		t.Fatal("the overflow state was pooled")
	}
	// A state given back while someone waits is handed over.
	got := make(chan *state)
	go func() {
		st, _ := p.get()
		got <- st
	}()
	time.Sleep(5 * time.Millisecond)
	p.put(a)
	if st := <-got; st != a {
		t.Fatalf("waiter got %p, want the returned state %p", st, a)
	}
	p.put(a)
	if p.idleCount() != 1 || p.created.Load() != 1 {
		t.Fatalf("idle %d created %d, want 1 1", p.idleCount(), p.created.Load())
	}
}

// TestConcurrent runs many requests at once through one filter with a
// small pool (so states are shared out, waited for and discarded under
// contention): every request must see only its own data, and failures
// must stay confined to the requests that caused them. Run with -race.
func TestConcurrent(t *testing.T) {
	lb := &logBuf{}
	f := newFilter(t, `
function access()
  local id = weir.request.get_header("X-Id")
  if weir.request.get_header("X-Fail") then error("failing " .. id) end
  weir.ctx.shared.id = id
  weir.request.set_header("X-Seen", id)
  weir.response.set_header("X-Deferred", id)
end
function header_filter()
  weir.response.set_header("X-Id", weir.ctx.shared.id)
end
function body_filter(body)
  return body .. "/" .. weir.ctx.shared.id
end
function log()
  assert(weir.ctx.shared.id == weir.request.get_header("X-Id"), "log sees another request")
end`, map[string]any{"pool_size": 2, "timeout": "5s"}, lb)
	if err := f.(sdk.Starter).Start(); err != nil {
		t.Fatal(err)
	}
	logErrors := base(f).errors[phaseLog].Get()
	const workers, perWorker = 8, 150
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				id := fmt.Sprintf("%d-%d", w, i)
				fail := i%37 == 0
				hdr := []string{"X-Id: " + id}
				if fail {
					hdr = append(hdr, "X-Fail: 1")
				}
				rc, c := request("GET", "/", hdr...)
				_, err := f.OnRequest(c)
				if fail {
					if err == nil || err.Error() != "lua: access: source:4: failing "+id {
						errs <- fmt.Errorf("%s: error = %v", id, err)
						return
					}
					sdk.ReleaseCtx(c)
					continue
				}
				if err != nil {
					errs <- fmt.Errorf("%s: %v", id, err)
					return
				}
				rc.Response.SetBodyString("b")
				if err := f.(sdk.ResponseFilter).OnResponse(c); err != nil {
					errs <- fmt.Errorf("%s: %v", id, err)
					return
				}
				c.ApplyResponseHeaders()
				f.(sdk.LogFilter).OnLog(c)
				r := &rc.Response
				if string(rc.Request.Header.Peek("X-Seen")) != id || string(r.Header.Peek("X-Id")) != id ||
					string(r.Header.Peek("X-Deferred")) != id || string(r.Body()) != "b/"+id {
					errs <- fmt.Errorf("%s: crossed data: seen %q id %q deferred %q body %q", id,
						rc.Request.Header.Peek("X-Seen"), r.Header.Peek("X-Id"), r.Header.Peek("X-Deferred"), r.Body())
					return
				}
				sdk.ReleaseCtx(c)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	p := base(f).pool
	if n := p.created.Load(); n < 0 || n > 2 {
		t.Fatalf("created = %d, want within [0, 2]", n)
	}
	if got := base(f).errors[phaseLog].Get() - logErrors; got != 0 {
		t.Fatalf("%d log phase errors:\n%s", got, lb)
	}
}

// TestPoolLendsLastReturned: one borrower at a time keeps getting the
// same state, whose memory is warm in the CPU caches, instead of rotating
// through all of them, also after a burst borrowed several.
func TestPoolLendsLastReturned(t *testing.T) {
	f := newFilter(t, `function access() end`, map[string]any{"pool_size": 3}, nil)
	p := base(f).pool
	if err := f.(sdk.Starter).Start(); err != nil {
		t.Fatal(err)
	}
	a, _ := p.get()
	b, _ := p.get()
	p.put(b)
	p.put(a)
	first, err := p.get()
	if err != nil {
		t.Fatal(err)
	}
	p.put(first)
	for range 5 {
		st, err := p.get()
		if err != nil {
			t.Fatal(err)
		}
		if st != first {
			t.Fatalf("lent %p, want the state lent and given back just before, %p", st, first)
		}
		p.put(st)
	}
	if p.idleCount() != 3 {
		t.Fatalf("%d idle, want 3", p.idleCount())
	}
}

// TestPoolWaiterNeverMissesAState: a borrower that starts to wait for a
// busy pool just as its state is being given back (after put looked for
// waiters, before it stored the state in the hot slot) gets that state;
// before, it sat out its whole wait and then made an overflow state while
// the pool's state lay idle.
func TestPoolWaiterNeverMissesAState(t *testing.T) {
	f := newFilter(t, `function access() end`, map[string]any{"pool_size": 1}, nil)
	p := base(f).pool
	if err := f.(sdk.Starter).Start(); err != nil {
		t.Fatal(err)
	}
	p.wait = 10 * time.Second // a missed hand-off shows as an overflow state
	only, err := p.get()
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *state, 1)
	putBeforeHot = func() {
		putBeforeHot = nil
		go func() {
			st, err := p.get()
			if err != nil {
				t.Error(err)
			}
			got <- st
		}()
		for i := 0; p.waiting.Load() == 0; i++ {
			if i == 1000 {
				t.Fatal("the second borrower never began to wait")
			}
			time.Sleep(time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond) // it is past its look at hot, in its wait
	}
	defer func() { putBeforeHot = nil }()
	p.put(only)
	select {
	case st := <-got:
		if st != only {
			t.Fatalf("the waiter got %p (overflow %v), want the state given back, %p", st, st.overflow, only)
		}
		p.put(st)
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter got no state in 5 s while the pool's one state was idle")
	}
}
