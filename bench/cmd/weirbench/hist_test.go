package main

import (
	"math"
	"testing"
	"time"
)

func TestHistogramBucketsAreWithinOnePercent(t *testing.T) {
	// Every value maps to a bucket whose reported value is within
	// 1/subBuckets of it, over the whole range the generator records.
	for v := int64(0); v < 1<<40; v = v*5/4 + 1 {
		got := valueOf(bucketOf(v))
		if v < subBuckets {
			if got != v {
				t.Fatalf("valueOf(bucketOf(%d)) = %d, want exact", v, got)
			}
			continue
		}
		if rel := math.Abs(float64(got-v)) / float64(v); rel > 1.0/subBuckets {
			t.Fatalf("valueOf(bucketOf(%d)) = %d, off by %.4f", v, got, rel)
		}
	}
	if b := bucketOf(-5); b != 0 {
		t.Errorf("bucketOf(-5) = %d, want 0", b)
	}
	if b := bucketOf(math.MaxInt64); b != nBuckets-1 {
		t.Errorf("bucketOf(max) = %d, want the last bucket %d", b, nBuckets-1)
	}
}

func TestHistogramQuantiles(t *testing.T) {
	h := newHistogram()
	// 1..1000 µs, once each.
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	tests := []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 500 * time.Microsecond},
		{0.9, 900 * time.Microsecond},
		{0.99, 990 * time.Microsecond},
		{0.999, 999 * time.Microsecond},
		{1, 1000 * time.Microsecond},
		{0, time.Microsecond},
	}
	for _, tt := range tests {
		got := h.quantile(tt.q)
		if rel := math.Abs(float64(got-tt.want)) / float64(tt.want); rel > 0.01 {
			t.Errorf("quantile(%v) = %s, want %s ±1%%", tt.q, got, tt.want)
		}
	}
	if got := newHistogram().quantile(0.99); got != 0 {
		t.Errorf("empty histogram quantile = %s, want 0", got)
	}
}

func TestHistogramMerge(t *testing.T) {
	a, b := newHistogram(), newHistogram()
	for i := 0; i < 99; i++ {
		a.record(time.Millisecond)
	}
	b.record(time.Second)
	a.merge(b)
	if a.total != 100 || a.max != int64(time.Second) {
		t.Fatalf("total %d max %d", a.total, a.max)
	}
	if got := a.quantile(0.99); got > 2*time.Millisecond {
		t.Errorf("p99 = %s, want about 1ms", got)
	}
	if got := a.quantile(0.999); got < 900*time.Millisecond {
		t.Errorf("p99.9 = %s, want about 1s", got)
	}
}

func TestHistogramRecordDoesNotAllocate(t *testing.T) {
	h := newHistogram()
	if n := testing.AllocsPerRun(1000, func() { h.record(123 * time.Microsecond) }); n != 0 {
		t.Errorf("record allocates %v times", n)
	}
}
