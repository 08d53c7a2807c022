package proxy

import (
	"regexp"
	"testing"
)

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestRequestIDIsRandomUUIDv4(t *testing.T) {
	seen := map[string]bool{}
	var ones [32]int // how often each hex position is odd, for a crude randomness check
	const n = 2000
	for i := 0; i < n; i++ {
		id := string(appendRequestID([]byte("x")))[1:] // appends
		if !uuidV4.MatchString(id) || !validRequestID([]byte(id)) {
			t.Fatalf("not a UUID v4: %q", id)
		}
		if seen[id] {
			t.Fatalf("repeated id %q", id)
		}
		seen[id] = true
		j := 0
		for _, c := range []byte(id) {
			if c == '-' {
				continue
			}
			if (c >= 'a' && (c-'a'+10)%2 == 1) || (c <= '9' && (c-'0')%2 == 1) {
				ones[j]++
			}
			j++
		}
	}
	for j, k := range ones {
		if j == 12 || j == 16 { // version nibble (4) and variant nibble (8..b)
			continue
		}
		if k < n/3 || k > 2*n/3 {
			t.Errorf("hex digit %d odd %d times in %d: not random", j, k, n)
		}
	}
}

func TestTraceparentIsValidAndRandom(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		tp := appendTraceparent(nil, true)
		if !validTraceparent(tp) {
			t.Fatalf("invalid traceparent %q", tp)
		}
		if string(tp[:3]) != "00-" || string(tp[52:]) != "-01" {
			t.Fatalf("want version 00 and sampled: %q", tp)
		}
		if seen[string(tp[3:35])] {
			t.Fatalf("repeated trace id in %q", tp)
		}
		seen[string(tp[3:35])] = true
	}
}

func TestPutHex(t *testing.T) {
	var b [16]byte
	putHex(b[:], 0x0123456789abcdef, 8)
	if string(b[:]) != "0123456789abcdef" {
		t.Fatalf("got %q", b)
	}
	putHex(b[:4], 0xbeef, 2)
	if string(b[:4]) != "beef" {
		t.Fatalf("got %q", b[:4])
	}
}
