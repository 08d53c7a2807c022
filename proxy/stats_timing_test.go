package proxy

import "testing"

// BenchmarkRouteCount: counting one answer in a route's metrics, which
// every request does (routeMetrics.count).
func BenchmarkRouteCount(b *testing.B) {
	m := &routeMetrics{label: `route="bench_count",service="s"`}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		m.count(200 + i&1)
	}
}
