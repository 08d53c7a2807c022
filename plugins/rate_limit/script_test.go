package ratelimit

import (
	"context"
	_ "embed"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/weirgw/weir/internal/testredis"
)

// takeLuaBefore is takeScript as Weir 90963ce shipped it: nodes running it
// may share Redis with nodes running this one during a rolling upgrade.
//
//go:embed testdata/take_90963ce.lua
var takeLuaBefore string

// atClock is src with Redis's clock replaced by a fixed one, so that two
// scripts can be asked the same question at the same instant.
func atClock(t *testing.T, src string, sec, usec int64) string {
	t.Helper()
	const call = "redis.call('TIME')"
	if strings.Count(src, call) != 1 {
		t.Fatalf("script reads TIME %d times, want 1", strings.Count(src, call))
	}
	return strings.Replace(src, call, fmt.Sprintf("{'%d','%d'}", sec, usec), 1)
}

type scriptRun struct {
	reply []int64
	value string // the bucket key after the call ("" when absent)
	pttl  int64  // the PX it was written with (-1: not written)
}

func evalAt(t *testing.T, cl rueidis.Client, src string, sec, usec int64, keys, args []string) scriptRun {
	t.Helper()
	// The bucket is read in the same script, and then kept: the scripts
	// run on the test's clock, so it must not expire on Redis's. Its TTL
	// is the PX the script wrote (PTTL would count the real time the
	// script took).
	src = "local real, px = redis, -1\n" +
		"local redis = setmetatable({call = function(...)\n" +
		"  local a = {...}\n" +
		"  if a[1] == 'SET' and a[4] == 'PX' then px = tonumber(a[5]) end\n" +
		"  return real.call(...)\nend}, {__index = real})\n" +
		"local r = (function()\n" + atClock(t, src, sec, usec) + "\nend)()\n" +
		"local v = real.call('GET', KEYS[1]) or ''\n" +
		"real.call('PERSIST', KEYS[1])\nreturn {r, v, px}"
	vals, err := cl.Do(context.Background(), cl.B().Eval().Script(src).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build()).ToArray()
	if err != nil || len(vals) != 3 {
		t.Fatalf("EVAL %v %v: %v %v", keys, args, vals, err)
	}
	reply, err := vals[0].ToArray()
	if err != nil {
		t.Fatalf("reply %v: %v", vals, err)
	}
	var r scriptRun
	for _, v := range reply {
		n, err := v.AsInt64()
		if err != nil {
			t.Fatalf("reply %v: %v", vals, err)
		}
		r.reply = append(r.reply, n)
	}
	r.value, _ = vals[1].ToString()
	r.pttl, _ = vals[2].AsInt64()
	return r
}

// scriptArgs are the arguments newRedisStore sends for limits (T and tau
// in µs) and want.
func scriptArgs(want int, limits [][2]float64) []string {
	a := []string{strconv.Itoa(want), strconv.Itoa(len(limits))}
	for _, l := range limits {
		a = append(a, strconv.FormatFloat(l[0], 'g', -1, 64), strconv.FormatFloat(l[0]*l[1], 'g', -1, 64))
	}
	return a
}

// TestTakeScriptSameAsBefore asks the script and the one Weir 90963ce
// shipped the same questions at the same instant (Redis's clock replaced
// by a fixed one): every answer, the stored bucket and its TTL must be the
// same, for one limit (the short path) and several, with and without a
// charge, from absent, integral and fractional stored TATs. Then both
// scripts take turns on one key while the old one alone runs on another:
// a cluster in the middle of an upgrade keeps exactly the buckets of one
// that is not.
func TestTakeScriptSameAsBefore(t *testing.T) {
	srv := testredis.Start(t)
	cl := newClient(t, srv)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(15, 30))
	Ts := []float64{1, 0.5, 7, 1000, 100000, 1e6 / 3, 1e6 / 7, 60e6}
	bursts := []float64{1, 2, 5, 50, 1000, 1e6}
	limitsOf := func() [][2]float64 {
		n := 1
		if rng.IntN(4) == 0 {
			n = 2
		}
		var l [][2]float64
		for range n {
			l = append(l, [2]float64{Ts[rng.IntN(len(Ts))], bursts[rng.IntN(len(bursts))]})
		}
		return l
	}
	sec := int64(1796600000)
	// setupTTL is the TTL of a bucket stored before the call.
	const setupTTL = 360_000_000
	written := 0
	compare := func(what string, got, want scriptRun) {
		t.Helper()
		if want.pttl >= 0 {
			written++
		}
		if !slices.Equal(got.reply, want.reply) || got.value != want.value || got.pttl != want.pttl {
			t.Fatalf("%s:\nnew %+v\nold %+v", what, got, want)
		}
	}
	fast := 0
	for i := range 400 {
		lims := limitsOf()
		want := 1 + rng.IntN(70)
		args := scriptArgs(want, lims)
		a, b := fmt.Sprintf("weir:rl:{t:f:a%d}", i), fmt.Sprintf("weir:rl:{t:f:b%d}", i)
		usec := rng.Int64N(1e6)
		now := float64(sec-1700000000)*1e6 + float64(usec)
		if rng.IntN(5) != 0 { // a stored bucket, as the old script writes it
			var parts []string
			for _, l := range lims {
				tat := now + (rng.Float64()*4-2)*l[0]*l[1]
				if rng.IntN(2) == 0 {
					tat = float64(int64(tat))
				}
				parts = append(parts, strconv.FormatFloat(tat, 'g', 17, 64))
			}
			for _, k := range []string{a, b} {
				if err := cl.Do(ctx, cl.B().Set().Key(k).Value(strings.Join(parts, ",")).Px(setupTTL*time.Millisecond).Build()).Error(); err != nil {
					t.Fatal(err)
				}
			}
		}
		keysA, keysB := []string{a}, []string{b}
		if rng.IntN(6) == 0 { // a charge: the general path
			args = append(args, "node1", "1", strconv.Itoa(1+rng.IntN(5)), "120000", "0")
			keysA, keysB = append(keysA, a+":owed"), append(keysB, b+":owed")
		} else if len(lims) == 1 {
			fast++
		}
		compare(fmt.Sprintf("case %d, limits %v, args %v", i, lims, args),
			evalAt(t, cl, takeLua, sec, usec, keysB, args), evalAt(t, cl, takeLuaBefore, sec, usec, keysA, args))
	}
	if fast < 200 || written < 200 {
		t.Fatalf("only %d cases took the one-limit path, %d wrote the bucket", fast, written)
	}
	// Old and new nodes on one key.
	for c := range 12 {
		lims := limitsOf()
		shared, ref := fmt.Sprintf("weir:rl:{t:f:s%d}", c), fmt.Sprintf("weir:rl:{t:f:r%d}", c)
		usec := int64(0)
		for step := range 60 {
			usec += rng.Int64N(int64(3 * lims[0][0] * float64(1+rng.IntN(3))))
			args := scriptArgs(1+rng.IntN(8), lims)
			src := takeLua
			if rng.IntN(2) == 0 {
				src = takeLuaBefore
			}
			compare(fmt.Sprintf("sequence %d step %d, limits %v, args %v", c, step, lims, args),
				evalAt(t, cl, src, sec+usec/1e6, usec%1e6, []string{shared}, args),
				evalAt(t, cl, takeLuaBefore, sec+usec/1e6, usec%1e6, []string{ref}, args))
		}
	}
}
