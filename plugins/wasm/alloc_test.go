package wasm

import (
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/internal/wasmasm"
	"github.com/weirgw/weir/sdk"
)

// TestAllocsPerRequest pins the allocations of a whole request through the
// hand-assembled guest: five calls into the guest (context_create,
// request_headers, response_headers, done, delete) allocate nothing: no
// context, timer or watchdog per call (the guest is metered, meter.go);
// its six header lookups inside request_headers find nothing and
// allocate nothing.
func TestAllocsPerRequest(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	f := newFilter(t, writeModule(t, "hostile", hostileGuest()), map[string]any{"pool_size": 1}, nil)
	rc, c := request("GET", "/users/7", "", "Accept: */*")
	sdk.ReleaseCtx(c)
	var tmpl fasthttp.Request
	rc.Request.CopyTo(&tmpl)
	run := func() { throughFilter(t, f, rc, &tmpl, nil) }
	run()
	if got := testing.AllocsPerRun(200, run); got != 0 {
		t.Errorf("%.1f allocations per request, want 0", got)
	}
}

// TestAllocsHostFunctions: host functions that do not hand the guest a
// buffer (which needs a call into its allocator) allocate nothing.
func TestAllocsHostFunctions(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	h := newHarness(t, phaseRequest, "X-One: 1", "Accept: */*")
	replace := args(mapRequestHeaders, h.put("x-wasm", "yes"))
	remove := args(mapRequestHeaders, h.put("x-gone"))
	pairs := args(mapRequestHeaders, h.put(string(appendPairs(nil, []kv{{[]byte("x-a"), []byte("1")}, {[]byte(":path"), []byte("/a?b")}}))))
	key := []byte("x-one")
	path := []byte("request\x00path")
	stack := make([]uint64, 8)
	call := func(fn hostFn, args []uint64) func() {
		return func() {
			copy(stack, args)
			if st := fn(h.in, stack); st != statusOK {
				t.Fatalf("status %d", st)
			}
		}
	}
	tests := []struct {
		name string
		fn   func()
	}{
		{"replace header", call(hostReplaceHeaderMapValue, replace)},
		{"remove header", call(hostRemoveHeaderMapValue, remove)},
		{"set pairs", call(hostSetHeaderMapPairs, pairs)},
		{"map size", call(hostGetHeaderMapSize, []uint64{mapRequestHeaders, hRetSz})},
		{"time", call(hostGetTime, []uint64{hRet})},
		{"log level", call(hostGetLogLevel, []uint64{hRet})},
		{"header value", func() { h.in.headerValue(mapRequestHeaders, key) }},
		{"property", func() { h.in.property(path) }},
	}
	for _, tt := range tests {
		tt.fn()
		if got := testing.AllocsPerRun(100, tt.fn); got != 0 {
			t.Errorf("%s: %.1f allocations, want 0", tt.name, got)
		}
	}
}

// handHeaders is the hand-written header filter the bench and e2e suites
// run, with the headers of the bench scenario.
func handHeaders() []byte {
	return wasmasm.HeaderFilter("X-Wasm", "yes", "X-Wasm-Filter", "headers")
}

// TestHandHeaderFilter: the hand-written filter adds its request header,
// sets its response header (replacing the upstream's), and a request
// through it allocates nothing.
func TestHandHeaderFilter(t *testing.T) {
	f := newFilter(t, writeModule(t, "hand", handHeaders()), map[string]any{"pool_size": 1}, nil)
	rc, c := request("GET", "/users/7", "", "Accept: */*")
	sdk.ReleaseCtx(c)
	var tmpl fasthttp.Request
	rc.Request.CopyTo(&tmpl)
	run := func() {
		throughFilter(t, f, rc, &tmpl, func(r *fasthttp.Response) { r.Header.Set("X-Wasm-Filter", "upstream") })
	}
	run()
	if got := string(rc.Request.Header.Peek("X-Wasm")); got != "yes" {
		t.Errorf("request X-Wasm = %q, want yes", got)
	}
	if got := rc.Response.Header.PeekAll("X-Wasm-Filter"); len(got) != 1 || string(got[0]) != "headers" {
		t.Errorf("response X-Wasm-Filter = %q, want [headers]", got)
	}
	if raceEnabled {
		return
	}
	if got := testing.AllocsPerRun(200, run); got != 0 {
		t.Errorf("%.1f allocations per request, want 0", got)
	}
}

// throughFilter runs a whole request through f on rc, restored from tmpl
// first; answer, when not nil, adds to the upstream's 200 answer.
func throughFilter(tb testing.TB, f *filter, rc *fasthttp.RequestCtx, tmpl *fasthttp.Request, answer func(*fasthttp.Response)) {
	tmpl.CopyTo(&rc.Request)
	rc.Response.Reset()
	c := sdk.AcquireCtx(rc)
	c.Route = "r"
	c.SetPath(rc.Request.URI().Path())
	c.SetRequestID([]byte("req-1"))
	if _, err := f.OnRequest(c); err != nil {
		tb.Fatal(err)
	}
	rc.Response.SetStatusCode(200)
	if answer != nil {
		answer(&rc.Response)
	}
	if err := f.OnResponse(c); err != nil {
		tb.Fatal(err)
	}
	f.OnLog(c)
	sdk.ReleaseCtx(c)
}
