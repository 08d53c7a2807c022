package wasm

import (
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/weirgw/weir/sdk"
)

// Data addresses in the hostile guest's memory.
const (
	adLoop       = 64
	adTrap       = 80
	adPause      = 96
	adOOB        = 112
	adBadPairs   = 128
	adMallocTrap = 144
	adLocal      = 176
	adTeapot     = 192
	adPairs      = 208
	adRespLoop   = 256
	adGrow       = 272
)

// hostileGuest is a hand-assembled guest that misbehaves on request:
//
//	x-loop: 1        proxy_on_request_headers never returns
//	x-trap: 1        proxy_on_request_headers traps (unreachable)
//	x-malloc-trap: 1 its allocator traps while the host hands it a buffer
//	x-pause: 1       returns Pause without answering
//	x-oob: 1         calls host functions with out-of-bounds pointers and
//	                 traps unless each answers INVALID_MEMORY_ACCESS (or
//	                 BAD_ARGUMENT where the data, not the pointer, is bad)
//	x-local: 1       answers 418 "teapot" via proxy_send_local_response
//	x-grow: 1        grows its memory by 100 pages (6.25 MiB) and traps
//	                 unless the host refused (memory.grow returned -1)
//
// and proxy_on_response_headers loops when the response has x-loop.
// proxy_on_configure refuses a one-byte configuration.
func hostileGuest() []byte {
	a := &asm{}
	getHdr := a.Import("env", "proxy_get_header_map_value", i32x(5), i32x(1))
	logFn := a.Import("env", "proxy_log", i32x(3), i32x(1))
	getPairs := a.Import("env", "proxy_get_header_map_pairs", i32x(3), i32x(1))
	addHdr := a.Import("env", "proxy_add_header_map_value", i32x(5), i32x(1))
	setPairs := a.Import("env", "proxy_set_header_map_pairs", i32x(3), i32x(1))
	sendLocal := a.Import("env", "proxy_send_local_response", i32x(8), i32x(1))
	getProp := a.Import("env", "proxy_get_property", i32x(4), i32x(1))
	getBuf := a.Import("env", "proxy_get_buffer_bytes", i32x(5), i32x(1))
	setBuf := a.Import("env", "proxy_set_buffer_bytes", i32x(5), i32x(1))
	getTime := a.Import("env", "proxy_get_current_time_nanoseconds", i32x(1), i32x(1))
	getLevel := a.Import("env", "proxy_get_log_level", i32x(1), i32x(1))
	defMetric := a.Import("env", "proxy_define_metric", i32x(4), i32x(1))
	incMetric := a.Import("env", "proxy_increment_metric", []byte{tI32, tI64}, i32x(1))
	proxyBase(a)
	a.Func("proxy_on_configure", i32x(2), i32x(1), local(1), ci32(1), op(opI32Ne))

	str := func(addr uint32, s string) { a.Data = append(a.Data, wasmData{Offset: addr, Bytes: []byte(s)}) }
	str(adLoop, "x-loop")
	str(adTrap, "x-trap")
	str(adPause, "x-pause")
	str(adOOB, "x-oob")
	a.Data = append(a.Data, wasmData{Offset: adBadPairs, Bytes: []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}})
	str(adMallocTrap, "x-malloc-trap")
	str(adLocal, "x-local")
	str(adTeapot, "teapot")
	str(adGrow, "x-grow")
	a.Data = append(a.Data, wasmData{Offset: adPairs, Bytes: appendPairs(nil, []kv{{[]byte("x-tea"), []byte("earl grey")}})})

	// has(map, key): proxy_get_header_map_value returned OK.
	has := func(m int64, addr uint32, n int) []byte {
		return cat(ci32(m), ci32(int64(addr)), ci32(int64(n)), ci32(16), ci32(20), call(getHdr), op(opI32Eqz))
	}
	when := func(cond []byte, then ...[]byte) []byte {
		return cat(cond, op(opIf, blockVoid), cat(then...), op(opEnd))
	}
	spin := op(opLoop, blockVoid, opBr, 0, opEnd)
	const bad = 0xFFFFFFF0
	oob := cat(
		expect(6, ci32(2), ci32(0xFFFFFF00), ci32(0x1000), call(logFn)),
		expect(6, ci32(0), ci32(0x7FFFFFFF), ci32(10), ci32(16), ci32(20), call(getHdr)),
		expect(6, ci32(0), ci32(adOOB), ci32(5), ci32(bad), ci32(20), call(getHdr)),
		expect(6, ci32(0), ci32(adOOB), ci32(5), ci32(16), ci32(bad), call(getHdr)),
		expect(6, ci32(0), ci32(bad), ci32(20), call(getPairs)),
		expect(6, ci32(0), ci32(adOOB), ci32(5), ci32(0), ci32(0xFFFFFFFF), call(addHdr)),
		expect(6, ci32(0), ci32(0xFFFF0000), ci32(100), call(setPairs)),
		expect(2, ci32(0), ci32(adBadPairs), ci32(8), call(setPairs)),
		expect(6, ci32(200), ci32(0), ci32(0), ci32(bad), ci32(64), ci32(0), ci32(0), ci32(-1), call(sendLocal)),
		expect(6, ci32(200), ci32(0), ci32(0), ci32(0), ci32(0), ci32(bad), ci32(8), ci32(-1), call(sendLocal)),
		expect(2, ci32(200), ci32(0), ci32(0), ci32(0), ci32(0), ci32(adBadPairs), ci32(8), ci32(-1), call(sendLocal)),
		expect(6, ci32(bad), ci32(5), ci32(16), ci32(20), call(getProp)),
		expect(6, ci32(7), ci32(0), ci32(100), ci32(bad), ci32(20), call(getBuf)),
		expect(6, ci32(1), ci32(0), ci32(0), ci32(bad), ci32(10), call(setBuf)),
		expect(6, ci32(0xFFFFFFFC), call(getTime)),
		expect(6, ci32(0xFFFFFFFF), call(getLevel)),
		expect(6, ci32(0), ci32(bad), ci32(4), ci32(16), call(defMetric)),
		expect(1, ci32(99), i64c(1), call(incMetric)),
		expect(2, ci32(99), ci32(16), ci32(20), call(getPairs)),
		// An allocator that returns an address outside memory: the host
		// cannot copy the value out.
		store(8, 0xFFFFFF00),
		expect(6, ci32(0), ci32(adOOB), ci32(5), ci32(16), ci32(20), call(getHdr)),
		store(8, 1024),
	)
	a.Func("proxy_on_request_headers", i32x(3), i32x(1),
		when(has(0, adLoop, 6), spin),
		when(has(0, adTrap, 6), op(opUnreachable)),
		when(has(0, adMallocTrap, 13), store(8, 1), has(0, adMallocTrap, 13), op(opDrop), store(8, 1024)),
		when(has(0, adOOB, 5), oob),
		when(has(0, adLocal, 7),
			expect(0, ci32(418), ci32(0), ci32(0), ci32(adTeapot), ci32(6), ci32(adPairs), ci32(int64(len(appendPairs(nil, []kv{{[]byte("x-tea"), []byte("earl grey")}})))), ci32(-1), call(sendLocal))),
		when(has(0, adPause, 7), ci32(1), op(opReturn)),
		when(has(0, adGrow, 6), ci32(100), op(opMemoryGrow, 0), ci32(-1), op(opI32Ne, opIf, blockVoid, opUnreachable, opEnd)),
		ci32(0))
	a.Func("proxy_on_response_headers", i32x(3), i32x(1),
		when(has(2, adLoop, 6), spin),
		ci32(0))
	a.Func("proxy_on_done", i32x(1), i32x(1), ci32(1))
	a.Func("proxy_on_delete", i32x(1), nil)
	return a.Bytes()
}

func newHostile(t *testing.T, extra map[string]any, lb *logBuf) *filter {
	t.Helper()
	return newFilter(t, writeModule(t, "hostile", hostileGuest()), extra, lb)
}

func counter(name string) *metrics.Counter { return metrics.GetOrCreateCounter(name) }

// TestTimeoutStopsRunawayGuest: an endless loop in a callback is stopped
// by the timeout; the request fails, the instance is replaced, and the
// next request works.
func TestTimeoutStopsRunawayGuest(t *testing.T) {
	f := newHostile(t, map[string]any{"timeout": "150ms", "pool_size": 1}, nil)
	timeouts := counter(`weir_wasm_timeouts_total{route="r"}`)
	errs := counter(`weir_wasm_errors_total{route="r"}`)
	t0, e0 := timeouts.Get(), errs.Get()

	_, c := request("GET", "/", "", "X-Loop: 1")
	start := time.Now()
	_, err := f.OnRequest(c)
	elapsed := time.Since(start)
	want := "wasm: proxy_on_request_headers did not finish within the 150ms timeout"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	t.Logf("stopped after %s", elapsed)
	if elapsed > 2*time.Second {
		t.Errorf("the runaway callback ran for %s", elapsed)
	}
	if timeouts.Get()-t0 != 1 || errs.Get()-e0 != 1 {
		t.Errorf("timeouts +%d, errors +%d; want +1, +1", timeouts.Get()-t0, errs.Get()-e0)
	}
	if n := instances(f); n != 0 {
		t.Errorf("the timed-out instance was kept (%d live)", n)
	}
	// The proxy still calls the response and log phases of a filter that
	// failed; they have nothing to do.
	if err := f.OnResponse(c); err != nil {
		t.Errorf("OnResponse after a failed OnRequest: %v", err)
	}
	f.OnLog(c)
	sdk.ReleaseCtx(c)

	rc, c := request("GET", "/", "")
	defer sdk.ReleaseCtx(c)
	if st := roundTrip(t, f, rc, c); st != sdk.Continue {
		t.Fatalf("next request: %v", st)
	}
	if n := instances(f); n != 1 {
		t.Errorf("%d instances after the next request, want 1", n)
	}
}

// TestBackstopStopsSlowGuest: a callback that runs past its wall-clock
// backstop with fuel left (here: fuel made plentiful) is stopped by the
// backstop, and reported as such.
func TestBackstopStopsSlowGuest(t *testing.T) {
	defer func(f uint64, b time.Duration) { fuelPerMicrosecond, minBackstop = f, b }(fuelPerMicrosecond, minBackstop)
	// 1G iterations: about 0.3s of a tight loop, past the 100ms backstop.
	fuelPerMicrosecond, minBackstop = 100_000, 0
	f := newHostile(t, map[string]any{"timeout": "10ms", "pool_size": 1}, nil)
	loopUntilBackstop(t, f)
	if n := instances(f); n != 0 {
		t.Errorf("the stopped instance was kept (%d live)", n)
	}
}

// TestBackstopCountsFromItsOwnCall: the backstop's timer stays pending
// between callbacks (it is not reset per call); when it fires for an
// earlier callback's deadline while a later one runs, it re-arms for the
// later one's, so that one still gets its whole backstop.
func TestBackstopCountsFromItsOwnCall(t *testing.T) {
	defer func(f uint64, b time.Duration) { fuelPerMicrosecond, minBackstop = f, b }(fuelPerMicrosecond, minBackstop)
	fuelPerMicrosecond, minBackstop = 100_000, 0
	f := newHostile(t, map[string]any{"timeout": "10ms", "pool_size": 1}, nil)
	_, fast := request("GET", "/", "")
	defer sdk.ReleaseCtx(fast)
	if _, err := f.OnRequest(fast); err != nil { // leaves the timer pending for +100ms
		t.Fatal(err)
	}
	time.Sleep(60 * time.Millisecond)
	loopUntilBackstop(t, f)
}

// loopUntilBackstop sends an X-Loop request through f (timeout 10ms,
// fuel for about 0.3s) and checks that the 100ms backstop, counted from
// the callback's start, stopped it.
func loopUntilBackstop(t *testing.T, f *filter) {
	t.Helper()
	_, c := request("GET", "/", "", "X-Loop: 1")
	defer sdk.ReleaseCtx(c)
	// The backstop's timer needs the Go runtime, which a collection
	// waiting for the looping guest to stop would hold up: finish any
	// collection first (nothing else allocates meanwhile).
	runtime.GC()
	start := time.Now()
	_, err := f.OnRequest(c)
	elapsed := time.Since(start)
	want := "wasm: proxy_on_request_headers did not finish within its wall-clock backstop (100ms)"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	if elapsed < 100*time.Millisecond || elapsed > 2*time.Second {
		t.Errorf("stopped after %s, want about 100ms from its own start", elapsed)
	}
}

// TestTimeoutInResponsePhase: the same in proxy_on_response_headers.
func TestTimeoutInResponsePhase(t *testing.T) {
	f := newHostile(t, map[string]any{"timeout": "150ms", "pool_size": 1}, nil)
	rc, c := request("GET", "/", "")
	defer sdk.ReleaseCtx(c)
	if _, err := f.OnRequest(c); err != nil {
		t.Fatal(err)
	}
	upstream(rc, 200, "ok", "X-Loop: 1")
	err := f.OnResponse(c)
	want := "wasm: proxy_on_response_headers did not finish within the 150ms timeout"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	f.OnLog(c) // nothing left to clean up; must not touch the dropped instance
	if n := instances(f); n != 0 {
		t.Errorf("%d instances, want 0", n)
	}
}

// TestTrapDiscardsInstance: a trap fails the request and replaces the
// instance.
func TestTrapDiscardsInstance(t *testing.T) {
	f := newHostile(t, map[string]any{"pool_size": 1}, nil)
	_, c := request("GET", "/", "", "X-Trap: 1")
	_, err := f.OnRequest(c)
	sdk.ReleaseCtx(c)
	if err == nil || err.Error() != "wasm: proxy_on_request_headers: wasm error: unreachable" {
		t.Fatalf("err = %v", err)
	}
	if n := instances(f); n != 0 {
		t.Errorf("the trapped instance was kept")
	}
	rc, c := request("GET", "/", "")
	defer sdk.ReleaseCtx(c)
	roundTrip(t, f, rc, c)
}

// TestAllocatorTrap: the guest's allocator trapping while the host hands
// it a buffer fails the call, never the host.
func TestAllocatorTrap(t *testing.T) {
	f := newHostile(t, map[string]any{"pool_size": 1}, nil)
	_, c := request("GET", "/", "", "X-Malloc-Trap: 1")
	defer sdk.ReleaseCtx(c)
	_, err := f.OnRequest(c)
	if err == nil || !strings.HasPrefix(err.Error(), "wasm: proxy_on_request_headers: ") {
		t.Fatalf("err = %v", err)
	}
	if n := instances(f); n != 0 {
		t.Errorf("the instance was kept after its allocator trapped")
	}
}

// TestOutOfBoundsPointers: every host function answers a bad pointer
// with INVALID_MEMORY_ACCESS; the guest traps if one does not, so a
// successful request proves them all.
func TestOutOfBoundsPointers(t *testing.T) {
	f := newHostile(t, map[string]any{"pool_size": 1}, nil)
	rc, c := request("GET", "/", "", "X-Oob: 1")
	defer sdk.ReleaseCtx(c)
	if st := roundTrip(t, f, rc, c); st != sdk.Continue {
		t.Fatalf("status %v", st)
	}
	if rc.Response.StatusCode() != 200 {
		t.Errorf("a rejected local response changed the response: %d", rc.Response.StatusCode())
	}
	if n := instances(f); n != 1 {
		t.Errorf("the instance was dropped though nothing failed")
	}
}

// TestOtherRequestsSurviveDiscard: an instance dropped by one request's
// runaway callback held another request's context; that request's
// context is re-created in the new instance and its response phase runs
// there: only the looping request fails.
func TestOtherRequestsSurviveDiscard(t *testing.T) {
	f := newHostile(t, map[string]any{"timeout": "150ms", "pool_size": 1}, nil)
	errs := counter(`weir_wasm_errors_total{route="r"}`)
	rcA, a := request("GET", "/a", "")
	defer sdk.ReleaseCtx(a)
	if _, err := f.OnRequest(a); err != nil {
		t.Fatal(err)
	}
	instA := f.state(a).inst
	_, b := request("GET", "/b", "", "X-Loop: 1")
	defer sdk.ReleaseCtx(b)
	if _, err := f.OnRequest(b); err == nil {
		t.Fatal("the looping request did not fail")
	}
	e0 := errs.Get()
	upstream(rcA, 200, "ok")
	if err := f.OnResponse(a); err != nil {
		t.Fatalf("OnResponse of the other request: %v", err)
	}
	rs := f.state(a)
	if rs.inst == nil || rs.inst != f.pool.slots[0].inst || rs.inst == instA {
		t.Errorf("the other request's context was not re-created in the new instance")
	}
	f.OnLog(a)
	if errs.Get() != e0 {
		t.Errorf("errors +%d after the discard; want +0", errs.Get()-e0)
	}
	if n := instances(f); n != 1 {
		t.Errorf("%d instances, want 1", n)
	}
}

// TestMemoryLimit: memory_limit_mb caps how far a guest can grow its
// memory; past it, memory.grow fails inside the guest (-1) instead of
// taking host memory.
func TestMemoryLimit(t *testing.T) {
	module := writeModule(t, "hostile", hostileGuest())
	capped := newFilter(t, module, map[string]any{"memory_limit_mb": 1}, nil)
	rc, c := request("GET", "/", "", "X-Grow: 1")
	defer sdk.ReleaseCtx(c)
	if st := roundTrip(t, capped, rc, c); st != sdk.Continue {
		t.Fatalf("status %v", st)
	}
	// With room to grow, the same guest's grow succeeds (and it traps, to
	// show the limit made the difference).
	roomy := newFilter(t, module, map[string]any{"memory_limit_mb": 64}, nil)
	_, c2 := request("GET", "/", "", "X-Grow: 1")
	defer sdk.ReleaseCtx(c2)
	if _, err := roomy.OnRequest(c2); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("grow under a 64 MiB limit: %v", err)
	}
}

// TestPauseWithNothingPendingFails: Pause without a local response and
// without an HTTP call in flight can never be resumed: the request fails
// (the proxy answers 500), with one warning per filter, and the instance
// stays usable.
func TestPauseWithNothingPendingFails(t *testing.T) {
	lb := &logBuf{}
	f := newHostile(t, nil, lb)
	for i := 0; i < 2; i++ {
		_, c := request("GET", "/", "", "X-Pause: 1")
		if _, err := f.OnRequest(c); !errors.Is(err, errPaused) {
			t.Fatalf("OnRequest: %v, want errPaused", err)
		}
		sdk.ReleaseCtx(c)
	}
	if n := strings.Count(lb.String(), "paused a request and nothing resumed it"); n != 1 {
		t.Errorf("%d pause warnings, want 1:\n%s", n, lb)
	}
	rc, c := request("GET", "/", "", "")
	defer sdk.ReleaseCtx(c)
	if st := roundTrip(t, f, rc, c); st != sdk.Continue {
		t.Fatalf("a request after the paused ones: %v", st)
	}
}

// TestLocalResponseFromHandAssembledGuest checks status, body and
// headers of proxy_send_local_response.
func TestLocalResponseFromHandAssembledGuest(t *testing.T) {
	f := newHostile(t, nil, nil)
	rc, c := request("GET", "/", "", "X-Local: 1")
	defer sdk.ReleaseCtx(c)
	if st := roundTrip(t, f, rc, c); st != sdk.Stop {
		t.Fatalf("status %v, want Stop", st)
	}
	r := &rc.Response
	if r.StatusCode() != 418 || string(r.Body()) != "teapot" || string(r.Header.Peek("X-Tea")) != "earl grey" {
		t.Errorf("response %d %q x-tea=%q", r.StatusCode(), r.Body(), r.Header.Peek("X-Tea"))
	}
}

// TestGuestRefusesOneByteConfig: the hostile guest's on_configure refuses
// a configuration of one byte.
func TestGuestRefusesOneByteConfig(t *testing.T) {
	_, err := New(build(nil), cfg(t, writeModule(t, "hostile", hostileGuest()), map[string]any{"config": "x"}))
	if err == nil || !strings.Contains(err.Error(), "the guest refused its configuration") {
		t.Fatalf("err = %v", err)
	}
}

// TestHostileGuestLayout keeps the data addresses of the hostile guest
// from overlapping.
func TestHostileGuestLayout(t *testing.T) {
	pairs := appendPairs(nil, []kv{{[]byte("x-tea"), []byte("earl grey")}})
	if adPairs+len(pairs) > adRespLoop || binary.LittleEndian.Uint32(pairs) != 1 {
		t.Fatalf("pairs at %d..%d overlap", adPairs, adPairs+len(pairs))
	}
}
