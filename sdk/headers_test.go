package sdk

import (
	"strings"
	"testing"
)

// TestFramingHeaderMatchesTheList: FramingHeader, the runtime check lua
// and wasm use, answers for exactly the list's framing fields, in any case.
func TestFramingHeaderMatchesTheList(t *testing.T) {
	for _, h := range OwnedHeaders() {
		for _, name := range []string{h.Name, strings.ToLower(h.Name), strings.ToUpper(h.Name)} {
			if got := FramingHeader([]byte(name)); got != h.Framing {
				t.Errorf("FramingHeader(%q) = %v, want %v", name, got, h.Framing)
			}
		}
	}
	for _, name := range []string{"", "Content-Lengthx", "Transfer-Encodin", "X-Content-Length"} {
		if FramingHeader([]byte(name)) {
			t.Errorf("FramingHeader(%q) = true", name)
		}
	}
	if why, ok := HeaderOwned("x-consumer-name", true); ok {
		t.Errorf("X-Consumer-Name is owned on responses too: %s", why)
	}
	if _, ok := HeaderOwned("TRACEPARENT", false); !ok {
		t.Error("Traceparent is not owned on requests")
	}
}
