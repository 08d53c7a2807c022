package ratelimit

import (
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/weirgw/weir/internal/testredis"
	"github.com/weirgw/weir/sdk"
)

// Every benchmark here goes through OnRequest, key building and headers
// included, on an existing key unless it says otherwise.

const hugeLimit = `"rate":1000000,"per":"1s","burst":1000000000`

func benchDecide(b *testing.B, f *filter, r *testReq, wantOK bool) {
	b.Helper()
	r.decideOnly(f)
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	for range b.N {
		if ok, _, _ := r.decideOnly(f); ok != wantOK {
			b.Fatalf("allowed = %v, want %v", ok, wantOK)
		}
	}
}

// reportCPU reports the CPU time (user + system, every thread of this
// process; a test Redis is another process) per op as cpu-ns/op: on a
// shared machine wall time is mostly other work's. Call it deferred:
// defer reportCPU(b)().
func reportCPU(b *testing.B) func() {
	start := cpuNow()
	return func() { b.ReportMetric(float64(cpuNow()-start)/float64(b.N), "cpu-ns/op") }
}

func cpuNow() int64 {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0
	}
	return u.Utime.Nano() + u.Stime.Nano()
}

func BenchmarkLocalAllowed(b *testing.B) {
	f := mustNew(b, nil, `{`+hugeLimit+`,"key":"consumer+route"}`)
	benchDecide(b, f, newTestReq(reqSpec{consumer: "alice", route: "r1"}), true)
}

func BenchmarkLocalRejected(b *testing.B) {
	f := mustNew(b, nil, `{"rate":1,"per":"1h","burst":1,"key":"ip"}`)
	benchDecide(b, f, newTestReq(reqSpec{}), false)
}

func BenchmarkLocalTwoLimits(b *testing.B) {
	f := mustNew(b, nil, `{"limits":[{`+hugeLimit+`},{"rate":1000000,"per":"1h","burst":1000000000}],"key":"header:X-Tenant"}`)
	benchDecide(b, f, newTestReq(reqSpec{headers: map[string]string{"X-Tenant": "acme"}}), true)
}

// BenchmarkLocalParallelKeys: every goroutine its own key, so shards do
// not contend.
func BenchmarkLocalParallelKeys(b *testing.B) {
	f := mustNew(b, nil, `{`+hugeLimit+`,"key":"consumer"}`)
	var id atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := newTestReq(reqSpec{consumer: "c" + strconv.FormatInt(id.Add(1), 10)})
		for pb.Next() {
			r.decideOnly(f)
		}
	})
}

// BenchmarkLocalParallelOneKey: every goroutine on the same key, the
// worst case for a shard lock.
func BenchmarkLocalParallelOneKey(b *testing.B) {
	f := mustNew(b, nil, `{`+hugeLimit+`,"key":"route"}`)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := newTestReq(reqSpec{route: "hot"})
		for pb.Next() {
			r.decideOnly(f)
		}
	})
}

// BenchmarkLocalNewKeys: every request a key never seen, the table full
// (max_keys) so each insert evicts.
func BenchmarkLocalNewKeys(b *testing.B) {
	f := mustNew(b, nil, `{`+hugeLimit+`,"key":"header:X-Id","max_keys":65536}`)
	r := newTestReq(reqSpec{headers: map[string]string{"X-Id": "0"}})
	var buf []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		buf = strconv.AppendInt(buf[:0], int64(i), 10)
		r.rc.Request.Header.SetBytesV("X-Id", buf)
		r.decideOnly(f)
	}
}

func BenchmarkGCRATake(b *testing.B) {
	lims := []limit{lim(1e6, time.Second, 1e9)}
	tats := make([]int64, 1)
	b.ReportAllocs()
	for i := range b.N {
		gcraTake(tats, int64(time.Hour)+int64(i), lims, 1)
	}
}

func BenchmarkKeyBuild(b *testing.B) {
	ks, _ := parseKeySpec([]byte(`"consumer+route+header:X-Tenant"`))
	tr := newTestReq(reqSpec{consumer: "alice", route: "users", headers: map[string]string{"X-Tenant": "acme"}})
	c := sdk.AcquireCtx(&tr.rc)
	defer sdk.ReleaseCtx(c)
	c.SetConsumer(tr.cons, "k")
	c.Route = "users"
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for range b.N {
		buf = ks.appendKey(buf[:0], c)
	}
}

func redisFilter(b *testing.B, extra string) *filter {
	srv := testredis.Start(b)
	return mustNew(b, &sdk.Build{Route: "bench", Redis: newClient(b, srv)},
		`{`+hugeLimit+`,"key":"consumer","policy":"redis","timeout":"1s"`+extra+`}`)
}

// BenchmarkRedisDecision: one decision at a time, a full round trip each.
func BenchmarkRedisDecision(b *testing.B) {
	f := redisFilter(b, "")
	benchDecide(b, f, newTestReq(reqSpec{consumer: "alice"}), true)
}

// BenchmarkRedisDecisionParallel: concurrent decisions share round trips
// through rueidis auto-pipelining.
func BenchmarkRedisDecisionParallel(b *testing.B) {
	f := redisFilter(b, "")
	var id atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(16)
	defer reportCPU(b)()
	b.RunParallel(func(pb *testing.PB) {
		r := newTestReq(reqSpec{consumer: "c" + strconv.FormatInt(id.Add(1), 10)})
		for pb.Next() {
			r.decideOnly(f)
		}
	})
}

// BenchmarkRedisDecisionParallelOneKey: 16 concurrent requests on one key
// (key: route, as the bench scenario): concurrent decisions share Redis
// calls (coalesce.go).
func BenchmarkRedisDecisionParallelOneKey(b *testing.B) {
	f := redisFilter(b, "")
	b.ReportAllocs()
	b.SetParallelism(16)
	defer reportCPU(b)()
	b.RunParallel(func(pb *testing.PB) {
		r := newTestReq(reqSpec{consumer: "alice"})
		for pb.Next() {
			r.decideOnly(f)
		}
	})
}

// BenchmarkHybridHotKey: one hot key in hybrid mode, batch 10: about one
// decision in ten goes to Redis.
func BenchmarkHybridHotKey(b *testing.B) {
	f := redisFilter(b, `,"hybrid":{"batch":10}`)
	benchDecide(b, f, newTestReq(reqSpec{consumer: "alice"}), true)
}

func BenchmarkHybridHotKeyParallel(b *testing.B) {
	f := redisFilter(b, `,"hybrid":{"batch":100}`)
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		r := newTestReq(reqSpec{consumer: "alice"})
		for pb.Next() {
			r.decideOnly(f)
		}
	})
}

// BenchmarkLocalMemory1MKeys inserts one million distinct consumer keys
// (about 20 bytes each) and reports the heap they hold, per key.
func BenchmarkLocalMemory1MKeys(b *testing.B) {
	const n = 1_000_000
	for range b.N {
		b.StopTimer()
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		b.StartTimer()
		s := newLocalStore(n, 1)
		lims := []limit{lim(1, time.Hour, 10)}
		now := int64(time.Hour)
		key := make([]byte, 0, 32)
		for i := range n {
			key = fmt.Appendf(key[:0], "c15:consumer-%07d", i)
			s.take(key, now, lims, 1)
		}
		b.StopTimer()
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		if got := s.t.len(); got != n {
			b.Fatalf("table holds %d keys, want %d", got, n)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/key")
		runtime.KeepAlive(s)
		b.StartTimer()
	}
}
