package main

import (
	"math/bits"
	"time"
)

// histogram records latencies in nanoseconds in log-linear buckets (the
// scheme of HdrHistogram): values below 2^subBits are exact, and every
// power of two above is split into 2^subBits buckets, so a percentile is
// within 1/2^subBits (0.8 %) of the true value whatever its magnitude.
// Recording is an index computation and an increment, cheap enough for the
// load generator's hot loop. A histogram is not safe for concurrent use:
// each worker keeps its own and they are merged at the end.
type histogram struct {
	counts []uint64
	total  uint64
	max    int64
}

const (
	subBits    = 7
	subBuckets = 1 << subBits
	// maxExp bounds the recordable range to 2^(maxExp+subBits) ns, about
	// 75 minutes; larger values are clamped into the last bucket.
	maxExp   = 35
	nBuckets = (maxExp + 2) * subBuckets
)

func newHistogram() *histogram {
	return &histogram{counts: make([]uint64, nBuckets)}
}

// bucketOf maps a non-negative value to its bucket index.
func bucketOf(v int64) int {
	if v < subBuckets {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	e := bits.Len64(uint64(v)) - subBits - 1 // v>>e is in [128, 256)
	if e > maxExp {
		return nBuckets - 1
	}
	return (e+1)*subBuckets + int(v>>uint(e)) - subBuckets
}

// valueOf is the middle of bucket i, the value a percentile reports.
func valueOf(i int) int64 {
	if i < subBuckets {
		return int64(i)
	}
	e := i/subBuckets - 1
	m := int64(i%subBuckets + subBuckets)
	return m<<uint(e) + (int64(1)<<uint(e))/2
}

func (h *histogram) record(v time.Duration) {
	n := int64(v)
	h.counts[bucketOf(n)]++
	h.total++
	if n > h.max {
		h.max = n
	}
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	if o.max > h.max {
		h.max = o.max
	}
}

// quantile returns the value below which a fraction q (0..1) of the
// recorded values fall; 0 when nothing was recorded.
func (h *histogram) quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	if q >= 1 {
		return time.Duration(h.max)
	}
	// rank is 1-based: the value at rank ceil(q*total) is the q-quantile.
	rank := uint64(q*float64(h.total) + 0.999999)
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := valueOf(i)
			if v > h.max {
				v = h.max
			}
			return time.Duration(v)
		}
	}
	return time.Duration(h.max)
}
