package cache

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestFreshness drives prepare (storage decision, freshness lifetime,
// corrected initial age) and usable (what a later request may do) with a
// fixed clock: RFC 9111 §4.2 and the request directives of §5.2.1.
func TestFreshness(t *testing.T) {
	clk := newFakeClock()
	date := func(d time.Duration) string { return clockDate(clk, d) }
	const (
		fresh   = useFresh
		reval   = useRevalidate
		staleOK = useStaleOK
		swr     = useSWR
	)
	for _, tc := range []struct {
		name    string
		cfg     string
		resp    []string
		reqCC   string
		delay   time.Duration // request→response time
		at      time.Duration // when the next request comes
		want    int
		noStore bool
	}{
		{"max-age fresh", `{}`, []string{"Cache-Control: max-age=60"}, "", 0, 30 * time.Second, fresh, false},
		{"max-age stale", `{}`, []string{"Cache-Control: max-age=60"}, "", 0, 61 * time.Second, reval, false},
		{"max-age boundary", `{}`, []string{"Cache-Control: max-age=60"}, "", 0, 60 * time.Second, reval, false},
		{"s-maxage wins (shorter)", `{}`, []string{"Cache-Control: max-age=3600, s-maxage=10"}, "", 0, 20 * time.Second, reval, false},
		{"s-maxage wins (longer)", `{}`, []string{"Cache-Control: max-age=1, s-maxage=3600"}, "", 0, 20 * time.Second, fresh, false},
		{"max-age beats expires", `{}`, []string{"Cache-Control: max-age=3600", "Expires: " + date(-time.Hour), "Date: " + date(0)}, "", 0, 20 * time.Second, fresh, false},
		{"age header counts", `{}`, []string{"Cache-Control: max-age=3600", "Age: 3590"}, "", 0, 20 * time.Second, reval, false},
		{"age header with time left", `{}`, []string{"Cache-Control: max-age=3600", "Age: 3500"}, "", 0, 20 * time.Second, fresh, false},
		{"invalid age is stale", `{}`, []string{"Cache-Control: max-age=3600", "Age: 1x", `ETag: "e"`}, "", 0, time.Second, reval, false},
		{"response delay adds age", `{}`, []string{"Cache-Control: max-age=10"}, "", 8 * time.Second, 3 * time.Second, reval, false},
		{"apparent age from Date", `{}`, []string{"Cache-Control: max-age=3600", "Date: " + date(-3590*time.Second)}, "", 0, 20 * time.Second, reval, false},
		{"expires fresh", `{}`, []string{"Expires: " + date(time.Minute), "Date: " + date(0)}, "", 0, 30 * time.Second, fresh, false},
		{"expires stale", `{}`, []string{"Expires: " + date(time.Minute), "Date: " + date(0)}, "", 0, 61 * time.Second, reval, false},
		{"expires relative to Date", `{}`, []string{"Expires: " + date(time.Minute), "Date: " + date(-30*time.Second)}, "", 0, 20 * time.Second, fresh, false},
		{"expires before Date", `{}`, []string{"Expires: " + date(300*time.Second), "Date: " + date(400*time.Second)}, "", 0, time.Second, reval, true},
		{"expires invalid", `{}`, []string{"Expires: 0", `ETag: "e"`}, "", 0, 0, reval, false},
		{"expires without Date", `{}`, []string{"Expires: " + date(time.Minute)}, "", 0, 30 * time.Second, fresh, false},
		{"fast Date with Age", `{}`, []string{"Date: " + date(10*time.Second), "Expires: " + date(20*time.Second), "Age: 15"}, "", 0, 0, reval, true},
		{"no-cache", `{}`, []string{"Cache-Control: max-age=600, no-cache", `ETag: "e"`}, "", 0, 0, reval, false},
		{"no-cache without validator", `{}`, []string{"Cache-Control: max-age=600, no-cache"}, "", 0, 0, reval, true},
		{"heuristic off", `{}`, []string{"Last-Modified: " + date(-1000*time.Second), "Date: " + date(0)}, "", 0, time.Second, reval, false},
		{"heuristic 10%", `{"heuristic":true}`, []string{"Last-Modified: " + date(-1000*time.Second), "Date: " + date(0)}, "", 0, 90 * time.Second, fresh, false},
		{"heuristic 10% over", `{"heuristic":true}`, []string{"Last-Modified: " + date(-1000*time.Second), "Date: " + date(0)}, "", 0, 110 * time.Second, reval, false},
		{"default_ttl", `{"default_ttl":"1m"}`, nil, "", 0, 50 * time.Second, fresh, false},
		{"swr window", `{}`, []string{"Cache-Control: max-age=10, stale-while-revalidate=30"}, "", 0, 20 * time.Second, swr, false},
		{"swr past window", `{}`, []string{"Cache-Control: max-age=10, stale-while-revalidate=30"}, "", 0, 50 * time.Second, reval, false},
		{"must-revalidate stops swr", `{}`, []string{"Cache-Control: max-age=10, stale-while-revalidate=30, must-revalidate"}, "", 0, 20 * time.Second, reval, false},
		{"req max-age", `{}`, []string{"Cache-Control: max-age=600"}, "max-age=10", 0, 20 * time.Second, reval, false},
		{"req max-age=0", `{}`, []string{"Cache-Control: max-age=600"}, "max-age=0", 0, time.Second, reval, false},
		{"req max-age ok", `{}`, []string{"Cache-Control: max-age=600"}, "max-age=30", 0, 20 * time.Second, fresh, false},
		{"req min-fresh", `{}`, []string{"Cache-Control: max-age=60"}, "min-fresh=50", 0, 20 * time.Second, reval, false},
		{"req min-fresh ok", `{}`, []string{"Cache-Control: max-age=60"}, "min-fresh=30", 0, 20 * time.Second, fresh, false},
		{"req no-cache", `{}`, []string{"Cache-Control: max-age=60"}, "no-cache", 0, 0, reval, false},
		{"req max-stale", `{}`, []string{"Cache-Control: max-age=10"}, "max-stale=30", 0, 30 * time.Second, staleOK, false},
		{"req max-stale exceeded", `{}`, []string{"Cache-Control: max-age=10"}, "max-stale=5", 0, 30 * time.Second, reval, false},
		{"req max-stale any", `{}`, []string{"Cache-Control: max-age=10"}, "max-stale", 0, time.Hour, staleOK, false},
		{"req max-stale vs must-revalidate", `{}`, []string{"Cache-Control: max-age=10, must-revalidate"}, "max-stale", 0, 30 * time.Second, reval, false},
		{"req max-stale vs s-maxage", `{}`, []string{"Cache-Control: s-maxage=10"}, "max-stale", 0, 30 * time.Second, reval, false},
		{"private", `{}`, []string{"Cache-Control: max-age=60, private"}, "", 0, 0, fresh, true},
		{"no-store", `{}`, []string{"Cache-Control: max-age=60, no-store"}, "", 0, 0, fresh, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := newTestFilter(t, tc.cfg)
			respTime := clk.Now().UnixNano()
			reqTime := respTime - int64(tc.delay)
			b := acquireBuf()
			defer releaseBuf(b)
			enc, _, storable := f.prepare(b, parseHeader(t, tc.resp...), 200, []byte("x"), false, reqTime, respTime)
			if storable == tc.noStore {
				t.Fatalf("storable = %v", storable)
			}
			if tc.noStore {
				return
			}
			e := entry(bytes.Clone(enc))
			var rcc reqDirectives
			parseRequestCC(&rcc, []byte(tc.reqCC))
			if got := f.usable(e, &rcc, respTime+int64(tc.at)); got != tc.want {
				t.Fatalf("at +%s: usable = %d, want %d (lifetime %s, age %s)", tc.at, got, tc.want,
					time.Duration(e.lifetime()), time.Duration(e.age(respTime+int64(tc.at))))
			}
		})
	}
}

// TestStoreUntil checks how long the store keeps entries: freshness plus
// stale windows plus keep_stale.
func TestStoreUntil(t *testing.T) {
	clk := newFakeClock()
	now := clk.Now().UnixNano()
	for _, tc := range []struct {
		cfg  string
		resp string
		want time.Duration
	}{
		{`{"keep_stale":"10m"}`, "Cache-Control: max-age=60", 11 * time.Minute},
		{`{"keep_stale":"10m"}`, "Cache-Control: max-age=60, stale-if-error=600", 21 * time.Minute},
		{`{"keep_stale":"10m"}`, "Cache-Control: max-age=60, stale-while-revalidate=120, must-revalidate", 11 * time.Minute},
		{`{"keep_stale":"1s"}`, "Cache-Control: max-age=60", 61 * time.Second},
	} {
		f, _ := newTestFilter(t, tc.cfg)
		b := acquireBuf()
		enc, _, ok := f.prepare(b, parseHeader(t, tc.resp), 200, nil, false, now, now)
		if !ok {
			t.Fatalf("%s: not storable", tc.resp)
		}
		if got := time.Duration(entry(enc).storeUntil() - now); got != tc.want {
			t.Errorf("%s %s: kept %s, want %s", tc.cfg, tc.resp, got, tc.want)
		}
		releaseBuf(b)
	}
}

func TestHeaderBlockIsWhatIsServed(t *testing.T) {
	f, _ := newTestFilter(t, `{}`)
	now := time.Now().UnixNano()
	b := acquireBuf()
	defer releaseBuf(b)
	h := parseHeader(t, "Cache-Control: max-age=60", "Date: Sun, 06 Nov 1994 08:49:37 GMT", "Age: 5", "Connection: x-a", "X-A: 1",
		"Transfer-Encoding: chunked", "Set-Cookie: a=b", "X-B: 2", "X-B: 3")
	enc, _, _ := f.prepare(b, h, 200, []byte("hello"), false, now, now)
	block := string(entry(enc).headerBlock())
	for _, want := range []string{"HTTP/1.1 200 OK\r\n", "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n", "X-B: 2\r\nX-B: 3\r\n",
		"Content-Length: 5\r\n", "Set-Cookie: a=b\r\n"} {
		if !strings.Contains(block, want) {
			t.Errorf("block lacks %q:\n%s", want, block)
		}
	}
	for _, not := range []string{"Age:", "X-A:", "Connection:", "Transfer-Encoding:"} {
		if strings.Contains(block, not) {
			t.Errorf("block keeps %q:\n%s", not, block)
		}
	}
	if !strings.HasSuffix(block, "\r\n\r\n") {
		t.Errorf("block not terminated")
	}
}
