package cache

import (
	"bufio"
	"bytes"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/weirgw/weir/internal/httpsyntax"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/sdk"
)

// X-Cache-Status values (plugins/cache/README.md).
var (
	xHit         = []byte("HIT")
	xMiss        = []byte("MISS")
	xStale       = []byte("STALE")
	xBypass      = []byte("BYPASS")
	xRevalidated = []byte("REVALIDATED")
)

// blockReader parses a stored header block with fasthttp's own parser:
// fields set through the header API lose Date (fasthttp manages it), a
// parsed block keeps every field as stored. Pooled; the bufio.Reader is
// sized for typical blocks and replaced for larger ones.
type blockReader struct {
	r  bytes.Reader
	br *bufio.Reader
}

const blockReaderSize = 8 << 10

var blockReaders = sync.Pool{New: func() any {
	b := &blockReader{}
	b.br = bufio.NewReaderSize(&b.r, blockReaderSize)
	return b
}}

func readHeaderBlock(h *fasthttp.ResponseHeader, block []byte) error {
	b := blockReaders.Get().(*blockReader)
	b.r.Reset(block)
	br := b.br
	if len(block) >= blockReaderSize {
		br = bufio.NewReaderSize(&b.r, len(block)+1)
	} else {
		br.Reset(&b.r)
	}
	err := h.Read(br)
	b.r.Reset(nil)
	blockReaders.Put(b)
	return err
}

// conds are a client's validators (RFC 9110 §13.1.2, §13.1.3).
type conds struct {
	inm, ims []byte
}

func condsOf(c *sdk.Ctx) conds {
	h := &c.Request().Header
	return conds{inm: h.Peek("If-None-Match"), ims: h.Peek("If-Modified-Since")}
}

// writeEntry makes e the response: stored status and fields, Age,
// X-Cache-Status, and either the body (zero-copy), a 304 when the
// client's validators match, or a single byte range.
func (f *Filter) writeEntry(c *sdk.Ctx, e entry, now int64, x []byte, cd conds) error {
	resp := c.Response()
	resp.ResetBody()
	if err := readHeaderBlock(&resp.Header, e.headerBlock()); err != nil {
		return err
	}
	h := &resp.Header
	var num [20]byte
	age := e.age(now) / 1e9
	if age > deltaMax {
		age = deltaMax
	}
	h.SetBytesV("Age", strconv.AppendInt(num[:0], age, 10))
	h.SetBytesV("X-Cache-Status", x)
	status := e.status()
	body := e.body()
	if status >= 200 && status < 300 && notModified(cd, e.etag(), lastModifiedOrDate(e)) {
		// RFC 9111 §4.3.2: the cache answers the client's conditional.
		resp.SetStatusCode(fasthttp.StatusNotModified)
		return nil
	}
	if status == fasthttp.StatusOK {
		if rng := c.Request().Header.Peek("Range"); len(rng) > 0 && ifRangeOK(c, e) {
			if start, end, ok := parseRange(rng, len(body)); ok {
				resp.SetStatusCode(fasthttp.StatusPartialContent)
				h.SetContentRange(start, end, len(body))
				resp.SetBodyRaw(body[start : end+1])
				return nil
			}
		}
	}
	resp.SetBodyRaw(body)
	return nil
}

func lastModifiedOrDate(e entry) int64 {
	if lm := e.lastModified(); lm != 0 {
		return lm
	}
	return e.date()
}

// notModified evaluates If-None-Match (weak comparison), or else
// If-Modified-Since against lm (RFC 9110 §13.1.2, §13.1.3; RFC 9111
// §4.3.2 lets a cache use Date when there is no Last-Modified).
func notModified(cd conds, etag []byte, lm int64) bool {
	if len(cd.inm) > 0 {
		return etagListMatch(cd.inm, etag)
	}
	if len(cd.ims) > 0 && lm > 0 {
		t, ok := parseHTTPDate(cd.ims, nowYear())
		return ok && lm <= t
	}
	return false
}

// etagListMatch reports whether the If-None-Match list matches etag with
// the weak comparison function.
func etagListMatch(list, etag []byte) bool {
	list = trimOWS(list)
	if len(list) == 1 && list[0] == '*' {
		return true
	}
	if len(etag) == 0 {
		return false
	}
	want := weakless(etag)
	for i := 0; i < len(list); {
		for i < len(list) && (list[i] == ' ' || list[i] == '\t' || list[i] == ',') {
			i++
		}
		start := i
		if i+1 < len(list) && list[i] == 'W' && list[i+1] == '/' {
			i += 2
		}
		if i < len(list) && list[i] == '"' {
			i++
			for i < len(list) && list[i] != '"' {
				i++
			}
			if i < len(list) {
				i++
			}
		} else {
			for i < len(list) && list[i] != ',' {
				i++
			}
		}
		if i > start && bytes.Equal(weakless(trimOWS(list[start:i])), want) {
			return true
		}
	}
	return false
}

func weakless(t []byte) []byte {
	if len(t) > 2 && t[0] == 'W' && t[1] == '/' {
		return t[2:]
	}
	return t
}

// ifRangeOK evaluates If-Range (RFC 9110 §13.1.5): a range is served only
// when the validator names the stored representation (strong ETag, or the
// exact Last-Modified date).
func ifRangeOK(c *sdk.Ctx, e entry) bool {
	v := c.Request().Header.Peek("If-Range")
	if len(v) == 0 {
		return true
	}
	if v[0] == '"' {
		et := e.etag()
		return len(et) > 0 && et[0] == '"' && bytes.Equal(v, et)
	}
	if len(v) > 1 && v[0] == 'W' && v[1] == '/' {
		return false
	}
	t, ok := parseHTTPDate(v, nowYear())
	return ok && e.lastModified() != 0 && t == e.lastModified()
}

// parseRange reads one byte range ("bytes=a-b", "bytes=a-", "bytes=-n")
// of a body of size n. Several ranges, other units or an unsatisfiable
// range return false and the whole body is sent instead, which RFC 9110
// §14.2 allows.
func parseRange(v []byte, n int) (start, end int, ok bool) {
	v = trimOWS(v)
	if len(v) < 7 || !httpsyntax.EqualFoldLower(v[:6], "bytes=") || n == 0 {
		return 0, 0, false
	}
	v = trimOWS(v[6:])
	if bytes.IndexByte(v, ',') >= 0 {
		return 0, 0, false
	}
	dash := bytes.IndexByte(v, '-')
	if dash < 0 {
		return 0, 0, false
	}
	first, last := trimOWS(v[:dash]), trimOWS(v[dash+1:])
	if len(first) == 0 {
		suffix, okS := parseDelta(last)
		if !okS || suffix == 0 {
			return 0, 0, false
		}
		if suffix > int64(n) {
			suffix = int64(n)
		}
		return n - int(suffix), n - 1, true
	}
	s, okF := parseDelta(first)
	if !okF || s >= int64(n) {
		return 0, 0, false
	}
	e := int64(n - 1)
	if len(last) > 0 {
		l, okL := parseDelta(last)
		if !okL || l < s {
			return 0, 0, false
		}
		e = min(l, e)
	}
	return int(s), int(e), true
}

// yearOf is the calendar year of a Unix ns time (for two-digit years).
func yearOf(ns int64) int {
	y, _, _ := civilFromDays(ns / 1e9 / 86400)
	return y
}

func nowYear() int { return yearOf(time.Now().UnixNano()) }

// s2b views s as bytes without copying; the result must not be modified.
func s2b(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
