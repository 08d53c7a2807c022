package sdk

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// DefaultBuckets are the `le` bounds, in seconds, used for latency
// histograms: fine below a millisecond, where a gateway's own cost lives.
var DefaultBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
	0.25, 0.5, 1, 2.5, 5, 10, 30,
}

// Histogram is a Prometheus histogram with cumulative `le` buckets.
//
// VictoriaMetrics/metrics, which Weir uses for everything else, writes its
// histograms with `vmrange` buckets that Prometheus' histogram_quantile and
// Grafana cannot read; this type is written into the same /metrics output
// through metrics.RegisterMetricsWriter so we keep the library and still
// expose `le`. Update is lock-free and does not allocate.
type Histogram struct {
	name   string // metric family name, e.g. weir_request_duration_seconds
	labels string // `route="a"` (without braces), may be empty
	bounds []float64
	counts []atomic.Uint64 // len(bounds)+1, last is +Inf
	sumNs  atomic.Uint64   // sum in nanoseconds (seconds*1e9) to stay atomic
}

var (
	histMu   sync.Mutex
	hists    = map[string]*Histogram{}
	histOnce sync.Once
)

// GetOrCreateHistogram returns the histogram for a full metric name such as
// `weir_request_duration_seconds{route="users"}`, creating it with
// DefaultBuckets. Handles survive config reloads; obtain them when a
// snapshot is built, never per request.
func GetOrCreateHistogram(fullName string) *Histogram {
	histOnce.Do(func() { metrics.RegisterMetricsWriter(writeHistograms) })
	histMu.Lock()
	defer histMu.Unlock()
	if h, ok := hists[fullName]; ok {
		return h
	}
	name, labels := fullName, ""
	if i := strings.IndexByte(fullName, '{'); i >= 0 {
		name = fullName[:i]
		labels = strings.TrimSuffix(fullName[i+1:], "}")
	}
	h := &Histogram{name: name, labels: labels, bounds: DefaultBuckets,
		counts: make([]atomic.Uint64, len(DefaultBuckets)+1)}
	hists[fullName] = h
	return h
}

// Update records one observation in seconds.
func (h *Histogram) Update(v float64) {
	i := sort.SearchFloat64s(h.bounds, v) // first bound >= v
	h.counts[i].Add(1)
	if v > 0 {
		h.sumNs.Add(uint64(v * 1e9))
	}
}

// UpdateDuration records d.
func (h *Histogram) UpdateDuration(d time.Duration) { h.Update(d.Seconds()) }

// UpdateSince records the time elapsed since start.
func (h *Histogram) UpdateSince(start time.Time) { h.Update(time.Since(start).Seconds()) }

// Quantile estimates the q-quantile (0 < q < 1) of everything recorded,
// in seconds, the way Prometheus' histogram_quantile does: linear
// interpolation inside the bucket the rank falls in, and the largest
// finite bound when it falls in +Inf. ok is false when nothing was
// recorded. For the status page; it reads every bucket and is not for the
// request path.
func (h *Histogram) Quantile(q float64) (v float64, ok bool) {
	counts := make([]uint64, len(h.counts))
	var total uint64
	for i := range h.counts {
		counts[i] = h.counts[i].Load()
		total += counts[i]
	}
	if total == 0 {
		return 0, false
	}
	rank := q * float64(total)
	var cum uint64
	for i, n := range counts {
		if n == 0 || float64(cum+n) < rank {
			cum += n
			continue
		}
		if i == len(h.bounds) {
			return h.bounds[len(h.bounds)-1], true
		}
		lo := 0.0
		if i > 0 {
			lo = h.bounds[i-1]
		}
		return lo + (h.bounds[i]-lo)*(rank-float64(cum))/float64(n), true
	}
	return h.bounds[len(h.bounds)-1], true
}

func writeHistograms(w io.Writer) {
	histMu.Lock()
	list := make([]*Histogram, 0, len(hists))
	for _, h := range hists {
		list = append(list, h)
	}
	histMu.Unlock()
	sort.Slice(list, func(i, j int) bool {
		if list[i].name != list[j].name {
			return list[i].name < list[j].name
		}
		return list[i].labels < list[j].labels
	})
	lastName := ""
	for _, h := range list {
		if h.name != lastName {
			// Every family has # HELP and # TYPE (the admin API's /metrics
			// fills the help text in, as for the library's families).
			fmt.Fprintf(w, "# HELP %s\n# TYPE %s histogram\n", h.name, h.name)
			lastName = h.name
		}
		sep := ""
		if h.labels != "" {
			sep = ","
		}
		var cum uint64
		for i, b := range h.bounds {
			cum += h.counts[i].Load()
			fmt.Fprintf(w, "%s_bucket{%s%sle=\"%s\"} %d\n", h.name, h.labels, sep, formatBound(b), cum)
		}
		cum += h.counts[len(h.bounds)].Load()
		fmt.Fprintf(w, "%s_bucket{%s%sle=\"+Inf\"} %d\n", h.name, h.labels, sep, cum)
		lbl := ""
		if h.labels != "" {
			lbl = "{" + h.labels + "}"
		}
		fmt.Fprintf(w, "%s_sum%s %g\n", h.name, lbl, float64(h.sumNs.Load())/1e9)
		fmt.Fprintf(w, "%s_count%s %d\n", h.name, lbl, cum)
	}
}

func formatBound(b float64) string {
	if math.IsInf(b, 1) {
		return "+Inf"
	}
	return fmt.Sprintf("%g", b)
}
