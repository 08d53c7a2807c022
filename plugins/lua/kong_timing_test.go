package lua

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/weirgw/weir/sdk"
)

// kongSetHeaderFilter is a Kong plugin (written to a temporary folder)
// whose access sets one upstream header from its schema's default.
func kongSetHeaderFilter(t testing.TB) sdk.Filter {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bench")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	handler := `local H = {PRIORITY = 1, VERSION = "1"}
function H:access(conf) kong.service.request.set_header("X-From", conf.value) end
return H`
	schema := `return {name = "bench", fields = {{config = {type = "record", fields = {{value = {type = "string", default = "kong"}}}}}}}`
	for name, src := range map[string]string{"handler.lua": handler, "schema.lua": schema} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, _ := json.Marshal(map[string]any{"kong_plugin": dir, "pool_size": 1})
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
