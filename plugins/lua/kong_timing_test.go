package lua

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/weirgw/weir/sdk"
)

// kongSetHeaderFilter is the Kong plugin of the weir+lua_kong_header
// bench scenario: its access sets one upstream header from its schema's
// default.
func kongSetHeaderFilter(t testing.TB) sdk.Filter {
	t.Helper()
	raw, _ := json.Marshal(map[string]any{"kong_plugin": filepath.Join("..", "..", "bench", "scenarios", "kong", "set_header"), "pool_size": 1})
	f, err := New(build(nil), raw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.(sdk.Closer).Close() })
	return f
}

// BenchmarkKongSetHeader is a Kong-style handler setting one upstream
// header through kong.service.request.set_header: the shim's cost over
// BenchmarkAccessSetConstHeader.
func BenchmarkKongSetHeader(b *testing.B) {
	rc := benchOnRequest(b, kongSetHeaderFilter(b))
	if string(rc.Request.Header.Peek("X-From")) != "kong" {
		b.Fatal("the header was not set")
	}
}
