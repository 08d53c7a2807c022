package wasm

import (
	"encoding/json"
	"testing"

	"github.com/weirgw/weir/sdk"
	"go.uber.org/goleak"
)

// TestNoGoroutines: New leaves nothing running (weir validate builds
// every filter without starting it), and neither do requests, timeouts or
// Close. wazero runs a short-lived watchdog goroutine during each call
// into a guest; goleak waits for those to end.
func TestNoGoroutines(t *testing.T) {
	before := goleak.IgnoreCurrent()
	module := writeModule(t, "hostile", hostileGuest())
	sf, err := New(build(nil), json.RawMessage(`{"module":"`+module+`","timeout":"150ms","pool_size":2}`))
	if err != nil {
		t.Fatal(err)
	}
	f := sf.(*filter)
	if err := goleak.Find(before); err != nil {
		t.Fatalf("after New: %v", err)
	}
	for _, hdr := range []string{"X-Other: 1", "X-Loop: 1", "X-Trap: 1", "X-Other: 2"} {
		rc, c := request("GET", "/", "", hdr)
		if _, err := f.OnRequest(c); err == nil {
			upstream(rc, 200, "ok")
			_ = f.OnResponse(c)
		}
		f.OnLog(c)
		sdk.ReleaseCtx(c)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := goleak.Find(before); err != nil {
		t.Fatalf("after requests and Close: %v", err)
	}
}
