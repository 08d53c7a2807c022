package cache

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/internal/httpsyntax"
)

// Everything here reads bytes a client or an upstream sent.

func FuzzResponseCacheControl(f *testing.F) {
	for _, s := range []string{"max-age=60", `no-cache="a, b", private`, `ext="max-age=1, x", s-maxage=003`,
		"max-age=99999999999999999999999", `a="\"`, "stale-while-revalidate=1, stale-if-error=2", ",,=,\"", "max-age='1'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var d respDirectives
		parseResponseCC(&d, []byte(s))
		for _, v := range []int64{d.maxAge, d.sMaxAge, d.swr, d.sie} {
			if v < 0 || v > deltaMax {
				t.Fatalf("%q: delta out of range: %+v", s, d)
			}
		}
		if d.has(rMaxAge) && d.has(rMaxAgeInvalid) {
			t.Fatalf("%q: max-age both valid and invalid", s)
		}
		if len(d.noCacheFields) > len(s) || len(d.privateFields) > len(s) {
			t.Fatalf("%q: field list longer than input", s)
		}
	})
}

func FuzzRequestCacheControl(f *testing.F) {
	for _, s := range []string{"no-cache", "max-stale", "max-stale=10, min-fresh=5", "only-if-cached, max-age=x", "stale-if-error=\"3\""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var d reqDirectives
		parseRequestCC(&d, []byte(s))
		for _, v := range []int64{d.maxAge, d.maxStale, d.minFresh, d.sie} {
			if v < 0 || v > deltaMax {
				t.Fatalf("%q: delta out of range: %+v", s, d)
			}
		}
	})
}

func FuzzVary(f *testing.F) {
	f.Add("Foo, Bar", "Foo", "1, 2")
	f.Add("*", "Accept-Language", "en;q=0.5, DE")
	f.Add(",,accept-encoding,", "Accept-Encoding", "gzip,,br , ")
	f.Fuzz(func(t *testing.T, vary, reqName, reqValue string) {
		if !validHeaderValue(vary) || !validHeaderValue(reqValue) || !httpsyntax.IsToken(reqName) {
			return
		}
		var h fasthttp.ResponseHeader
		raw := "HTTP/1.1 200 OK\r\nVary: " + vary + "\r\nContent-Length: 0\r\n\r\n"
		if err := h.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
			return
		}
		var l varyList
		parseResponseVary(&l, &h, nil)
		names := l.appendTo(nil)
		if len(names) > 0 {
			for _, n := range bytes.Split(names, []byte(",")) {
				if len(n) == 0 || bytes.Equal(n, []byte("*")) {
					t.Fatalf("%q: bad names %q", vary, names)
				}
			}
		}
		var rh fasthttp.RequestHeader
		rh.Add(reqName, reqValue)
		k1 := appendSecondaryKey(nil, names, requestHeaders{h: &rh})
		k2 := appendSecondaryKey(nil, names, requestHeaders{h: &rh})
		if !bytes.Equal(k1, k2) {
			t.Fatal("secondary key not deterministic")
		}
	})
}

func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\r' || c == '\n' || c == 0 {
			return false
		}
	}
	return true
}

func FuzzHTTPDate(f *testing.F) {
	for _, s := range []string{"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994",
		"0", "Thu, 18 Aug 50 02:01:18 GMT", "99:99:99", "1-1-1 1:1:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, ok := parseHTTPDate([]byte(s), 2026)
		if !ok {
			return
		}
		back, ok2 := parseHTTPDate(appendHTTPDate(nil, v), 2026)
		if !ok2 || back != v {
			t.Fatalf("%q → %d → %q → %d", s, v, appendHTTPDate(nil, v), back)
		}
	})
}

func FuzzEntry(f *testing.F) {
	m := entryMeta{kind: kindResponse, status: 200}
	good, _ := encodeEntry(nil, &m, []byte(`"e"`), nil, nil, []byte("t"), []byte("HTTP/1.1 200 OK\r\n\r\n"), []byte("b"))
	f.Add(good)
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		// Entries read from Redis are checked with valid() before use.
		e := entry(b)
		if !e.valid() {
			return
		}
		_ = e.etag()
		_ = e.lastModifiedRaw()
		_ = e.varyNames()
		_ = e.tags()
		_ = e.headerBlock()
		_ = e.body()
		_ = e.age(0)
	})
}

func FuzzRange(f *testing.F) {
	for _, s := range []string{"bytes=0-1", "bytes=-5", "bytes=5-", "bytes=1-2,3-4", "bytes=--", "bytes=99999999999999999999-"} {
		f.Add(s, 10)
	}
	f.Fuzz(func(t *testing.T, s string, n int) {
		if n < 0 || n > 1<<20 {
			return
		}
		start, end, ok := parseRange([]byte(s), n)
		if ok && (start < 0 || end >= n || start > end) {
			t.Fatalf("%q/%d: %d-%d", s, n, start, end)
		}
	})
}

func FuzzPurgeURL(f *testing.F) {
	for _, s := range []string{"https://api.example.com/a/../b?x=1", "host/%2e%2e/%2F", "//h", "h?", "http://h#x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := urlKey(s, false)
		if err != nil {
			return
		}
		if bytes.Contains(k, []byte("/../")) || bytes.Contains(k, []byte("/./")) {
			t.Fatalf("%q → %q not normalised", s, k)
		}
		_ = locationKey([]byte(s), []byte("h"), []byte("/a/b"))
	})
}

// FuzzRequestHeaders sends arbitrary validators, ranges and directives at
// a stored entry and an empty cache.
func FuzzRequestHeaders(f *testing.F) {
	f.Add("max-stale=5, no-cache", `W/"a", "b"`, "Sun, 06 Nov 1994 08:49:37 GMT", "bytes=0-3", `"a"`)
	f.Add("only-if-cached", "*", "garbage", "bytes=-1", "Sun, 06 Nov 1994 08:49:37 GMT")
	flt, _ := newTestFilter(f, `{}`)
	do(f, flt, req{url: u}, fixed(200, "0123456789", "Cache-Control: max-age=600", `ETag: "a"`, "Vary: Accept-Language"))
	f.Fuzz(func(t *testing.T, cc, inm, ims, rng, ifRange string) {
		for _, v := range []string{cc, inm, ims, rng, ifRange} {
			if !validHeaderValue(v) {
				return
			}
		}
		hdr := []string{"Cache-Control: " + cc, "If-None-Match: " + inm, "If-Modified-Since: " + ims, "Range: " + rng, "If-Range: " + ifRange}
		for _, url := range []string{u, u + "/other"} {
			r := do(t, flt, req{url: url, hdr: hdr}, fixed(200, "fresh", "Cache-Control: max-age=1"))
			if r.status == 0 {
				t.Fatal("no status")
			}
		}
	})
}
