package transport

import (
	"strings"
	"testing"

	"golang.org/x/net/http2/hpack"
)

// TestHPACKRoundTrip: blocks the encoder makes decode, with x/net's
// decoder, to the fields put in: names lower-cased, static-table names
// and whole static entries used, values of any length (the integer
// encoding's continuation bytes).
func TestHPACKRoundTrip(t *testing.T) {
	long := strings.Repeat("v", 300)
	for _, tc := range []struct {
		method, scheme, path string
	}{{"GET", "http", "/"}, {"POST", "https", "/a.B/C"}, {"PATCH", "h2c", "/x?y=1"}} {
		b := appendHPACKRequest(nil, []byte(tc.method), []byte(tc.scheme), []byte("up:80"), []byte(tc.path))
		b = AppendHPACKField(b, []byte("Content-Type"), []byte("application/grpc"))
		b = AppendHPACKField(b, []byte("X-Long"), []byte(long))
		b = AppendHPACKField(b, []byte("te"), []byte("trailers"))
		d := hpack.NewDecoder(4096, nil)
		got, err := d.DecodeFull(b)
		if err != nil {
			t.Fatalf("%v: %v", tc, err)
		}
		want := []string{":method", tc.method, ":scheme", tc.scheme, ":authority", "up:80", ":path", tc.path,
			"content-type", "application/grpc", "x-long", long, "te", "trailers"}
		if len(got)*2 != len(want) {
			t.Fatalf("%v: %d fields, want %d: %v", tc, len(got), len(want)/2, got)
		}
		for i, f := range got {
			if f.Name != want[2*i] || f.Value != want[2*i+1] {
				t.Errorf("%v: field %d = %s: %.20s, want %s: %.20s", tc, i, f.Name, f.Value, want[2*i], want[2*i+1])
			}
		}
	}
	// A static-table name is its index (two bytes past 14), a whole
	// static entry one byte.
	if b := AppendHPACKField(nil, []byte("content-type"), []byte("x")); len(b) != 4 {
		t.Errorf("content-type: x encodes to %d bytes, want 4 (indexed name)", len(b))
	}
	if b := appendHPACKRequest(nil, []byte("POST"), []byte("http"), nil, []byte("/")); len(b) != 5 {
		t.Errorf("POST http / encodes to %d bytes, want 5", len(b))
	}
}
