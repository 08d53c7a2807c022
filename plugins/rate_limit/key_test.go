package ratelimit

import (
	"bytes"
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/sdk"
)

func buildKey(t testing.TB, spec string, r reqSpec) string {
	t.Helper()
	ks, err := parseKeySpec(json.RawMessage(spec))
	if err != nil {
		t.Fatalf("parseKeySpec(%s): %v", spec, err)
	}
	tr := newTestReq(r)
	c := sdk.AcquireCtx(&tr.rc)
	defer sdk.ReleaseCtx(c)
	c.Route = r.route
	if tr.cons != nil {
		c.SetConsumer(tr.cons, "id")
	}
	return string(ks.appendKey(nil, c))
}

func TestKeyBuilding(t *testing.T) {
	long := strings.Repeat("x", 65)
	tests := []struct {
		name, spec string
		req        reqSpec
		want       string
	}{
		{"consumer", `"consumer"`, reqSpec{consumer: "alice"}, "c5:alice"},
		{"default is consumer", ``, reqSpec{consumer: "alice"}, "c5:alice"},
		{"anonymous falls back to ip", `"consumer"`, reqSpec{ip: "198.51.100.7"}, "i:198.51.100.7"},
		{"ipv6", `"ip"`, reqSpec{ip: "2001:db8::1"}, "i:2001:db8::1"},
		{"ipv4-mapped ipv6 is ipv4", `"ip"`, reqSpec{ip: "::ffff:10.0.0.1"}, "i:10.0.0.1"},
		{"route", `"route"`, reqSpec{route: "users"}, "r5:users"},
		{"consumer+route", `"consumer+route"`, reqSpec{consumer: "bob", route: "users"}, "c3:bob|r5:users"},
		{"list form", `["route","consumer"]`, reqSpec{consumer: "bob", route: "u"}, "r1:u|c3:bob"},
		{"header", `"header:X-Tenant"`, reqSpec{headers: map[string]string{"X-Tenant": "acme"}}, "h4:acme"},
		{"header name case", `"header:x-tenant"`, reqSpec{headers: map[string]string{"X-TENANT": "acme"}}, "h4:acme"},
		{"missing header falls back to ip", `"header:X-Tenant"`, reqSpec{ip: "192.0.2.9"}, "i:192.0.2.9"},
		{"64-byte header kept", `"header:X-T"`, reqSpec{headers: map[string]string{"X-T": long[:64]}}, "h64:" + long[:64]},
		{"long header hashed", `"header:X-T"`, reqSpec{headers: map[string]string{"X-T": long}},
			"H:" + "7e1a8e9e" /* checked by prefix below */},
		{"separator in value is not ambiguous", `"header:A+header:B"`,
			reqSpec{headers: map[string]string{"A": "x|h1:y", "B": "z"}}, "h6:x|h1:y|h1:z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := buildKey(t, tt.spec, tt.req)
			if strings.HasPrefix(tt.want, "H:") {
				if !strings.HasPrefix(got, "H:") || len(got) != 2+32 {
					t.Fatalf("got %q, want H: and 32 hex digits", got)
				}
				return
			}
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLongHeaderHashStable(t *testing.T) {
	v1 := strings.Repeat("a", 200)
	v2 := strings.Repeat("a", 199) + "b"
	k1 := buildKey(t, `"header:X"`, reqSpec{headers: map[string]string{"X": v1}})
	k1b := buildKey(t, `"header:X"`, reqSpec{headers: map[string]string{"X": v1}})
	k2 := buildKey(t, `"header:X"`, reqSpec{headers: map[string]string{"X": v2}})
	if k1 != k1b {
		t.Errorf("the same value gave two keys: %q %q", k1, k1b)
	}
	if k1 == k2 {
		t.Errorf("different values share key %q", k1)
	}
}

// FuzzKeyFromHeaders feeds arbitrary header values into key building: it
// must not panic, must stay bounded in length, and two different value
// pairs must never produce the same key.
func FuzzKeyFromHeaders(f *testing.F) {
	f.Add([]byte("acme"), []byte("x"), []byte("acme"), []byte("y"))
	f.Add([]byte("a|h1:b"), []byte("c"), []byte("a"), []byte("b|h1:c"))
	f.Add(bytes.Repeat([]byte("z"), 300), []byte(""), []byte("z"), []byte(""))
	f.Add([]byte("\x00\xff"), []byte("\r"), []byte("\x00"), []byte("\xff"))
	ks, err := parseKeySpec(json.RawMessage(`"header:A+header:B"`))
	if err != nil {
		f.Fatal(err)
	}
	build := func(a, b []byte) []byte {
		var rc fasthttp.RequestCtx
		var req fasthttp.Request
		req.Header.SetBytesV("A", a)
		req.Header.SetBytesV("B", b)
		rc.Init(&req, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1}, nil)
		c := sdk.AcquireCtx(&rc)
		defer sdk.ReleaseCtx(c)
		// Use what the server would see after parsing, not the raw input.
		return ks.appendKey(nil, c)
	}
	value := func(a []byte) []byte {
		var req fasthttp.Request
		req.Header.SetBytesV("A", a)
		return append([]byte(nil), req.Header.Peek("A")...)
	}
	f.Fuzz(func(t *testing.T, a1, b1, a2, b2 []byte) {
		k1 := build(a1, b1)
		k2 := build(a2, b2)
		// Each part is at most "h64:" + 64 bytes or "i:" + an IPv6 address.
		if len(k1) > 2*(4+maxHeaderKeyBytes)+1 {
			t.Fatalf("key of %d bytes: %q", len(k1), k1)
		}
		same := bytes.Equal(value(a1), value(a2)) && bytes.Equal(value(b1), value(b2))
		if !same && bytes.Equal(k1, k2) {
			t.Fatalf("different headers %q/%q and %q/%q share key %q", a1, b1, a2, b2, k1)
		}
	})
}
