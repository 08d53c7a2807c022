package wasm

import (
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/sdk"
)

// benchRequest runs one whole request through f on rc, restored from
// tmpl first (the guest adds headers to it).
func benchRequest(b *testing.B, f *filter, rc *fasthttp.RequestCtx, tmpl *fasthttp.Request) {
	throughFilter(b, f, rc, tmpl, func(r *fasthttp.Response) { r.SetBodyString("hello") })
}

// BenchmarkRequest: one request through the example guest (request
// headers, a property, a metric, response headers, done/log/delete).
func BenchmarkRequest(b *testing.B) {
	benchFilter(b, newFilter(b, headersWasm, map[string]any{"config": headersConfig, "pool_size": 1}, nil))
}

// benchFilter measures whole requests through f, after one to warm up.
func benchFilter(b *testing.B, f *filter) {
	rc, c := request("GET", "/users/7?x=1", "", "Accept: application/json", "User-Agent: bench")
	sdk.ReleaseCtx(c)
	var tmpl fasthttp.Request
	rc.Request.CopyTo(&tmpl)
	benchRequest(b, f, rc, &tmpl)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for i := 0; i < b.N; i++ {
		benchRequest(b, f, rc, &tmpl)
	}
	reportCPU(b, cpu)
}

// BenchmarkRequestParallel: the same from GOMAXPROCS goroutines sharing
// the default pool.
func BenchmarkRequestParallel(b *testing.B) {
	f := newFilter(b, headersWasm, map[string]any{"config": headersConfig}, nil)
	if err := f.Start(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rc, c := request("GET", "/users/7?x=1", "", "Accept: application/json")
		sdk.ReleaseCtx(c)
		var tmpl fasthttp.Request
		rc.Request.CopyTo(&tmpl)
		for pb.Next() {
			benchRequest(b, f, rc, &tmpl)
		}
	})
}

// BenchmarkMinimalGuest: the hand-assembled guest, whose callbacks do
// almost nothing: the fixed cost of the host per request.
func BenchmarkMinimalGuest(b *testing.B) {
	f := newFilter(b, writeModule(b, "hostile", hostileGuest()), map[string]any{"pool_size": 1}, nil)
	rc, c := request("GET", "/", "")
	sdk.ReleaseCtx(c)
	var tmpl fasthttp.Request
	rc.Request.CopyTo(&tmpl)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for i := 0; i < b.N; i++ {
		benchRequest(b, f, rc, &tmpl)
	}
	reportCPU(b, cpu)
}

// BenchmarkHandHeaders: one request through the hand-written header
// filter (wasmasm.HeaderFilter: one header added in the request phase,
// one set in the response phase, no language runtime in the guest): the
// plugin's cost for the bench's wasm_header_hand row.
func BenchmarkHandHeaders(b *testing.B) {
	benchFilter(b, newFilter(b, writeModule(b, "hand", handHeaders()), map[string]any{"pool_size": 1}, nil))
}

// BenchmarkCallGuest: one call into the example guest's proxy_on_done,
// which returns at once: the cost of a callback to the host (setting the
// fuel, arming the backstop, wazero's entry and exit, the Go guest's own
// entry into its runtime).
func BenchmarkCallGuest(b *testing.B) {
	f := newFilter(b, headersWasm, map[string]any{"config": headersConfig, "pool_size": 1}, nil)
	s := f.pool.acquire()
	defer s.release()
	in, err := s.instance(f)
	if err != nil {
		b.Fatal(err)
	}
	in.begin(nil, nil, phaseRoot)
	defer in.end()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for i := 0; i < b.N; i++ {
		if _, err := in.call(in.onDone, "proxy_on_done", f.s.timeout, 2, 0, 0); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu)
}

// BenchmarkCheckout: taking an idle instance of the pool and giving it
// back, as each phase of a request does.
func BenchmarkCheckout(b *testing.B) {
	f := newFilter(b, headersWasm, map[string]any{"config": headersConfig, "pool_size": 2}, nil)
	if err := f.Start(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := f.pool.acquire()
		if _, err := s.instance(f); err != nil {
			b.Fatal(err)
		}
		s.release()
	}
}

func BenchmarkParsePairs(b *testing.B) {
	m := appendPairs(nil, []kv{
		{[]byte(":status"), []byte("200")},
		{[]byte("content-type"), []byte("application/json")},
		{[]byte("x-request-id"), []byte("0123456789abcdef")},
		{[]byte("cache-control"), []byte("no-store")},
	})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		p, err := parsePairs(m)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, _, ok := p.next(); !ok {
				break
			}
		}
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per op since start (cpu-µs/op): on a
// shared machine wall time per op measures the neighbours too, the
// process's own CPU time far less.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
}

// sdkHeaders builds, once, the Go SDK filter the bench's
// weir+wasm_sdk_headers row runs (e2e/testdata/proxywasm/http_headers:
// the SDK's http_headers example), with the standard toolchain.
var sdkHeaders = sync.OnceValues(func() (string, error) {
	return buildGuest("../../e2e/testdata/proxywasm/http_headers", filepath.Join(testDir, "sdk_http_headers.wasm"))
})

// BenchmarkSDKHeaders: one request through the Go SDK's http_headers
// example as the bench runs it (log_level warn: its info line per header
// and one when the stream ends, 12 here, are formatted by the guest and
// dropped by the host).
func BenchmarkSDKHeaders(b *testing.B) {
	module, err := sdkHeaders()
	if err != nil {
		b.Fatal(err)
	}
	benchFilter(b, newFilter(b, module, map[string]any{
		"config": map[string]string{"header": "x-from-config", "value": "yes"}, "log_level": "warn", "pool_size": 1,
	}, nil))
}
