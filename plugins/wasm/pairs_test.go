package wasm

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/weirgw/weir/internal/httpsyntax"
)

// pairsBytes builds a serialized map by hand, so that tests can also
// build malformed ones: count, then sizes, then data as given.
func pairsBytes(count uint32, sizes []uint32, data string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, count)
	for _, s := range sizes {
		b = binary.LittleEndian.AppendUint32(b, s)
	}
	return append(b, data...)
}

func TestParsePairs(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want []string
		err  error
	}{
		{"empty", nil, nil, nil},
		{"single NUL", []byte{0}, nil, nil},
		{"zero count", pairsBytes(0, nil, ""), nil, nil},
		{"spec example", pairsBytes(2, []uint32{1, 1, 1, 2}, "a\x001\x00b\x0022\x00"), []string{"a=1", "b=22"}, nil},
		{"empty key and value", pairsBytes(1, []uint32{0, 0}, "\x00\x00"), []string{"="}, nil},
		{"binary value", pairsBytes(1, []uint32{1, 3}, "k\x00\xff\x01\x02\x00"), []string{"k=\xff\x01\x02"}, nil},
		{"trailing bytes", pairsBytes(1, []uint32{1, 1}, "a\x00b\x00junk"), []string{"a=b"}, nil},

		{"short header", []byte{1, 0}, nil, errPairsShort},
		{"two bytes NUL", []byte{0, 0}, nil, errPairsShort},
		{"count past end", pairsBytes(3, []uint32{1, 1}, "a\x00b\x00"), nil, errPairsCount},
		{"huge count", pairsBytes(0xffffffff, nil, ""), nil, errPairsTooMany},
		{"too many", pairsBytes(maxPairs+1, make([]uint32, 2*(maxPairs+1)), strings.Repeat("\x00", 2*(maxPairs+1))), nil, errPairsTooMany},
		{"key past end", pairsBytes(1, []uint32{10, 1}, "a\x00b\x00"), nil, errPairsOverflow},
		{"huge sizes", pairsBytes(1, []uint32{0xffffffff, 0xffffffff}, "a\x00b\x00"), nil, errPairsOverflow},
		{"value past end", pairsBytes(1, []uint32{1, 3}, "a\x00b\x00"), nil, errPairsOverflow},
		{"missing key NUL", pairsBytes(1, []uint32{1, 1}, "ax1\x00"), nil, errPairsNUL},
		{"missing value NUL", pairsBytes(1, []uint32{1, 1}, "a\x001x"), nil, errPairsNUL},
		{"second pair bad", pairsBytes(2, []uint32{1, 1, 1, 1}, "a\x001\x00b\x002x"), nil, errPairsNUL},
	}
	for _, tt := range tests {
		p, err := parsePairs(tt.in)
		if err != tt.err {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.err)
			continue
		}
		if err != nil {
			continue
		}
		var got []string
		for {
			k, v, ok := p.next()
			if !ok {
				break
			}
			got = append(got, string(k)+"="+string(v))
		}
		if strings.Join(got, "|") != strings.Join(tt.want, "|") || p.len() != len(tt.want) {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestAppendPairs(t *testing.T) {
	kvs := []kv{{[]byte("Content-Type"), []byte("text/plain")}, {[]byte(":path"), []byte("/")}, {[]byte("X-Empty"), nil}}
	b := appendPairs(nil, kvs)
	want := pairsBytes(3, []uint32{12, 10, 5, 1, 7, 0}, "content-type\x00text/plain\x00:path\x00/\x00x-empty\x00\x00")
	if !bytes.Equal(b, want) {
		t.Fatalf("appendPairs:\n got %q\nwant %q", b, want)
	}
	if pairsSize(kvs) != len(b) {
		t.Errorf("pairsSize = %d, len %d", pairsSize(kvs), len(b))
	}
	if got := appendPairs(nil, nil); !bytes.Equal(got, []byte{0, 0, 0, 0}) {
		t.Errorf("empty map = %q, want a zero count (the Go SDK cannot read zero bytes)", got)
	}
}

func TestMemoryMin(t *testing.T) {
	withMem := func(min uint32) []byte {
		a := &asm{MemMin: min}
		a.Func("f", nil, nil)
		return a.Bytes()
	}
	tests := []struct {
		name string
		in   []byte
		min  uint32
		ok   bool
	}{
		{"one page", withMem(1), 1, true},
		{"300 pages", withMem(300), 300, true},
		{"no memory", (&asm{NoMem: true}).Bytes(), 0, false},
		{"header only", []byte("\x00asm\x01\x00\x00\x00"), 0, false},
		{"truncated section", []byte("\x00asm\x01\x00\x00\x00\x05\x10\x01"), 0, false},
		{"bad leb", []byte("\x00asm\x01\x00\x00\x00\x05\xff\xff\xff\xff\xff\xff"), 0, false},
		{"short", []byte("\x00asm"), 0, false},
	}
	for _, tt := range tests {
		min, ok := memoryMin(tt.in)
		if min != tt.min || ok != tt.ok {
			t.Errorf("%s: memoryMin = %d, %v; want %d, %v", tt.name, min, ok, tt.min, tt.ok)
		}
	}
}

func TestPathEscaping(t *testing.T) {
	for _, p := range []string{"/", "/a b", "/ü/%/?#", "/x\x7f"} {
		esc := httpsyntax.AppendEscapedPath(nil, []byte(p))
		dec, ok := appendUnescapedPath(nil, esc)
		if !ok || string(dec) != p {
			t.Errorf("%q: escaped %q, decoded back to %q (%v)", p, esc, dec, ok)
		}
	}
	if got := string(httpsyntax.AppendEscapedPath(nil, []byte("/a b/c:d@e"))); got != "/a%20b/c:d@e" {
		t.Errorf("escaped = %q", got)
	}
}
