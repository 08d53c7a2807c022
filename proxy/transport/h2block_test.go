//lint:file-ignore SA1019 x/net/http2's Framer writes the test's frames

package transport

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Block frames fields as one HEADERS frame, or as HEADERS and
// CONTINUATION frames of at most split bytes of block each.
func h2Block(t testing.TB, enc *hpack.Encoder, eb *bytes.Buffer, split int, fields ...string) []byte {
	t.Helper()
	eb.Reset()
	for i := 0; i < len(fields); i += 2 {
		if err := enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]}); err != nil {
			t.Fatal(err)
		}
	}
	block := eb.Bytes()
	var out bytes.Buffer
	fr := http2.NewFramer(&out, nil)
	first := block[:min(split, len(block))]
	rest := block[len(first):]
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: first, EndStream: true, EndHeaders: len(rest) == 0}); err != nil {
		t.Fatal(err)
	}
	for len(rest) > 0 {
		n := min(split, len(rest))
		if err := fr.WriteContinuation(1, n == len(rest), rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	return out.Bytes()
}

// readBlock reads one header block from wire.
func readBlock(b *HeaderBlock, wire []byte) (*http2.MetaHeadersFrame, error) {
	fr := http2.NewFramer(nil, bytes.NewReader(wire))
	f, err := fr.ReadFrame()
	if err != nil {
		return nil, err
	}
	return b.Read(fr, f.(*http2.HeadersFrame))
}

var h2TestRequest = []string{":method", "GET", ":scheme", "http", ":path", "/users/42", ":authority", "example.com",
	"accept", "*/*", "accept-encoding", "gzip, deflate", "user-agent", "h2load nghttp2/1.52.0"}

// TestAllocsH2HeaderBlock: a request's header block whose fields the
// decoder's table holds (a client's second request on a connection)
// costs one allocation, the Framer's HeadersFrame (x/net's
// ReadMetaHeaders: 15).
func TestAllocsH2HeaderBlock(t *testing.T) {
	var eb bytes.Buffer
	enc := hpack.NewEncoder(&eb)
	first := h2Block(t, enc, &eb, 1<<20, h2TestRequest...)
	again := h2Block(t, enc, &eb, 1<<20, h2TestRequest...)
	var b HeaderBlock
	b.Init(16 << 10)
	if _, err := readBlock(&b, first); err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(again)
	fr := http2.NewFramer(nil, r)
	var fields int
	allocs := testing.AllocsPerRun(200, func() {
		r.Reset(again)
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		mh, err := b.Read(fr, f.(*http2.HeadersFrame))
		if err != nil {
			t.Fatal(err)
		}
		fields = len(mh.Fields)
	})
	if fields != len(h2TestRequest)/2 {
		t.Fatalf("%d fields, want %d", fields, len(h2TestRequest)/2)
	}
	if allocs > 1 {
		t.Fatalf("%.1f allocations per header block, want at most 1", allocs)
	}
}

// bigFields is n fields of 300 bytes each after :method.
func bigFields(n int) []string {
	f := []string{":method", "GET"}
	for i := range n {
		f = append(f, "f"+strings.Repeat("i", i), strings.Repeat("x", 300))
	}
	return f
}

// TestH2HeaderBlockChecks: what x/net's ReadMetaHeaders refuses, the
// block reader refuses the same way (stream or connection error), and a
// block past the limit is Truncated.
func TestH2HeaderBlockChecks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		split  int
		fields []string
		want   error // nil: read; a StreamError or ConnectionError code
		trunc  bool
	}{
		{name: "whole", split: 1 << 20, fields: h2TestRequest},
		{name: "continuations", split: 5, fields: h2TestRequest},
		{name: "upper-case name", split: 1 << 20, fields: []string{":method", "GET", "Accept", "x"}, want: http2.StreamError{Code: http2.ErrCodeProtocol}},
		{name: "bad value", split: 1 << 20, fields: []string{":method", "GET", "a", "x\x00y"}, want: http2.StreamError{Code: http2.ErrCodeProtocol}},
		{name: "pseudo after regular", split: 1 << 20, fields: []string{"a", "b", ":method", "GET"}, want: http2.StreamError{Code: http2.ErrCodeProtocol}},
		{name: "unknown pseudo", split: 1 << 20, fields: []string{":foo", "GET"}, want: http2.StreamError{Code: http2.ErrCodeProtocol}},
		{name: "duplicate pseudo", split: 1 << 20, fields: []string{":method", "GET", ":method", "GET"}, want: http2.StreamError{Code: http2.ErrCodeProtocol}},
		{name: "status in a request", split: 1 << 20, fields: []string{":method", "GET", ":status", "200"}, want: http2.StreamError{Code: http2.ErrCodeProtocol}},
		{name: "bytes after an invalid field", split: 4, fields: []string{"A", "b", "c", "d"}, want: http2.ConnectionError(http2.ErrCodeProtocol)},
		{name: "past the limit", split: 1 << 20, fields: bigFields(5), trunc: true},
		{name: "past the limit, in continuations", split: 700, fields: bigFields(3), trunc: true},
		{name: "continuations after the limit", split: 200, fields: bigFields(8), want: http2.ConnectionError(http2.ErrCodeProtocol)},
		{name: "far past the limit", split: 1 << 20, fields: bigFields(20), want: http2.ConnectionError(http2.ErrCodeProtocol)},
		{name: "a string past the limit", split: 1 << 20, fields: []string{"big", strings.Repeat("x", 1100)}, want: http2.ConnectionError(http2.ErrCodeCompression)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var eb bytes.Buffer
			enc := hpack.NewEncoder(&eb)
			var b HeaderBlock
			b.Init(1024)
			mh, err := readBlock(&b, h2Block(t, enc, &eb, tc.split, tc.fields...))
			var se http2.StreamError
			var ce http2.ConnectionError
			switch want := tc.want.(type) {
			case nil:
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if mh.Truncated != tc.trunc || !tc.trunc && len(mh.Fields) != len(tc.fields)/2 {
					t.Fatalf("truncated %v with %d fields", mh.Truncated, len(mh.Fields))
				}
			case http2.StreamError:
				if !errors.As(err, &se) || se.Code != want.Code || se.StreamID != 1 {
					t.Fatalf("error %v, want a stream error %v", err, want.Code)
				}
			case http2.ConnectionError:
				if !errors.As(err, &ce) || ce != want {
					t.Fatalf("error %v, want connection error %v", err, want)
				}
			}
		})
	}
}

// TestAppendHPACKFieldAnswers: answer fields go out lower-cased, a name the static
// table has by its index, and decode back as they were.
func TestAppendHPACKFieldAnswers(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		indexed     bool
	}{
		{"Content-Type", "text/plain", true},
		{"WWW-Authenticate", `Basic realm="x"`, true},
		{"Set-Cookie", "a=b", true},
		{"date", "Mon, 07 Dec 2026 22:14:12 GMT", true},
		{"X-Request-Id", "9c355227", false},
		{"X-A-Rather-Long-Field-Name-Beyond-The-Table", strings.Repeat("v", 200), false},
	} {
		b := AppendHPACKField(nil, []byte(tc.name), []byte(tc.value))
		if indexed := b[0]&0x0f != 0; indexed != tc.indexed {
			t.Errorf("%s: indexed name %v, want %v", tc.name, indexed, tc.indexed)
		}
		fs, err := hpack.NewDecoder(4096, nil).DecodeFull(b)
		if err != nil || len(fs) != 1 || fs[0].Name != strings.ToLower(tc.name) || fs[0].Value != tc.value {
			t.Errorf("%s: decoded %v, %v", tc.name, fs, err)
		}
	}
}
