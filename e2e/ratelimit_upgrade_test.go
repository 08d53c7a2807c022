package e2e

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/weirgw/weir/internal/testredis"
)

// TestRateLimitReadsOlderWeirsBuckets: during a rolling upgrade, nodes of
// an older Weir and of this one share Redis. A bucket as the older
// script leaves it (one limit: the TAT in µs since 2023-11-14 as %.17g,
// fractional when per/rate is not a whole µs) is read by this binary as
// the older one reads it, and what it writes back is the older format:
// the same key, the same decimal TAT, T further on.
func TestRateLimitReadsOlderWeirsBuckets(t *testing.T) {
	rs := testredis.Start(t)
	up := startEcho(t, "e1")
	// rateCfg's route, at 3 tokens a second: a token is 333,333.33 µs.
	cfg := strings.NewReplacer("UP", up, "REDIS", rs.Addr,
		"rate: 50, per: 1s, burst: 50,", "rate: 3, per: 1s, burst: 3,", "timeout: 200ms", "timeout: 1s").Replace(rateCfg)
	if !strings.Contains(cfg, "burst: 3,") || !strings.Contains(cfg, "timeout: 1s") {
		t.Fatalf("rateCfg changed: %s", cfg)
	}
	w := startWeir(t, cfg)
	c := newClient(w.Addr)
	hdr := map[string]string{"X-Tenant": "upgrade"}
	if code, _, h := get(t, c, "/static", hdr); code != 200 || string(h.Peek("RateLimit-Remaining")) != "2" {
		t.Fatalf("first request: %d, Remaining %q", code, h.Peek("RateLimit-Remaining"))
	}
	cl, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{rs.Addr}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	keys, err := cl.Do(ctx, cl.B().Keys().Pattern("weir:rl:{limited:*").Build()).AsStrSlice()
	if err != nil || len(keys) != 1 {
		t.Fatalf("bucket keys %v: %v", keys, err)
	}
	key := keys[0]
	tm, err := cl.Do(ctx, cl.B().Time().Build()).AsStrSlice()
	if err != nil || len(tm) != 2 {
		t.Fatalf("TIME %v: %v", tm, err)
	}
	sec, _ := strconv.ParseInt(tm[0], 10, 64)
	usec, _ := strconv.ParseInt(tm[1], 10, 64)
	// An empty bucket a quarter token past the burst, as 90963ce's script
	// writes it.
	const T = 1e6 / 3.0
	tat := float64((sec-1700000000)*1e6+usec) + 3*T + T/4
	old := strconv.FormatFloat(tat, 'g', 17, 64)
	if !strings.Contains(old, ".") {
		t.Fatalf("seeded TAT %s is not fractional", old)
	}
	if err := cl.Do(ctx, cl.B().Set().Key(key).Value(old).Px(5*time.Second).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	// No token: a 429 until 1.25 T from now, and the bucket unchanged.
	code, _, h := get(t, c, "/static", hdr)
	if code != 429 || string(h.Peek("Retry-After")) != "1" || string(h.Peek("RateLimit-Remaining")) != "0" {
		t.Fatalf("on the older bucket: %d, Retry-After %q, Remaining %q, want 429, 1, 0", code, h.Peek("Retry-After"), h.Peek("RateLimit-Remaining"))
	}
	if v, _ := cl.Do(ctx, cl.B().Get().Key(key).Build()).ToString(); v != old {
		t.Fatalf("a refusal changed the bucket: %q, was %q", v, old)
	}
	time.Sleep(434 * time.Millisecond) // 1.3 T
	if code, _, h := get(t, c, "/static", hdr); code != 200 || string(h.Peek("RateLimit-Remaining")) != "0" {
		t.Fatalf("after 1.3 T: %d, Remaining %q, want 200, 0", code, h.Peek("RateLimit-Remaining"))
	}
	v, err := cl.Do(ctx, cl.B().Get().Key(key).Build()).ToString()
	if err != nil {
		t.Fatal(err)
	}
	got, err := strconv.ParseFloat(v, 64)
	if err != nil || got-tat < T-0.01 || got-tat > T+0.01 || !strings.Contains(v, ".") {
		t.Fatalf("bucket after the grant %q, want the older TAT %s plus T = %.3f µs, as a decimal", v, old, T)
	}
}
