package lua

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/weirgw/weir/sdk"
)

func kongFilter(t testing.TB, name string, conf map[string]any) (sdk.Filter, error) {
	t.Helper()
	m := map[string]any{"kong_plugin": "testdata/kong/" + name, "timeout": "1s"}
	if conf != nil {
		m["config"] = conf
	}
	raw, _ := json.Marshal(m)
	f, err := New(build(nil), raw)
	if err == nil {
		t.Cleanup(func() { f.(sdk.Closer).Close() })
	}
	return f, err
}

// TestKongSchema: schema.lua's defaults and checks apply to config, and a
// bad config is a config error naming the field.
func TestKongSchema(t *testing.T) {
	for _, tt := range []struct {
		name string
		conf map[string]any
		err  string
	}{
		{"terminator", map[string]any{"status_code": 700}, "config.status_code: value should be between 100 and 599"},
		{"terminator", map[string]any{"status_code": "x"}, "config.status_code: expected an integer"},
		{"terminator", map[string]any{"message": "m", "body": "b"}, "config: message cannot be used with content_type or body"},
		{"terminator", map[string]any{"trigger": "X-T"}, "config: trigger can only be used with echo"},
		{"terminator", map[string]any{"nope": 1}, "config.nope: unknown field"},
		{"correlation", map[string]any{"generator": "x"}, "config.generator: expected one of: uuid, uuid#counter, tracker"},
		{"multi", nil, "config.secret: required field missing"},
		{"absent", nil, "no such file or directory"},
	} {
		_, err := kongFilter(t, tt.name, tt.conf)
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s %v: error = %v, want it to mention %q", tt.name, tt.conf, err, tt.err)
		}
	}
}

// TestKongTerminator: the defaults reach the handler (503 and its message).
func TestKongTerminator(t *testing.T) {
	f, err := kongFilter(t, "terminator", nil)
	if err != nil {
		t.Fatal(err)
	}
	rc, c := request("GET", "/")
	defer sdk.ReleaseCtx(c)
	if st := access(t, f, c); st != sdk.Stop {
		t.Fatalf("status %v, want Stop", st)
	}
	if rc.Response.StatusCode() != 503 || string(rc.Response.Body()) != `{"message":"Service unavailable"}` {
		t.Fatalf("answer %d %s", rc.Response.StatusCode(), rc.Response.Body())
	}
}
