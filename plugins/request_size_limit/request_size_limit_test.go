package requestsizelimit

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

func TestConfig(t *testing.T) {
	cases := []struct {
		raw  string
		want string
	}{
		{`{"max_bytes": 10}`, ""},
		{`{"max_bytes": 0}`, "max_bytes must be > 0"},
		{`{"max_bytes": -1}`, "max_bytes must be > 0"},
		{`{}`, "max_bytes must be > 0"},
		{`{"max_bytes": 10, "extra": 1}`, `unknown field "extra"`},
		{`{"max_bytes": "10"}`, "max_bytes"},
	}
	for _, c := range cases {
		_, err := New(&sdk.Build{}, json.RawMessage(c.raw))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.raw, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want %q", c.raw, err, c.want)
		}
	}
}

// TestLimits, behind the real proxy server: a body the proxy buffered
// (up to 256 KiB, with Content-Length or chunked) is refused at once when
// over the limit, as is a larger announced one; a larger chunked body is
// counted as it streams and the forward fails with 413 once it passes the
// limit. Refused bodies never reach the upstream whole.
func TestLimits(t *testing.T) {
	f := plugintest.New[sdk.Filter](t, New, &sdk.Build{Route: "limited"}, `{"max_bytes": 10}`)
	g := plugintest.Serve(t, plugintest.Route{Name: "limited"}, f)
	big := strings.Repeat("a", 300<<10)
	for _, tc := range []struct {
		name   string
		send   plugintest.Send
		status int
	}{
		{"at the limit", plugintest.Send{Body: "0123456789"}, 200},
		{"at the limit chunked", plugintest.Send{Body: "0123456789", Chunked: true}, 200},
		{"over the limit", plugintest.Send{Body: "0123456789x"}, 413},
		{"over the limit chunked", plugintest.Send{Body: "0123456789x", Chunked: true}, 413},
		{"announced oversize", plugintest.Send{Body: big}, 413},
		{"streamed oversize", plugintest.Send{Body: big, Chunked: true}, 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := g.Do(t, tc.send)
			if a.Status != tc.status {
				t.Fatalf("status %d %s, want %d", a.Status, a.Body, tc.status)
			}
			if tc.status == 413 {
				if !strings.Contains(a.Body, `"status":413`) {
					t.Fatalf("413 body %s", a.Body)
				}
				if a.Upstream != nil {
					t.Fatalf("a refused body reached the upstream: %d bytes", len(a.Upstream.Body))
				}
				return
			}
			if a.Upstream == nil || string(a.Upstream.Body) != tc.send.Body {
				t.Fatalf("upstream got %v", a.Upstream)
			}
		})
	}
}
