package plugintest

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/weirgw/weir/sdk"
)

// Values lists every value of the header name in h (a
// *fasthttp.RequestHeader or *fasthttp.ResponseHeader), in order.
func Values(h interface{ PeekAll(key string) [][]byte }, name string) []string {
	var out []string
	for _, v := range h.PeekAll(name) {
		out = append(out, string(v))
	}
	return out
}

// FreshRoute returns base with a suffix no earlier call returned, for a test's
// own route: metrics are process-wide, so a test run again (-count=N)
// under the same route would find its counters already moved.
func FreshRoute(base string) string {
	return base + "-" + strconv.FormatUint(routeSeq.Add(1), 10)
}

var routeSeq atomic.Uint64

// WantOnlyCounted fails the test unless count(v) is 1 for v == hit and 0
// for every other v of values: of a set of fresh counters labelled by
// values (a route of the test's own), exactly one moved, once.
func WantOnlyCounted(t testing.TB, count func(v string) uint64, values []string, hit string) {
	t.Helper()
	for _, v := range values {
		var want uint64
		if v == hit {
			want = 1
		}
		if got := count(v); got != want {
			t.Errorf("%s counted %d, want %d", v, got, want)
		}
	}
}

// AllocsAtMost runs step once to warm buffers and pools, then fails the
// test when it allocates more per run than base does (base nil: more than
// zero). A refusing filter passes base as sdk.Ctx.Fail alone, whose JSON
// body is the proxy's cost: the plugin's own work must add nothing to it.
func AllocsAtMost(t testing.TB, step, base func()) {
	t.Helper()
	step()
	allocs := testing.AllocsPerRun(200, step)
	var baseAllocs float64
	if base != nil {
		baseAllocs = testing.AllocsPerRun(200, base)
	}
	if allocs > baseAllocs {
		t.Fatalf("%.1f allocations per run, want at most %.1f", allocs, baseAllocs)
	}
}

// WantOnRequestAllocs runs f.OnRequest on c again and again: every run
// must return want, and, once warm, allocate nothing, or for a refusal
// (want Stop) no more than c.Fail(failStatus, ...) alone does: the JSON
// error body is the proxy's cost, and the filter's own work must add
// nothing to it.
func WantOnRequestAllocs(t testing.TB, f sdk.Filter, c *sdk.Ctx, want sdk.Status, failStatus int) {
	t.Helper()
	var fail func()
	if want == sdk.Stop {
		fail = func() { c.Fail(failStatus, "refused") }
	}
	AllocsAtMost(t, func() {
		if st, _ := f.OnRequest(c); st != want {
			t.Fatalf("status %v, want %v", st, want)
		}
	}, fail)
}

// EditedJSON checks a body a filter rewrote: contentLength (the message's
// Content-Length) matches it, it is a JSON object, and it has no key
// equal to removed at any letter case. It returns the decoded object.
func EditedJSON(t testing.TB, body []byte, contentLength int, removed string) map[string]any {
	t.Helper()
	if contentLength != len(body) {
		t.Fatalf("Content-Length %d for %d bytes", contentLength, len(body))
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("edited body %q is not a JSON object: %v", body, err)
	}
	for k := range m {
		if strings.EqualFold(k, removed) {
			t.Fatalf("%q kept %q", body, k)
		}
	}
	return m
}
