package wasm

import (
	"encoding/binary"
	"errors"
)

// The ABI's serialisation of header maps
// (https://github.com/proxy-wasm/spec/blob/main/abi-versions/v0.2.1/README.md#serialization),
// little-endian:
//
//	u32 count
//	count × (u32 key size, u32 value size)
//	count × (key bytes, NUL, value bytes, NUL)
//
// An empty map may also be sent as zero bytes or as a single NUL byte.

// maxPairs bounds how many pairs a guest may hand the host in one map:
// far above any real header set, low enough that a hostile count cannot
// make the host loop for long.
const maxPairs = 4096

var (
	errPairsShort    = errors.New("serialized map is shorter than its header")
	errPairsCount    = errors.New("serialized map declares more pairs than it holds")
	errPairsTooMany  = errors.New("serialized map has more than 4096 pairs")
	errPairsOverflow = errors.New("serialized map entry runs past its end")
	errPairsNUL      = errors.New("serialized map entry is not NUL-terminated")
)

// pairs is a validated, zero-copy view of a serialized map. The views it
// returns alias the bytes it was parsed from: for guest-provided maps that
// is guest memory, which is only valid until the next call into the guest.
type pairs struct {
	b    []byte
	n    int
	i    int    // next pair
	data uint64 // offset of the next pair's key
}

// parsePairs checks the whole of b before anything is used, so a caller
// never applies half of a malformed map.
func parsePairs(b []byte) (pairs, error) {
	if len(b) == 0 || (len(b) == 1 && b[0] == 0) {
		return pairs{}, nil
	}
	if len(b) < 4 {
		return pairs{}, errPairsShort
	}
	n := uint64(binary.LittleEndian.Uint32(b))
	size := uint64(len(b))
	if n > maxPairs {
		return pairs{}, errPairsTooMany
	}
	if 4+8*n > size {
		return pairs{}, errPairsCount
	}
	data := 4 + 8*n
	for i := uint64(0); i < n; i++ {
		ks := uint64(binary.LittleEndian.Uint32(b[4+8*i:]))
		vs := uint64(binary.LittleEndian.Uint32(b[8+8*i:]))
		// Sizes are 32-bit, offsets 64-bit: no sum below can wrap.
		if data+ks+1+vs+1 > size {
			return pairs{}, errPairsOverflow
		}
		if b[data+ks] != 0 || b[data+ks+1+vs] != 0 {
			return pairs{}, errPairsNUL
		}
		data += ks + 1 + vs + 1
	}
	return pairs{b: b, n: int(n), data: 4 + 8*n}, nil
}

// len is the number of pairs.
func (p *pairs) len() int { return p.n }

// next returns the next pair; ok is false after the last one.
func (p *pairs) next() (key, value []byte, ok bool) {
	if p.i >= p.n {
		return nil, nil, false
	}
	ks := uint64(binary.LittleEndian.Uint32(p.b[4+8*p.i:]))
	vs := uint64(binary.LittleEndian.Uint32(p.b[8+8*p.i:]))
	key = p.b[p.data : p.data+ks : p.data+ks]
	value = p.b[p.data+ks+1 : p.data+ks+1+vs : p.data+ks+1+vs]
	p.data += ks + 1 + vs + 1
	p.i++
	return key, value, true
}

// kv is one header as views into the host's header storage.
type kv struct{ k, v []byte }

// appendPairs serialises kvs onto dst. Keys are written in lower case:
// HTTP field names are case-insensitive (RFC 9110 §5.1) and Proxy-Wasm
// guests, written for Envoy, compare them in lower case.
func appendPairs(dst []byte, kvs []kv) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(kvs)))
	for i := range kvs {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(kvs[i].k)))
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(kvs[i].v)))
	}
	for i := range kvs {
		dst = appendLower(dst, kvs[i].k)
		dst = append(dst, 0)
		dst = append(dst, kvs[i].v...)
		dst = append(dst, 0)
	}
	return dst
}

// pairsSize is len(appendPairs(nil, kvs)).
func pairsSize(kvs []kv) int {
	n := 4 + 8*len(kvs)
	for i := range kvs {
		n += len(kvs[i].k) + len(kvs[i].v) + 2
	}
	return n
}

func appendLower(dst, s []byte) []byte {
	for _, c := range s {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}
