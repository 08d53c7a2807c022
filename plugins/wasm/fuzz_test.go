package wasm

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/weirgw/weir/sdk"
)

// FuzzParsePairs: the host's parser of guest-provided serialized maps
// never panics; what it accepts serialises back to an equal map.
func FuzzParsePairs(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add(pairsBytes(2, []uint32{1, 1, 1, 2}, "a\x001\x00b\x0022\x00"))
	f.Add(pairsBytes(1, []uint32{0xffffffff, 1}, "a\x00b\x00"))
	f.Add(pairsBytes(0xffffffff, nil, ""))
	f.Add(pairsBytes(1, []uint32{1, 1}, "a\x00b"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parsePairs(b)
		if err != nil {
			return
		}
		var kvs []kv
		total := 0
		for {
			k, v, ok := p.next()
			if !ok {
				break
			}
			total += len(k) + len(v) + 10
			kvs = append(kvs, kv{append([]byte(nil), k...), append([]byte(nil), v...)})
		}
		if len(kvs) != p.len() || total > len(b)+2 {
			t.Fatalf("%d pairs of %d declared, %d bytes of data in %d", len(kvs), p.len(), total, len(b))
		}
		again, err := parsePairs(appendPairs(nil, kvs))
		if err != nil {
			t.Fatalf("re-encoded map does not parse: %v", err)
		}
		for i := 0; ; i++ {
			k, v, ok := again.next()
			if !ok {
				if i != len(kvs) {
					t.Fatalf("round trip lost pairs")
				}
				break
			}
			// Keys come back in lower case (ASCII only: field names are
			// tokens; other bytes pass through).
			if !bytes.Equal(k, appendLower(nil, kvs[i].k)) || !bytes.Equal(v, kvs[i].v) {
				t.Fatalf("pair %d: %q=%q, want %q=%q", i, k, v, kvs[i].k, kvs[i].v)
			}
		}
	})
}

// FuzzMemoryMin: the module pre-check never panics on any bytes.
func FuzzMemoryMin(f *testing.F) {
	f.Add(minimal(nil))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x05\x03\x01\x00\x11"))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x05\xff\xff\xff\xff\x0f"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if min, ok := memoryMin(b); ok && min > 1<<16 {
			t.Fatalf("min %d pages", min)
		}
	})
}

// FuzzHostABI calls host functions with guest-chosen arguments and guest
// memory contents, in every phase, on a real instance: whatever a guest
// passes, the host answers with a status and never panics.
//
// Input: byte 0 picks the function, byte 1 the phase, then eight
// little-endian u32 arguments (small ones are turned into addresses in the
// fuzzed memory region), then the bytes written at that region.
func FuzzHostABI(f *testing.F) {
	h := newHarness(f, phaseRequest, "X-One: 1")
	region := uint32(hIn)
	seed := func(fn string, p phase, args []uint32, mem []byte) []byte {
		idx := 0
		for i := range hostFuncs {
			if hostFuncs[i].name == fn {
				idx = i
			}
		}
		b := []byte{byte(idx), byte(p)}
		for i := 0; i < 8; i++ {
			var v uint32
			if i < len(args) {
				v = args[i]
			}
			b = binary.LittleEndian.AppendUint32(b, v)
		}
		return append(b, mem...)
	}
	good := appendPairs(nil, []kv{{[]byte("x-a"), []byte("1")}, {[]byte(":path"), []byte("/p?q")}})
	f.Add(seed("proxy_set_header_map_pairs", phaseRequest, []uint32{0, 1, uint32(len(good))}, good))
	f.Add(seed("proxy_get_header_map_pairs", phaseResponse, []uint32{2, hRet, hRetSz}, nil))
	f.Add(seed("proxy_get_header_map_value", phaseRequest, []uint32{0, 1, 5, hRet, hRetSz}, []byte("x-one")))
	f.Add(seed("proxy_replace_header_map_value", phaseRequest, []uint32{0, 1, 5, 7, 4}, []byte(":path/a?b")))
	f.Add(seed("proxy_send_local_response", phaseRequest, []uint32{200, 0, 0, 1, 4, 5, uint32(len(good)), 0}, append([]byte("body"), good...)))
	f.Add(seed("proxy_get_property", phaseResponse, []uint32{1, 12, hRet, hRetSz}, []byte("request\x00path")))
	f.Add(seed("proxy_set_buffer_bytes", phaseRequest, []uint32{0, 0, 3, 1, 4}, []byte("data")))
	f.Add(seed("proxy_get_buffer_bytes", phaseResponse, []uint32{1, 0, 100, hRet, hRetSz}, nil))
	f.Add(seed("proxy_set_shared_data", phaseRoot, []uint32{1, 3, 4, 2, 0}, []byte("key=v")))
	f.Add(seed("proxy_define_metric", phaseRoot, []uint32{0, 1, 4, hRet}, []byte("name")))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 2+32 {
			return
		}
		hf := &hostFuncs[int(b[0])%len(hostFuncs)]
		p := phase(b[1] % 4)
		stack := make([]uint64, 12)
		for i := 0; i < 8; i++ {
			v := binary.LittleEndian.Uint32(b[2+4*i:])
			if v > 0 && v < 256 {
				v += region - 1 // a small number means "into the fuzzed region"
			}
			stack[i] = uint64(v)
		}
		mem := b[34:]
		if len(mem) > 8192 {
			mem = mem[:8192]
		}
		h.in.mem.Write(region, mem)

		rc, c := request("POST", "/f?x=1", "body", "X-One: 1")
		rs := acquireReqState()
		rs.id = 2
		if p != phaseRoot {
			h.in.begin(rs, c, p)
			if p >= phaseResponse {
				upstream(rc, 200, "resp", "X-R: 1")
			}
		} else {
			h.in.begin(nil, nil, phaseRoot)
		}
		st := hf.fn(h.in, stack)
		h.in.end()
		releaseReqState(rs)
		sdk.ReleaseCtx(c)
		if st > statusUnimplemented {
			t.Fatalf("%s returned status %d", hf.name, st)
		}
		// The arguments may have pointed a return slot at the guest's own
		// allocator state (address 8): restore it for the next input.
		h.in.mem.WriteUint32Le(8, hBuf)
	})
}
