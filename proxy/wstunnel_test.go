package proxy

import (
	"encoding/binary"
	"testing"

	"github.com/valyala/fasthttp"
)

// frame builds one WebSocket frame with n payload bytes.
func frame(op byte, n int, masked bool) []byte {
	b := []byte{0x80 | op, 0}
	switch {
	case n < 126:
		b[1] = byte(n)
	case n <= 0xffff:
		b[1] = 126
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b[1] = 127
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if masked {
		b[1] |= 0x80
		b = append(b, 1, 2, 3, 4)
	}
	return append(b, make([]byte, n)...)
}

// TestFramesBoundaries: the frame follower finds every boundary whatever
// the reads' sizes, for every length encoding, masked or not, and sees a
// close frame go by.
func TestFramesBoundaries(t *testing.T) {
	var stream []byte
	var ends []int
	for _, fr := range [][]byte{
		frame(0x1, 5, false), frame(0x2, 0, true), frame(0x2, 125, true), frame(0x0, 126, false),
		frame(0x9, 3, true), frame(0x2, 70000, true), frame(0x8, 2, false),
	} {
		stream = append(stream, fr...)
		ends = append(ends, len(stream))
	}
	for _, chunk := range []int{1, 2, 3, 7, 13, 4096, len(stream)} {
		var f frames
		var got []int
		pos := 0
		for pos < len(stream) {
			p := stream[pos:min(pos+chunk, len(stream))]
			for len(p) > 0 {
				n := f.next(p)
				pos += n
				p = p[n:]
				if f.atBoundary() {
					got = append(got, pos)
				}
			}
		}
		if len(got) != len(ends) {
			t.Fatalf("chunk %d: boundaries %v, want %v", chunk, got, ends)
		}
		for i := range ends {
			if got[i] != ends[i] {
				t.Fatalf("chunk %d: boundaries %v, want %v", chunk, got, ends)
			}
		}
		if !f.closed {
			t.Fatalf("chunk %d: the close frame was not seen", chunk)
		}
	}
}

// FuzzFrames: any bytes, in any split, are walked to their end without a
// panic, and a split changes nothing.
func FuzzFrames(f *testing.F) {
	f.Add(frame(0x1, 5, true), 3)
	f.Add(frame(0x2, 300, false), 1)
	f.Add([]byte{0x81, 0xff, 0, 0, 0, 0, 0, 0, 0, 1}, 4)
	f.Fuzz(func(t *testing.T, b []byte, chunk int) {
		if chunk <= 0 {
			chunk = 1
		}
		var whole, split frames
		whole.skip(b)
		for i := 0; i < len(b); i += chunk {
			split.skip(b[i:min(i+chunk, len(b))])
		}
		if whole != split {
			t.Fatalf("whole %+v, split %+v", whole, split)
		}
	})
}

// TestCloseFrame: the gateway's close frames parse as one close frame
// with the code, masked toward upstreams only.
func TestCloseFrame(t *testing.T) {
	for _, masked := range []bool{false, true} {
		b := closeFrame(wsGoingAway, "going away", masked)
		var f frames
		if n := f.next(b); n != len(b) || !f.atBoundary() || !f.closed {
			t.Fatalf("masked=%v: %d of %d bytes, boundary %v", masked, n, len(b), f.atBoundary())
		}
		if (b[1]&0x80 != 0) != masked {
			t.Fatalf("masked=%v: mask bit %x", masked, b[1])
		}
		payload := b[2:]
		if masked {
			key := payload[:4]
			payload = append([]byte(nil), payload[4:]...)
			for i := range payload {
				payload[i] ^= key[i&3]
			}
		}
		if code := binary.BigEndian.Uint16(payload); code != 1001 || string(payload[2:]) != "going away" {
			t.Fatalf("masked=%v: payload %q", masked, payload)
		}
	}
}

// TestIsWebSocket: what counts as a WebSocket handshake.
func TestIsWebSocket(t *testing.T) {
	for _, tc := range []struct {
		upgrade, connection string
		want                bool
	}{
		{"websocket", "Upgrade", true},
		{"WebSocket", "keep-alive, Upgrade", true},
		{"h2c, websocket", "HTTP2-Settings,upgrade", true},
		{"websocket", "", false}, // Connection does not name it: not for this hop
		{"", "Upgrade", false},
		{"h2c", "Upgrade", false},
		{"websockets", "Upgrade", false},
		{"websocket", "Upgrade, close", false},
	} {
		var h fasthttp.RequestHeader
		h.SetMethod("GET")
		if tc.upgrade != "" {
			h.Set("Upgrade", tc.upgrade)
		}
		if tc.connection != "" {
			h.Set("Connection", tc.connection)
		}
		if got := isWebSocket(&h); got != tc.want {
			t.Errorf("Upgrade %q Connection %q: %v, want %v", tc.upgrade, tc.connection, got, tc.want)
		}
	}
}

func TestValidWebSocketKey(t *testing.T) {
	for k, want := range map[string]bool{
		"dGhlIHNhbXBsZSBub25jZQ==": true,
		"dGhlIHNhbXBsZSBub25jZQ=":  false,
		"dGhlIHNhbXBsZSBub25jZQ!!": false,
		"":                         false,
		"c2hvcnQ=":                 false,
		"AAAAAAAAAAAAAAAAAAAAAAAA": false, // 18 bytes
	} {
		if got := validWebSocketKey([]byte(k)); got != want {
			t.Errorf("%q: %v, want %v", k, got, want)
		}
	}
}
