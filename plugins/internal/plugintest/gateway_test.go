package plugintest

import (
	"strings"
	"sync"
	"testing"

	"github.com/weirgw/weir/sdk"
)

// bodySeer records what the request phase sees of the body, and replaces
// a buffered one.
// It runs on the server's goroutines: the mutex orders its record before
// the test's read.
type bodySeer struct {
	mu       sync.Mutex
	buffered bool
	body     string
}

func (b *bodySeer) OnRequest(c *sdk.Ctx) (sdk.Status, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buffered, b.body = c.BodyBuffered(), string(c.RequestBody())
	if b.buffered && b.body != "" {
		c.SetRequestBody([]byte("<" + b.body + ">"))
	}
	return sdk.Continue, nil
}

func (b *bodySeer) seen() (bool, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buffered, b.body
}

// TestGatewayBodies: behind the real server a filter sees a small body,
// sent with Content-Length or chunked, whole, and a body over the
// threshold not at all; what it sets is what the upstream gets, framed by
// a Content-Length.
func TestGatewayBodies(t *testing.T) {
	f := &bodySeer{}
	g := Serve(t, Route{}, f)
	big := strings.Repeat("b", 300<<10)
	for _, tc := range []struct {
		name     string
		send     Send
		buffered bool
		seen     string
		upstream string
	}{
		{"content-length", Send{Body: "ping"}, true, "ping", "<ping>"},
		{"chunked", Send{Body: "ping", Chunked: true}, true, "ping", "<ping>"},
		{"empty", Send{Method: "POST"}, true, "", ""},
		{"large", Send{Body: big}, false, "", big},
		{"large chunked", Send{Body: big, Chunked: true}, false, "", big},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := g.Do(t, tc.send)
			if a.Status != 200 || a.Upstream == nil {
				t.Fatalf("status %d %s, upstream reached %v", a.Status, a.Body, a.Upstream != nil)
			}
			if buffered, seen := f.seen(); buffered != tc.buffered || seen != tc.seen {
				t.Fatalf("filter saw buffered %v body %.20q, want %v %.20q", buffered, seen, tc.buffered, tc.seen)
			}
			up := a.Upstream
			if string(up.Body) != tc.upstream {
				t.Fatalf("upstream got %d bytes %.20q, want %d", len(up.Body), up.Body, len(tc.upstream))
			}
			if tc.buffered && (up.Chunked || up.ContentLength != int64(len(up.Body))) {
				t.Fatalf("a buffered body went chunked %v with Content-Length %d", up.Chunked, up.ContentLength)
			}
		})
	}
}
