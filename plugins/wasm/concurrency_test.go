package wasm

import (
	"fmt"
	"sync"
	"testing"

	"github.com/weirgw/weir/sdk"
)

// TestConcurrentRequests runs many requests at once through a small pool
// (so that goroutines share instances and contexts interleave), with
// blocked ones, runaway ones and plain ones mixed. Run with -race.
func TestConcurrentRequests(t *testing.T) {
	f := newFilter(t, headersWasm, map[string]any{"config": headersConfig, "pool_size": 2}, nil)
	const workers, perWorker = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				if err := oneRequest(f, w, i); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func oneRequest(f *filter, w, i int) error {
	path := fmt.Sprintf("/w%d/r%d", w, i)
	block := i%5 == 0
	var headers []string
	if block {
		headers = append(headers, "X-Block: 1")
	}
	rc, c := request("GET", path, "", headers...)
	defer sdk.ReleaseCtx(c)
	st, err := f.OnRequest(c)
	if err != nil {
		return fmt.Errorf("%s: OnRequest: %v", path, err)
	}
	if block != (st == sdk.Stop) {
		return fmt.Errorf("%s: status %v, blocked %v", path, st, block)
	}
	if !block {
		if got := string(rc.Request.Header.Peek("X-Wasm-Path")); got != path {
			return fmt.Errorf("%s: X-Wasm-Path = %q (another request's context?)", path, got)
		}
		upstream(rc, 200, "ok")
	}
	if err := f.OnResponse(c); err != nil {
		return fmt.Errorf("%s: OnResponse: %v", path, err)
	}
	f.OnLog(c)
	if got := string(rc.Response.Header.Peek("X-Wasm-Filter")); got != "headers" {
		return fmt.Errorf("%s: X-Wasm-Filter = %q", path, got)
	}
	if block && rc.Response.StatusCode() != 403 {
		return fmt.Errorf("%s: blocked with %d", path, rc.Response.StatusCode())
	}
	return nil
}

// TestConcurrentFailures mixes runaway and trapping requests with good
// ones on a hand-assembled guest: failures replace instances while other
// goroutines use the pool; good requests either succeed or fail with
// errSpent (their context was in a dropped instance), never anything else.
func TestConcurrentFailures(t *testing.T) {
	f := newFilter(t, writeModule(t, "hostile", hostileGuest()), map[string]any{"timeout": "200ms", "pool_size": 2}, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				var hdr []string
				switch {
				case w == 0 && i%4 == 0:
					hdr = []string{"X-Loop: 1"}
				case w == 1 && i%3 == 0:
					hdr = []string{"X-Trap: 1"}
				}
				rc, c := request("GET", "/", "", hdr...)
				_, err := f.OnRequest(c)
				if (err != nil) != (hdr != nil) {
					errs <- fmt.Errorf("worker %d request %d %v: err %v", w, i, hdr, err)
					sdk.ReleaseCtx(c)
					return
				}
				if err == nil {
					upstream(rc, 200, "ok")
					if err := f.OnResponse(c); err != nil && err != errSpent {
						errs <- fmt.Errorf("worker %d request %d: OnResponse: %v", w, i, err)
					}
				}
				f.OnLog(c)
				sdk.ReleaseCtx(c)
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The pool recovers: a plain request works afterwards.
	rc, c := request("GET", "/", "")
	defer sdk.ReleaseCtx(c)
	roundTrip(t, f, rc, c)
}
