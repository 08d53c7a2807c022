package cache

import (
	"encoding/binary"
	"errors"
)

// A stored object is one flat byte slice so that both stores keep it
// without translation (a Go slice in memory, a string in Redis) and a hit
// reads it in place, without decoding into a struct of its own:
//
//	off size field
//	0   1    version
//	1   1    kind (kindResponse or kindMarker)
//	2   2    flags
//	4   2    status
//	6   2    reserved
//	8   8    responseTime, Unix ns: when the response (or the 304 that
//	         last refreshed it) arrived
//	16  8    correctedInitialAge, ns (RFC 9111 §4.2.3)
//	24  8    freshness lifetime, ns (RFC 9111 §4.2.1)
//	32  8    storeUntil, Unix ns: after this the store may drop it
//	40  4    stale-while-revalidate, s
//	44  4    stale-if-error, s
//	48  8    Last-Modified, Unix s (0: none)
//	56  8    Date, Unix s (the response time when absent or invalid)
//	64  8    marker id (markers: the id variants are keyed under)
//	72  2    len(etag)
//	74  2    len(last-modified raw value)
//	76  2    len(vary names)
//	78  2    len(tags)
//	80  4    len(header block)
//	84  4    len(body)
//	88  ...  etag, last-modified, vary names, tags, header block, body
//
// The header block is an HTTP/1.1 status line and header section exactly
// as it will be sent (hop-by-hop fields, Age and Content-Length removed),
// so a hit is one header parse plus a zero-copy body.
//
// Stored slices are immutable once written: readers share them without
// locks and a hit hands the body to fasthttp with SetBodyRaw.

const (
	entryVersion = 1
	entryFixed   = 88

	kindResponse = 1
	kindMarker   = 2
)

// Entry flags.
const (
	eNoCache      uint16 = 1 << iota // revalidate before every use
	eNoStale                         // must-revalidate / proxy-revalidate / s-maxage: never serve stale
	eHasValidator                    // ETag or Last-Modified: can be revalidated
)

var errBadEntry = errors.New("cache: corrupt entry")

// entry is a read-only view of an encoded object.
type entry []byte

func (e entry) valid() bool {
	if len(e) < entryFixed || e[0] != entryVersion {
		return false
	}
	n := entryFixed + int(e.u16(72)) + int(e.u16(74)) + int(e.u16(76)) + int(e.u16(78)) +
		int(binary.LittleEndian.Uint32(e[80:])) + int(binary.LittleEndian.Uint32(e[84:]))
	return n == len(e)
}

func (e entry) u16(off int) uint16 { return binary.LittleEndian.Uint16(e[off:]) }
func (e entry) i64(off int) int64  { return int64(binary.LittleEndian.Uint64(e[off:])) }

func (e entry) kind() byte                 { return e[1] }
func (e entry) flags() uint16              { return e.u16(2) }
func (e entry) status() int                { return int(e.u16(4)) }
func (e entry) responseTime() int64        { return e.i64(8) }
func (e entry) correctedInitialAge() int64 { return e.i64(16) }
func (e entry) lifetime() int64            { return e.i64(24) }
func (e entry) storeUntil() int64          { return e.i64(32) }
func (e entry) swr() int64                 { return int64(binary.LittleEndian.Uint32(e[40:])) }
func (e entry) sie() int64                 { return int64(binary.LittleEndian.Uint32(e[44:])) }
func (e entry) lastModified() int64        { return e.i64(48) }
func (e entry) date() int64                { return e.i64(56) }
func (e entry) markerID() uint64           { return binary.LittleEndian.Uint64(e[64:]) }

func (e entry) section(i int) []byte {
	off := entryFixed
	lens := [6]int{int(e.u16(72)), int(e.u16(74)), int(e.u16(76)), int(e.u16(78)),
		int(binary.LittleEndian.Uint32(e[80:])), int(binary.LittleEndian.Uint32(e[84:]))}
	for j := 0; j < i; j++ {
		off += lens[j]
	}
	return e[off : off+lens[i] : off+lens[i]]
}

func (e entry) etag() []byte            { return e.section(0) }
func (e entry) lastModifiedRaw() []byte { return e.section(1) }
func (e entry) varyNames() []byte       { return e.section(2) }
func (e entry) tags() []byte            { return e.section(3) }
func (e entry) headerBlock() []byte     { return e.section(4) }
func (e entry) body() []byte            { return e.section(5) }

// age is the current_age of RFC 9111 §4.2.3 at now (Unix ns), in ns.
func (e entry) age(now int64) int64 {
	resident := now - e.responseTime()
	if resident < 0 {
		resident = 0
	}
	return e.correctedInitialAge() + resident
}

// entryMeta is what encodeEntry writes into the fixed part.
type entryMeta struct {
	kind                byte
	flags               uint16
	status              int
	responseTime        int64
	correctedInitialAge int64
	lifetime            int64
	storeUntil          int64
	swr, sie            int64
	lastModified        int64
	date                int64
	markerID            uint64
}

// encodeEntry appends the encoded object to dst. Sections longer than
// their length fields are a programmer error upstream (callers bound
// header sizes); they are refused rather than truncated.
func encodeEntry(dst []byte, m *entryMeta, etag, lmRaw, vary, tags, header, body []byte) ([]byte, error) {
	if len(etag) > 0xffff || len(lmRaw) > 0xffff || len(vary) > 0xffff || len(tags) > 0xffff ||
		uint64(len(header)) > 0xffffffff || uint64(len(body)) > 0xffffffff {
		return dst, errBadEntry
	}
	var fixed [entryFixed]byte
	fixed[0] = entryVersion
	fixed[1] = m.kind
	binary.LittleEndian.PutUint16(fixed[2:], m.flags)
	binary.LittleEndian.PutUint16(fixed[4:], uint16(m.status))
	binary.LittleEndian.PutUint64(fixed[8:], uint64(m.responseTime))
	binary.LittleEndian.PutUint64(fixed[16:], uint64(m.correctedInitialAge))
	binary.LittleEndian.PutUint64(fixed[24:], uint64(m.lifetime))
	binary.LittleEndian.PutUint64(fixed[32:], uint64(m.storeUntil))
	binary.LittleEndian.PutUint32(fixed[40:], uint32(clampU32(m.swr)))
	binary.LittleEndian.PutUint32(fixed[44:], uint32(clampU32(m.sie)))
	binary.LittleEndian.PutUint64(fixed[48:], uint64(m.lastModified))
	binary.LittleEndian.PutUint64(fixed[56:], uint64(m.date))
	binary.LittleEndian.PutUint64(fixed[64:], m.markerID)
	binary.LittleEndian.PutUint16(fixed[72:], uint16(len(etag)))
	binary.LittleEndian.PutUint16(fixed[74:], uint16(len(lmRaw)))
	binary.LittleEndian.PutUint16(fixed[76:], uint16(len(vary)))
	binary.LittleEndian.PutUint16(fixed[78:], uint16(len(tags)))
	binary.LittleEndian.PutUint32(fixed[80:], uint32(len(header)))
	binary.LittleEndian.PutUint32(fixed[84:], uint32(len(body)))
	dst = append(dst, fixed[:]...)
	dst = append(dst, etag...)
	dst = append(dst, lmRaw...)
	dst = append(dst, vary...)
	dst = append(dst, tags...)
	dst = append(dst, header...)
	dst = append(dst, body...)
	return dst, nil
}

func clampU32(v int64) int64 {
	if v < 0 {
		return 0
	}
	if v > 0xffffffff {
		return 0xffffffff
	}
	return v
}
