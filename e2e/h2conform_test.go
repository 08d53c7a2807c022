//lint:file-ignore SA1019 raw frames need x/net/http2's Framer (RATIONALE.md)

package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestHTTP2Conformance: cases of RFC 9113 that h2spec checks and Weir's
// HTTP/2 server answers as the RFC says, frame by frame against the
// binary.
func TestHTTP2Conformance(t *testing.T) {
	up, _ := slowUpstream(t, 0)
	w := startWeir(t, attackCfg(up))

	// §8.2.2: connection-specific fields, and TE other than "trailers",
	// make a request malformed: a stream error, not an answer.
	for _, f := range []hpack.HeaderField{{Name: "connection", Value: "keep-alive"}, {Name: "te", Value: "gzip"}} {
		h := dialH2(t, w.Addr, 0)
		_ = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndStream: true, EndHeaders: true, BlockFragment: h2Block(w.Addr, "/", f)})
		if got := h.outcome(1, 5*time.Second); got != "rst PROTOCOL_ERROR" {
			t.Errorf("a request with %s: %s: got %q, want RST_STREAM PROTOCOL_ERROR", f.Name, f.Value, got)
		}
	}

	// §4.2: a DATA frame of the full default frame size (2^14 octets) is
	// a request body like any other.
	h := dialH2(t, w.Addr, 0)
	body := strings.Repeat("b", 1<<14)
	_ = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true, BlockFragment: postBlock(w.Addr, len(body))})
	_ = h.fr.WriteData(1, true, []byte(body))
	if got := h.outcome(1, 5*time.Second); got != "status 200" {
		t.Errorf("a 16384-byte DATA frame: got %q, want status 200", got)
	}

	// §6.5.3: a SETTINGS frame carrying a setting twice is applied in
	// order and acknowledged.
	h = dialH2(t, w.Addr, 0)
	_ = h.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 100}, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535})
	if !h.settingsAcked(2, 5*time.Second) {
		t.Error("a SETTINGS frame with INITIAL_WINDOW_SIZE twice was not acknowledged")
	}
	_ = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndStream: true, EndHeaders: true, BlockFragment: h2Block(w.Addr, "/ok")})
	if got := h.outcome(1, 5*time.Second); got != "status 200" {
		t.Errorf("after that SETTINGS frame: got %q, want status 200", got)
	}
	stillServes(t, w)
}

// postBlock HPACK-encodes a POST of n bytes.
func postBlock(addr string, n int) []byte {
	var b strings.Builder
	e := hpack.NewEncoder(&b)
	for _, f := range []hpack.HeaderField{{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"},
		{Name: ":authority", Value: addr}, {Name: ":path", Value: "/post"}, {Name: "content-length", Value: strconv.Itoa(n)}} {
		_ = e.WriteField(f)
	}
	return []byte(b.String())
}

// settingsAcked reads frames until want SETTINGS acknowledgements came
// (dialH2's SETTINGS frame counts), acknowledging the server's own.
func (h *h2Conn) settingsAcked(want int, within time.Duration) bool {
	_ = h.c.SetReadDeadline(time.Now().Add(within))
	for acks := 0; acks < want; {
		f, err := h.fr.ReadFrame()
		if err != nil {
			return false
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() {
				acks++
			} else {
				_ = h.fr.WriteSettingsAck()
			}
		case *http2.GoAwayFrame:
			return false
		}
	}
	return true
}

// TestHTTP2HeaderBlocksOnOneConnection: header blocks split over
// CONTINUATION frames, then the same fields from the HPACK dynamic table,
// on one connection, are requests like any other; a malformed block (a
// pseudo-field after a regular one) in one frame resets its stream
// only, and the connection's decoder stays in step for the blocks after
// it; one that goes on in CONTINUATION frames ends the connection.
func TestHTTP2HeaderBlocksOnOneConnection(t *testing.T) {
	up, _ := slowUpstream(t, 0)
	w := startWeir(t, attackCfg(up))
	h := dialH2(t, w.Addr, 0)
	var eb strings.Builder
	enc := hpack.NewEncoder(&eb)
	block := func(fields ...string) []byte {
		eb.Reset()
		for i := 0; i < len(fields); i += 2 {
			_ = enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
		}
		return []byte(eb.String())
	}
	valid := []string{":method", "GET", ":scheme", "http", ":authority", w.Addr, ":path", "/ok",
		"accept", "*/*", "user-agent", "e2e-h2-blocks", "x-long", strings.Repeat("l", 300)}
	send := func(id uint32, b []byte, split int) {
		first := b[:min(split, len(b))]
		rest := b[len(first):]
		_ = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndStream: true, EndHeaders: len(rest) == 0, BlockFragment: first})
		for len(rest) > 0 {
			n := min(split, len(rest))
			_ = h.fr.WriteContinuation(id, n == len(rest), rest[:n])
			rest = rest[n:]
		}
	}
	steps := []struct {
		id     uint32
		fields []string
		split  int
		want   string
	}{
		{1, valid, 120, "status 200"},     // HEADERS and three CONTINUATION frames
		{3, valid, 1 << 14, "status 200"}, // every field indexed now
		{5, append([]string{"x-first", "1"}, valid...), 1 << 14, "rst PROTOCOL_ERROR"},
		{7, valid, 3, "status 200"},
		// CONTINUATION after an invalid field ends the connection, as
		// x/net's reader does (its size was no longer counted).
		{9, append([]string{"x-first", "1"}, valid...), 7, "goaway PROTOCOL_ERROR"},
	}
	for _, s := range steps {
		send(s.id, block(s.fields...), s.split)
		if got := h.outcome(s.id, 5*time.Second); got != s.want {
			t.Fatalf("stream %d (block split every %d bytes): got %q, want %q\n%s", s.id, s.split, got, s.want, w.Logs())
		}
	}
}
