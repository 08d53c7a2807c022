package cache

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/sdk"
)

const u = "http://api.example.com/items/1"

func TestMissThenHitWithAge(t *testing.T) {
	f, clk := newTestFilter(t, `{}`)
	o := &counting{fn: fixed(200, "hello", "Cache-Control: max-age=60", "X-Origin: 1", "Date: "+clockDate(newFakeClock(), 0))}
	r := do(t, f, req{url: u}, o.origin)
	wantX(t, r, "MISS")
	if r.body != "hello" {
		t.Fatalf("body %q", r.body)
	}
	clk.Advance(10 * time.Second)
	r = do(t, f, req{url: u}, nil)
	wantX(t, r, "HIT")
	if r.body != "hello" || r.status != 200 || r.get("X-Origin") != "1" {
		t.Fatalf("hit: status %d body %q X-Origin %q", r.status, r.body, r.get("X-Origin"))
	}
	if r.get("Age") != "10" {
		t.Fatalf("Age = %q, want 10", r.get("Age"))
	}
	if o.calls() != 1 {
		t.Fatalf("origin called %d times", o.calls())
	}
	// Past max-age the entry is stale and, without a validator, fetched again.
	clk.Advance(51 * time.Second)
	r = do(t, f, req{url: u}, o.origin)
	wantX(t, r, "MISS")
}

func TestAgeFromUpstreamIsAdded(t *testing.T) {
	f, clk := newTestFilter(t, `{}`)
	do(t, f, req{url: u}, fixed(200, "x", "Cache-Control: max-age=600", "Age: 30"))
	clk.Advance(5 * time.Second)
	r := do(t, f, req{url: u}, nil)
	if r.get("Age") != "35" {
		t.Fatalf("Age = %q, want 35", r.get("Age"))
	}
}

func TestQueryAndHostAreInTheKey(t *testing.T) {
	f, _ := newTestFilter(t, `{}`)
	o := &counting{fn: fixed(200, "x", "Cache-Control: max-age=60")}
	for _, url := range []string{u + "?a=1", u + "?a=2", "http://other.example.com/items/1?a=1", u + "?a=1", "http://API.example.com/items/1?a=1"} {
		do(t, f, req{url: url}, o.origin)
	}
	if o.calls() != 3 {
		t.Fatalf("origin called %d times, want 3 (two queries, one other host)", o.calls())
	}
}

func TestHeadIsAnsweredFromGet(t *testing.T) {
	f, _ := newTestFilter(t, `{}`)
	do(t, f, req{url: u}, fixed(200, "body", "Cache-Control: max-age=60"))
	r := do(t, f, req{method: "HEAD", url: u}, nil)
	wantX(t, r, "HIT")
	// A HEAD miss goes through without being stored.
	o := &counting{fn: fixed(200, "", "Cache-Control: max-age=60")}
	do(t, f, req{method: "HEAD", url: u + "/h"}, o.origin)
	do(t, f, req{method: "HEAD", url: u + "/h"}, o.origin)
	if o.calls() != 2 {
		t.Fatalf("HEAD misses: origin called %d times, want 2", o.calls())
	}
}

func TestResponseDirectivesPreventStoring(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  string
		q    req
		hdr  []string
		want bool // stored
	}{
		{"max-age", `{}`, req{}, []string{"Cache-Control: max-age=60"}, true},
		{"s-maxage", `{}`, req{}, []string{"Cache-Control: s-maxage=60"}, true},
		{"expires", `{}`, req{}, []string{"Date: " + clockDate(newFakeClock(), 0), "Expires: " + clockDate(newFakeClock(), time.Hour)}, true},
		{"expires in the past", `{}`, req{}, []string{"Date: " + clockDate(newFakeClock(), 0), "Expires: " + clockDate(newFakeClock(), -time.Hour)}, false},
		{"invalid expires", `{}`, req{}, []string{"Expires: 0"}, false},
		{"no-store", `{}`, req{}, []string{"Cache-Control: max-age=60, no-store"}, false},
		{"NO-STORE case", `{}`, req{}, []string{"Cache-Control: max-age=60, No-StOrE"}, false},
		{"private", `{}`, req{}, []string{"Cache-Control: private, max-age=60"}, false},
		{"private fields stored", `{}`, req{}, []string{"Cache-Control: private=\"X-User\", max-age=60", "X-User: a"}, true},
		{"no explicit freshness", `{}`, req{}, []string{"X-A: 1"}, false},
		{"max-age=0 no validator", `{}`, req{}, []string{"Cache-Control: max-age=0"}, false},
		{"vary star", `{}`, req{}, []string{"Cache-Control: max-age=60", "Vary: Foo, *"}, false},
		{"set-cookie default", `{}`, req{}, []string{"Cache-Control: max-age=60", "Set-Cookie: a=b"}, false},
		{"set-cookie allowed", `{"cache_set_cookie":true}`, req{}, []string{"Cache-Control: max-age=60", "Set-Cookie: a=b"}, true},
		{"set-cookie kept out by no-cache", `{}`, req{}, []string{`Cache-Control: max-age=60, no-cache="Set-Cookie"`, "Set-Cookie: a=b"}, true},
		{"set-cookie kept out by private", `{}`, req{}, []string{`Cache-Control: max-age=60, private="x-a, set-cookie"`, "Set-Cookie: a=b", "Set-Cookie: c=d"}, true},
		{"other field kept out", `{}`, req{}, []string{`Cache-Control: max-age=60, no-cache="X-A"`, "Set-Cookie: a=b"}, false},
		{"authorization", `{}`, req{hdr: []string{"Authorization: Bearer x"}}, []string{"Cache-Control: max-age=60"}, false},
		{"authorization public", `{}`, req{hdr: []string{"Authorization: Bearer x"}}, []string{"Cache-Control: max-age=60, public"}, true},
		{"authorization s-maxage", `{}`, req{hdr: []string{"Authorization: Bearer x"}}, []string{"Cache-Control: s-maxage=60"}, true},
		{"authorization must-revalidate", `{}`, req{hdr: []string{"Authorization: Bearer x"}}, []string{"Cache-Control: max-age=60, must-revalidate"}, true},
		{"authorization ignored", `{"ignore_authorization":true}`, req{hdr: []string{"Authorization: Bearer x"}}, []string{"Cache-Control: max-age=60"}, true},
		{"consumer counts as credentials", `{}`, req{consumer: &sdk.Consumer{Name: "alice"}}, []string{"Cache-Control: max-age=60"}, false},
		{"must-understand unknown status", `{}`, req{}, []string{"Cache-Control: max-age=60, must-understand, no-store"}, false},
		{"invalid max-age is stale", `{}`, req{}, []string{"Cache-Control: max-age='60'"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := newTestFilter(t, tc.cfg)
			q := tc.q
			q.url = u
			status := 200
			if strings.Contains(tc.name, "unknown status") {
				status = 599
			}
			o := &counting{fn: fixed(status, "b", tc.hdr...)}
			do(t, f, q, o.origin)
			r := do(t, f, q, o.origin)
			if got := !r.upstream; got != tc.want {
				t.Fatalf("stored = %v, want %v (X-Cache-Status %q)", got, tc.want, r.x())
			}
		})
	}
}

func TestMustUnderstandUnderstoodStatusIgnoresNoStore(t *testing.T) {
	f, _ := newTestFilter(t, `{}`)
	do(t, f, req{url: u}, fixed(200, "b", "Cache-Control: max-age=60, must-understand, no-store"))
	wantX(t, do(t, f, req{url: u}, nil), "HIT")
}

func TestStrippedFieldsAreNotServed(t *testing.T) {
	f, _ := newTestFilter(t, `{}`)
	r := do(t, f, req{url: u}, fixed(200, "b", "Cache-Control: max-age=60, no-cache=\"X-Secret, Set-Cookie\"", "X-Secret: s",
		"X-Keep: k", "Connection: x-hop", "X-Hop: h", "Keep-Alive: timeout=5", "Proxy-Authenticate: Basic", "Set-Cookie: s=1"))
	if r.get("Set-Cookie") != "s=1" {
		t.Errorf("the response that was stored lost its cookie: %q", r.get("Set-Cookie"))
	}
	r = do(t, f, req{url: u}, nil)
	wantX(t, r, "HIT")
	for _, h := range []string{"X-Secret", "X-Hop", "Keep-Alive", "Proxy-Authenticate", "Set-Cookie"} {
		if r.get(h) != "" {
			t.Errorf("%s served from cache: %q", h, r.get(h))
		}
	}
	if r.get("X-Keep") != "k" {
		t.Errorf("X-Keep lost")
	}
}

func TestRevalidationWithETag(t *testing.T) {
	f, clk := newTestFilter(t, `{}`)
	do(t, f, req{url: u}, fixed(200, "v1", "Cache-Control: max-age=10", `ETag: "abc"`, "X-Version: 1", "Content-Type: text/plain"))
	clk.Advance(20 * time.Second)
	var sawINM string
	r := do(t, f, req{url: u}, func(r *fasthttp.Request) (int, []string, string) {
		sawINM = string(r.Header.Peek("If-None-Match"))
		return 304, []string{"Cache-Control: max-age=100", "X-Version: 2", `ETag: "other"`, "Content-Length: 99"}, ""
	})
	if sawINM != `"abc"` {
		t.Fatalf("upstream If-None-Match = %q", sawINM)
	}
	wantX(t, r, "REVALIDATED")
	if r.status != 200 || r.body != "v1" {
		t.Fatalf("revalidated response: %d %q", r.status, r.body)
	}
	// RFC 9111 §3.2: fields from the 304 replace the stored ones, except
	// those that describe the stored representation.
	if r.get("X-Version") != "2" || r.get("ETag") != `"abc"` || r.get("Content-Type") != "text/plain" {
		t.Fatalf("merged headers: X-Version %q ETag %q Content-Type %q", r.get("X-Version"), r.get("ETag"), r.get("Content-Type"))
	}
	// The 304 refreshed the freshness (max-age=100).
	clk.Advance(50 * time.Second)
	r = do(t, f, req{url: u}, nil)
	wantX(t, r, "HIT")
	if r.get("X-Version") != "2" || r.get("Age") != "50" {
		t.Fatalf("after refresh: X-Version %q Age %q", r.get("X-Version"), r.get("Age"))
	}
}

func TestRevalidationWithLastModified(t *testing.T) {
	f, clk := newTestFilter(t, `{}`)
	lm := "Wed, 01 Jan 2020 00:00:00 GMT"
	do(t, f, req{url: u}, fixed(200, "v1", "Cache-Control: max-age=1", "Last-Modified: "+lm))
	clk.Advance(5 * time.Second)
	var ims string
	r := do(t, f, req{url: u}, func(r *fasthttp.Request) (int, []string, string) {
		ims = string(r.Header.Peek("If-Modified-Since"))
		return 304, nil, ""
	})
	if ims != lm {
		t.Fatalf("If-Modified-Since = %q", ims)
	}
	wantX(t, r, "REVALIDATED")
	if r.body != "v1" {
		t.Fatalf("body %q", r.body)
	}
}

func TestRevalidationWithNewContent(t *testing.T) {
	f, clk := newTestFilter(t, `{}`)
	do(t, f, req{url: u}, fixed(200, "v1", "Cache-Control: max-age=1", `ETag: "1"`))
	clk.Advance(5 * time.Second)
	r := do(t, f, req{url: u}, fixed(200, "v2", "Cache-Control: max-age=60", `ETag: "2"`))
	wantX(t, r, "MISS")
	r = do(t, f, req{url: u}, nil)
	if r.body != "v2" {
		t.Fatalf("body %q, want v2", r.body)
	}
}

func TestClientConditionals(t *testing.T) {
	f, clk := newTestFilter(t, `{}`)
	lm := "Wed, 01 Jan 2020 00:00:00 GMT"
	do(t, f, req{url: u}, fixed(200, "v1", "Cache-Control: max-age=10", `ETag: "abc"`, "Last-Modified: "+lm))
	for _, tc := range []struct {
		hdr  string
		want int
	}{
		{`If-None-Match: "abc"`, 304},
		{`If-None-Match: W/"abc"`, 304},
		{`If-None-Match: "x", "abc"`, 304},
		{`If-None-Match: *`, 304},
		{`If-None-Match: "x"`, 200},
		{"If-Modified-Since: " + lm, 304},
		{"If-Modified-Since: Tue, 31 Dec 2019 00:00:00 GMT", 200},
	} {
		r := do(t, f, req{url: u, hdr: []string{tc.hdr}}, nil)
		if r.status != tc.want {
			t.Errorf("%s: status %d, want %d", tc.hdr, r.status, tc.want)
		}
		if tc.want == 304 && r.get("ETag") != `"abc"` {
			t.Errorf("%s: 304 without ETag", tc.hdr)
		}
	}
	// After a revalidation the client's own validator is answered too.
	clk.Advance(20 * time.Second)
	r := do(t, f, req{url: u, hdr: []string{`If-None-Match: "abc"`}}, func(r *fasthttp.Request) (int, []string, string) {
		return 304, []string{"Cache-Control: max-age=10"}, ""
	})
	if r.status != 304 || r.x() != "REVALIDATED" {
		t.Fatalf("client conditional after revalidation: %d %s", r.status, r.x())
	}
}

func TestMissLeaderStripsClientValidators(t *testing.T) {
	f, _ := newTestFilter(t, `{}`)
	var upINM string
	r := do(t, f, req{url: u, hdr: []string{`If-None-Match: "abc"`}}, func(r *fasthttp.Request) (int, []string, string) {
		upINM = string(r.Header.Peek("If-None-Match"))
		return 200, []string{"Cache-Control: max-age=60", `ETag: "abc"`}, "full"
	})
	if upINM != "" {
		t.Fatalf("leader forwarded the client's If-None-Match %q", upINM)
	}
	if r.status != 304 {
		t.Fatalf("client with a matching validator got %d", r.status)
	}
	if r := do(t, f, req{url: u}, nil); r.body != "full" {
		t.Fatalf("stored body %q", r.body)
	}
}

func TestNoCacheResponseIsRevalidatedEveryTime(t *testing.T) {
	f, _ := newTestFilter(t, `{}`)
	do(t, f, req{url: u}, fixed(200, "v1", "Cache-Control: max-age=600, no-cache", `ETag: "n"`))
	o := &counting{fn: fixed(304, "")}
	for i := 0; i < 2; i++ {
		r := do(t, f, req{url: u}, o.origin)
		wantX(t, r, "REVALIDATED")
		if len(r.upReq.Peek("If-None-Match")) == 0 {
			t.Fatal("no conditional request")
		}
	}
	if o.calls() != 2 {
		t.Fatalf("origin %d", o.calls())
	}
}

func TestRequestDirectives(t *testing.T) {
	f, clk := newTestFilter(t, `{}`)
	do(t, f, req{url: u}, fixed(200, "v1", "Cache-Control: max-age=100", `ETag: "e"`))
	clk.Advance(50 * time.Second)
	up304 := fixed(304, "")
	for _, tc := range []struct {
		cc   string
		want string
	}{
		{"max-age=60", "HIT"},
		{"max-age=40", "REVALIDATED"},
		{"min-fresh=40", "HIT"},
		{"min-fresh=60", "REVALIDATED"},
		{"no-cache", "REVALIDATED"},
		{"no-store", "BYPASS"},
		{"nothing-to-see-here", "HIT"},
	} {
		// Reset the entry's age: each revalidation refreshes it.
		r := do(t, f, req{url: u, hdr: []string{"Cache-Control: " + tc.cc}}, up304)
		if r.x() != tc.want {
			t.Errorf("Cache-Control: %s → %s, want %s", tc.cc, r.x(), tc.want)
		}
		clk.Advance(0)
		do(t, f, req{url: u, hdr: []string{"Cache-Control: no-cache"}}, up304) // age back to 0
		clk.Advance(50 * time.Second)
	}
}

func TestMaxStaleAndOnlyIfCached(t *testing.T) {
	f, clk := newTestFilter(t, `{}`)
	r := do(t, f, req{url: u, hdr: []string{"Cache-Control: only-if-cached"}}, nil)
	if r.status != 504 {
		t.Fatalf("only-if-cached miss: %d", r.status)
	}
	do(t, f, req{url: u}, fixed(200, "v1", "Cache-Control: max-age=10"))
	clk.Advance(30 * time.Second)
	r = do(t, f, req{url: u, hdr: []string{"Cache-Control: max-stale=60"}}, nil)
	wantX(t, r, "STALE")
	r = do(t, f, req{url: u, hdr: []string{"Cache-Control: max-stale"}}, nil)
	wantX(t, r, "STALE")
	r = do(t, f, req{url: u, hdr: []string{"Cache-Control: max-stale=5"}}, fixed(200, "v2", "Cache-Control: max-age=10"))
	wantX(t, r, "MISS")
	r = do(t, f, req{url: u, hdr: []string{"Cache-Control: only-if-cached"}}, nil)
	wantX(t, r, "HIT")
}

// RFC 9111 §4.2.4, §5.2.2.2, §5.2.2.4, §5.2.2.8, §5.2.2.10: with
// must-revalidate, proxy-revalidate, s-maxage or no-cache a stale copy is
// never served, whatever the client (max-stale, stale-if-error) or the
// response's own stale-if-error says. That includes the gateway's own
// 502/504 when the origin drops the connection during the revalidation
// (the suite's stale-close-* tests): the error reaches the client.
func TestMustRevalidateForbidsStale(t *testing.T) {
	for _, cc := range []string{"max-age=10, must-revalidate", "max-age=10, proxy-revalidate", "s-maxage=10", "max-age=10, no-cache"} {
		f, clk := newTestFilter(t, `{}`)
		do(t, f, req{url: u}, fixed(200, "v1", "Cache-Control: "+cc+", stale-if-error=600, stale-while-revalidate=600", `ETag: "e"`))
		clk.Advance(30 * time.Second)
		for _, status := range []int{502, 503, 504} {
			for _, hdr := range [][]string{nil, {"Cache-Control: max-stale=600"}, {"Cache-Control: stale-if-error=600"}} {
				r := do(t, f, req{url: u, hdr: hdr}, fixed(status, "down"))
				if r.status != status || r.body != "down" || r.x() != "MISS" {
					t.Errorf("%s, upstream %d, request %q: stale served (%d %q %s)", cc, status, hdr, r.status, r.body, r.x())
				}
				if len(r.upReq.Peek("If-None-Match")) == 0 {
					t.Errorf("%s: the revalidation was not conditional", cc)
				}
			}
		}
		// The entry survives the errors and is revalidated once the origin
		// is back.
		r := do(t, f, req{url: u}, fixed(304, "", `ETag: "e"`, "Cache-Control: "+cc))
		wantX(t, r, "REVALIDATED")
		if r.status != 200 || r.body != "v1" {
			t.Errorf("%s: after the outage: %d %q", cc, r.status, r.body)
		}
	}
}

// A 304 carrying Set-Cookie answers the client that revalidated with the
// cookie (it is that client's response). RFC 9111 §3.2 makes the stored
// response take every field of the 304; without cache_set_cookie the cache
// does not keep responses with Set-Cookie, so the refreshed entry is
// dropped rather than stored with the cookie or silently without it.
func TestNotModifiedWithSetCookie(t *testing.T) {
	for _, tc := range []struct {
		cfg        string
		keepsEntry bool
	}{
		{`{}`, false},
		{`{"cache_set_cookie": true}`, true},
	} {
		f, clk := newTestFilter(t, tc.cfg)
		do(t, f, req{url: u}, fixed(200, "v1", "Cache-Control: max-age=10", `ETag: "e"`))
		clk.Advance(30 * time.Second)
		r := do(t, f, req{url: u}, fixed(304, "", "Cache-Control: max-age=10", `ETag: "e"`, "Set-Cookie: s=1"))
		wantX(t, r, "REVALIDATED")
		if r.status != 200 || r.body != "v1" || r.get("Set-Cookie") != "s=1" {
			t.Fatalf("%s: revalidated answer: %d %q Set-Cookie %q", tc.cfg, r.status, r.body, r.get("Set-Cookie"))
		}
		r = do(t, f, req{url: u}, fixed(200, "v2", "Cache-Control: max-age=10"))
		if tc.keepsEntry {
			wantX(t, r, "HIT")
			if r.body != "v1" || r.get("Set-Cookie") != "s=1" {
				t.Fatalf("%s: stored update: %q Set-Cookie %q", tc.cfg, r.body, r.get("Set-Cookie"))
			}
			continue
		}
		wantX(t, r, "MISS")
		if r.body != "v2" || r.get("Set-Cookie") != "" || len(r.upReq.Peek("If-None-Match")) != 0 {
			t.Fatalf("%s: after the dropped entry: %q Set-Cookie %q If-None-Match %q",
				tc.cfg, r.body, r.get("Set-Cookie"), r.upReq.Peek("If-None-Match"))
		}
		r = do(t, f, req{url: u}, nil)
		wantX(t, r, "HIT")
		if r.body != "v2" || r.get("Set-Cookie") != "" {
			t.Fatalf("%s: the cookie leaked into the cache: %q Set-Cookie %q", tc.cfg, r.body, r.get("Set-Cookie"))
		}
	}
}

func TestStaleIfError(t *testing.T) {
	f, clk := newTestFilter(t, `{}`)
	do(t, f, req{url: u}, fixed(200, "v1", "Cache-Control: max-age=10, stale-if-error=60"))
	clk.Advance(30 * time.Second)
	r := do(t, f, req{url: u}, fixed(503, "down"))
	wantX(t, r, "STALE")
	if r.status != 200 || r.body != "v1" || r.get("Age") != "30" {
		t.Fatalf("stale-if-error: %d %q Age %q", r.status, r.body, r.get("Age"))
	}
	// A gateway error (the proxy's own 502) counts as an error too.
	r = do(t, f, req{url: u}, fixed(502, `{"status":502}`))
	wantX(t, r, "STALE")
	// Beyond the window the error goes through.
	clk.Advance(60 * time.Second)
	r = do(t, f, req{url: u}, fixed(503, "down"))
	if r.status != 503 {
		t.Fatalf("outside stale-if-error: %d", r.status)
	}
	// The request directive can widen the window (RFC 5861 §4).
	r = do(t, f, req{url: u, hdr: []string{"Cache-Control: stale-if-error=3600"}}, fixed(500, "down"))
	wantX(t, r, "STALE")
}

func TestStaleWhileRevalidate(t *testing.T) {
	f, clk := newTestFilter(t, `{}`)
	do(t, f, req{url: u}, fixed(200, "v1", "Cache-Control: max-age=10, stale-while-revalidate=60", `ETag: "1"`))
	clk.Advance(30 * time.Second)

	// The first request after staleness revalidates; hold it mid-flight.
	var rc fasthttp.RequestCtx
	rc.Request.SetRequestURI(u)
	c := sdk.AcquireCtx(&rc)
	c.SetPath(rc.Request.URI().Path())
	st, _ := f.OnRequest(c)
	if st != sdk.Continue {
		t.Fatal("leader did not go upstream")
	}
	if string(rc.Request.Header.Peek("If-None-Match")) != `"1"` {
		t.Fatal("leader not conditional")
	}
	// Meanwhile others get the stale copy at once.
	r := do(t, f, req{url: u}, nil)
	wantX(t, r, "STALE")
	if r.body != "v1" {
		t.Fatalf("stale body %q", r.body)
	}
	setRawResponse(t, &rc.Response, 200, []string{"Cache-Control: max-age=10", `ETag: "2"`}, "v2", false)
	_ = f.OnResponse(c)
	f.OnLog(c)
	sdk.ReleaseCtx(c)
	r = do(t, f, req{url: u}, nil)
	wantX(t, r, "HIT")
	if r.body != "v2" {
		t.Fatalf("after revalidation: %q", r.body)
	}
	// Beyond the window a stale entry is revalidated synchronously.
	clk.Advance(200 * time.Second)
	r = do(t, f, req{url: u}, fixed(304, ""))
	wantX(t, r, "REVALIDATED")
}

func TestVary(t *testing.T) {
	f, _ := newTestFilter(t, `{}`)
	o := &counting{fn: func(r *fasthttp.Request) (int, []string, string) {
		return 200, []string{"Cache-Control: max-age=60", "Vary: Foo, Accept-Language"}, "foo=" + string(r.Header.Peek("Foo"))
	}}
	steps := []struct {
		hdr      []string
		upstream bool
		body     string
	}{
		{[]string{"Foo: 1"}, true, "foo=1"},
		{[]string{"Foo: 1"}, false, "foo=1"},
		{[]string{"Foo: 2"}, true, "foo=2"},
		{[]string{"Foo: 1"}, false, "foo=1"},
		{nil, true, "foo="},
		{[]string{"Foo:"}, true, "foo="}, // present but empty differs from absent
		{[]string{"Foo: 1", "Accept-Language: en, de"}, true, "foo=1"},
		{[]string{"Foo: 1", "Accept-Language: DE ,  en"}, false, "foo=1"},
		{[]string{"Foo:  1 ", "Accept-Language: de", "Accept-Language: en"}, false, "foo=1"},
	}
	for i, s := range steps {
		r := do(t, f, req{url: u, hdr: s.hdr}, o.origin)
		if r.upstream != s.upstream || r.body != s.body {
			t.Fatalf("step %d %v: upstream %v body %q, want %v %q", i, s.hdr, r.upstream, r.body, s.upstream, s.body)
		}
	}
	// A purge of the URL removes every variant.
	n, err := Purge(u)
	if err != nil || n < 3 {
		t.Fatalf("Purge: %d %v", n, err)
	}
	if r := do(t, f, req{url: u, hdr: []string{"Foo: 1"}}, o.origin); !r.upstream {
		t.Fatal("variant survived the purge")
	}
}

func TestVaryByConfig(t *testing.T) {
	f, _ := newTestFilter(t, `{"vary_by":["X-Tenant"]}`)
	o := &counting{fn: fixed(200, "x", "Cache-Control: max-age=60")}
	do(t, f, req{url: u, hdr: []string{"X-Tenant: a"}}, o.origin)
	do(t, f, req{url: u, hdr: []string{"X-Tenant: b"}}, o.origin)
	do(t, f, req{url: u, hdr: []string{"X-Tenant: a"}}, o.origin)
	if o.calls() != 2 {
		t.Fatalf("origin %d, want 2", o.calls())
	}
}

func TestVaryOnConsumer(t *testing.T) {
	f, _ := newTestFilter(t, `{"ignore_authorization":true}`)
	o := &counting{fn: func(r *fasthttp.Request) (int, []string, string) {
		return 200, []string{"Cache-Control: max-age=60", "Vary: X-Consumer-Name"}, "x"
	}}
	alice, bob := &sdk.Consumer{Name: "alice"}, &sdk.Consumer{Name: "bob"}
	do(t, f, req{url: u, consumer: alice}, o.origin)
	do(t, f, req{url: u, consumer: bob}, o.origin)
	if r := do(t, f, req{url: u, consumer: alice}, o.origin); r.upstream {
		t.Fatal("alice's variant not reused")
	}
	if o.calls() != 2 {
		t.Fatalf("origin %d", o.calls())
	}
}

func TestInvalidationAfterUnsafeMethods(t *testing.T) {
	f, _ := newTestFilter(t, `{}`)
	store := func(url string) {
		do(t, f, req{url: url}, fixed(200, "x", "Cache-Control: max-age=600"))
		if r := do(t, f, req{url: url}, nil); r.x() != "HIT" {
			t.Fatalf("%s not stored", url)
		}
	}
	for _, tc := range []struct {
		method, status string
		hdr            []string
		target         string
		invalidated    bool
	}{
		{"POST", "200", nil, u, true},
		{"PUT", "204", nil, u, true},
		{"DELETE", "200", nil, u, true},
		{"M-SEARCH", "200", nil, u, true},
		{"POST", "500", nil, u, false},
		{"OPTIONS", "200", nil, u, false},
		{"POST", "201", []string{"Location: /items/2"}, "http://api.example.com/items/2", true},
		{"POST", "201", []string{"Content-Location: http://api.example.com/items/3"}, "http://api.example.com/items/3", true},
		{"POST", "201", []string{"Location: sub/4"}, "http://api.example.com/items/sub/4", true},
		{"POST", "201", []string{"Location: http://evil.example.com/items/5"}, "http://evil.example.com/items/5", false},
	} {
		store(tc.target)
		st, _ := strconv.Atoi(tc.status)
		r := do(t, f, req{method: tc.method, url: u}, fixed(st, "", tc.hdr...))
		wantX(t, r, "BYPASS")
		got := do(t, f, req{url: tc.target}, fixed(200, "x", "Cache-Control: max-age=600")).upstream
		if got != tc.invalidated {
			t.Errorf("%s %s %v: %s invalidated = %v, want %v", tc.method, tc.status, tc.hdr, tc.target, got, tc.invalidated)
		}
	}
}

func TestRanges(t *testing.T) {
	f, _ := newTestFilter(t, `{}`)
	do(t, f, req{url: u}, fixed(200, "0123456789", "Cache-Control: max-age=60", `ETag: "r"`))
	for _, tc := range []struct {
		hdr    []string
		status int
		body   string
		cr     string
	}{
		{[]string{"Range: bytes=0-1"}, 206, "01", "bytes 0-1/10"},
		{[]string{"Range: bytes=7-"}, 206, "789", "bytes 7-9/10"},
		{[]string{"Range: bytes=-3"}, 206, "789", "bytes 7-9/10"},
		{[]string{"Range: bytes=8-100"}, 206, "89", "bytes 8-9/10"},
		{[]string{"Range: bytes=0-1,3-4"}, 200, "0123456789", ""},
		{[]string{"Range: bytes=20-"}, 200, "0123456789", ""},
		{[]string{"Range: bytes=0-1", `If-Range: "r"`}, 206, "01", "bytes 0-1/10"},
		{[]string{"Range: bytes=0-1", `If-Range: "other"`}, 200, "0123456789", ""},
	} {
		r := do(t, f, req{url: u, hdr: tc.hdr}, nil)
		if r.status != tc.status || r.body != tc.body || r.get("Content-Range") != tc.cr {
			t.Errorf("%v: %d %q %q", tc.hdr, r.status, r.body, r.get("Content-Range"))
		}
	}
}

func TestLargeAndStreamedBodiesPassThrough(t *testing.T) {
	f, _ := newTestFilter(t, `{"max_object_bytes": 16}`)
	o := &counting{fn: fixed(200, strings.Repeat("x", 17), "Cache-Control: max-age=60")}
	do(t, f, req{url: u}, o.origin)
	r := do(t, f, req{url: u}, o.origin)
	wantX(t, r, "MISS")
	if len(r.body) != 17 {
		t.Fatal("large body damaged")
	}

	// A streamed body is never read.
	var rc fasthttp.RequestCtx
	rc.Request.SetRequestURI(u + "/stream")
	c := sdk.AcquireCtx(&rc)
	c.SetPath(rc.Request.URI().Path())
	if st, _ := f.OnRequest(c); st != sdk.Continue {
		t.Fatal("not a miss")
	}
	rc.Response.Header.Set("Cache-Control", "max-age=60")
	rc.Response.SetBodyStream(strings.NewReader("streamed"), -1)
	_ = f.OnResponse(c)
	f.OnLog(c)
	if !rc.Response.IsBodyStream() || string(rc.Response.Header.Peek("X-Cache-Status")) != "MISS" {
		t.Fatal("streamed response touched")
	}
	sdk.ReleaseCtx(c)
	if r := do(t, f, req{url: u + "/stream"}, fixed(200, "s", "Cache-Control: max-age=60")); !r.upstream {
		t.Fatal("streamed response was stored")
	}
}

func TestHeuristicAndDefaultTTL(t *testing.T) {
	lm := clockDate(newFakeClock(), -10000*time.Second)
	date := clockDate(newFakeClock(), 0)
	for _, tc := range []struct {
		cfg     string
		status  int
		hdr     []string
		advance time.Duration
		hit     bool
	}{
		{`{}`, 200, []string{"Date: " + date, "Last-Modified: " + lm}, time.Second, false},
		{`{"heuristic":true}`, 200, []string{"Date: " + date, "Last-Modified: " + lm}, 900 * time.Second, true},
		{`{"heuristic":true}`, 200, []string{"Date: " + date, "Last-Modified: " + lm}, 1100 * time.Second, false},
		{`{"heuristic":true}`, 201, []string{"Date: " + date, "Last-Modified: " + lm}, time.Second, false},
		{`{"default_ttl":"30s"}`, 200, nil, 20 * time.Second, true},
		{`{"default_ttl":"30s"}`, 200, nil, 40 * time.Second, false},
		{`{"default_ttl":"30s"}`, 500, nil, time.Second, false},
		{`{"default_ttl":"30s","status_codes":[200,500]}`, 500, nil, time.Second, true},
		{`{"status_codes":[200]}`, 404, []string{"Cache-Control: max-age=60"}, time.Second, false},
		{`{}`, 404, []string{"Cache-Control: max-age=60"}, time.Second, true},
		{`{}`, 599, []string{"Cache-Control: max-age=60"}, time.Second, true},
	} {
		f, clk := newTestFilter(t, tc.cfg)
		do(t, f, req{url: u}, fixed(tc.status, "b", tc.hdr...))
		clk.Advance(tc.advance)
		r := do(t, f, req{url: u}, fixed(tc.status, "b", tc.hdr...))
		if got := r.x() == "HIT"; got != tc.hit {
			t.Errorf("%s %d %v +%s: hit %v, want %v", tc.cfg, tc.status, tc.hdr, tc.advance, got, tc.hit)
		}
	}
}

func TestUnlistedMethodIsBypassed(t *testing.T) {
	f, _ := newTestFilter(t, `{"methods":["GET"]}`)
	do(t, f, req{url: u}, fixed(200, "x", "Cache-Control: max-age=60"))
	r := do(t, f, req{method: "HEAD", url: u}, fixed(200, "", "Cache-Control: max-age=60"))
	wantX(t, r, "BYPASS")
}

func TestUnstorableSuccessorRemovesStaleEntry(t *testing.T) {
	f, clk := newTestFilter(t, `{"max_object_bytes":8}`)
	do(t, f, req{url: u}, fixed(200, "small", "Cache-Control: max-age=1", `ETag: "1"`))
	clk.Advance(5 * time.Second)
	do(t, f, req{url: u}, fixed(200, "far too large", "Cache-Control: max-age=60", `ETag: "2"`))
	// The old entry is gone: no more conditional requests for it.
	r := do(t, f, req{url: u}, fixed(200, "far too large", "Cache-Control: max-age=60"))
	if len(r.upReq.Peek("If-None-Match")) != 0 {
		t.Fatal("superseded entry still revalidated")
	}
}

func TestNulInPathIsNotCached(t *testing.T) {
	f, _ := newTestFilter(t, `{}`)
	var rc fasthttp.RequestCtx
	rc.Request.SetRequestURI(u)
	c := sdk.AcquireCtx(&rc)
	defer sdk.ReleaseCtx(c)
	c.SetPath([]byte("/items/1\x00x"))
	if st, _ := f.OnRequest(c); st != sdk.Continue {
		t.Fatal("stopped")
	}
	if c.Value(stateKey) != markBypass {
		t.Fatal("NUL path looked up")
	}
}
