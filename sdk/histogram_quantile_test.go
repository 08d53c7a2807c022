package sdk

import (
	"fmt"
	"math"
	"testing"
)

// TestHistogramQuantile checks the interpolation against values worked out
// by hand from the buckets.
func TestHistogramQuantile(t *testing.T) {
	// Histograms are global: a fresh series per run keeps -count=N honest.
	quantileRuns++
	h := GetOrCreateHistogram(fmt.Sprintf(`weir_test_quantile_seconds{t="%d"}`, quantileRuns))
	if _, ok := h.Quantile(0.5); ok {
		t.Fatal("an empty histogram has no quantile")
	}
	// 90 observations in (0.001, 0.0025], 10 in (0.05, 0.1].
	for range 90 {
		h.Update(0.002)
	}
	for range 10 {
		h.Update(0.07)
	}
	for _, c := range []struct{ q, want float64 }{
		{0.5, 0.001 + 0.0015*50/90},
		{0.9, 0.0025},
		{0.99, 0.05 + 0.05*9/10},
	} {
		got, ok := h.Quantile(c.q)
		if !ok || math.Abs(got-c.want) > 1e-12 {
			t.Errorf("q%v = %v, %v; want %v", c.q, got, ok, c.want)
		}
	}
	h.Update(100) // beyond the last bound: +Inf
	for range 1000 {
		h.Update(100)
	}
	if got, _ := h.Quantile(0.99); got != 30 {
		t.Errorf("q0.99 in +Inf = %v; want the largest bound, 30", got)
	}
}

var quantileRuns int
