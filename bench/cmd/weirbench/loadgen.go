package main

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// loadSpec says what one generator run sends. It travels from the harness
// to the `weirbench load` child process as JSON.
type loadSpec struct {
	// Targets are host:port addresses; connection i goes to Targets[i%n],
	// which spreads load evenly over several gateway processes.
	Targets []string          `json:"targets"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers,omitempty"`
	// Body, when set, is POSTed with every request (Content-Length).
	Body []byte `json:"body,omitempty"`
	// Rate is requests per second for an open-loop run; 0 means closed
	// loop (every connection sends its next request as soon as the last
	// one is answered, as wrk does).
	Rate     float64       `json:"rate"`
	Duration time.Duration `json:"duration"`
	Conns    int           `json:"conns"`
	// Grace is how long after Duration requests already due may still
	// complete; what is not sent by then counts as unsent.
	Grace time.Duration `json:"grace"`
	// Spin: an open-loop run on the backend's loop polls instead of
	// sleeping (runOpenSpinning). Only on CPUs apart from the proxy's.
	Spin bool `json:"spin,omitempty"`
}

// loadResult is what a generator run measured. Latencies are in
// microseconds. For an open-loop run they are measured from the time the
// request was due by the schedule, not from when it was written, so a
// stall of the contender (or of the generator) shows in the tail instead
// of silently delaying the requests behind it: that is the coordinated
// omission correction of wrk2 and HdrHistogram.
type loadResult struct {
	Mode        string           `json:"mode"` // open | closed
	Rate        float64          `json:"rate,omitempty"`
	Seconds     float64          `json:"seconds"`
	Scheduled   int64            `json:"scheduled,omitempty"`
	Completed   int64            `json:"completed"`
	OK          int64            `json:"ok"`
	Non2xx      int64            `json:"non_2xx"`
	Errors      int64            `json:"errors"`
	Unsent      int64            `json:"unsent"`
	Status      map[string]int64 `json:"status,omitempty"`
	FirstError  string           `json:"first_error,omitempty"`
	RPS         float64          `json:"rps"` // 2xx answers per second
	P50us       float64          `json:"p50_us"`
	P90us       float64          `json:"p90_us"`
	P99us       float64          `json:"p99_us"`
	P999us      float64          `json:"p999_us"`
	MaxUs       float64          `json:"max_us"`
	SendLagP50  float64          `json:"send_lag_p50_us,omitempty"`
	SendLagP99  float64          `json:"send_lag_p99_us,omitempty"`
	SendLagP999 float64          `json:"send_lag_p999_us,omitempty"`
	// LoopBusy: on the backend's polling loop, the fraction of the run it
	// spent handling requests and answers rather than polling for them.
	LoopBusy float64 `json:"loop_busy,omitempty"`
	// LoopStalls counts the times that loop was off its CPU for more than
	// 0.5 ms (another process or the hypervisor took it); the longest in
	// LoopStallMaxUs. Requests due then wait, and the tail shows it.
	LoopStalls     int64   `json:"loop_stalls,omitempty"`
	LoopStallMaxUs float64 `json:"loop_stall_max_us,omitempty"`
}

// buildRequest serializes the request once (a GET, or a POST of body when
// there is one); every send writes the same bytes.
func buildRequest(addr, path string, headers map[string]string, body []byte) []byte {
	var b strings.Builder
	method := "GET"
	if body != nil {
		method = "POST"
	}
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: weirbench\r\n", method, path, addr)
	if body != nil {
		fmt.Fprintf(&b, "Content-Type: text/plain\r\nContent-Length: %d\r\n", len(body))
	}
	keys := make([]string, 0, len(headers))
	for k := range headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\r\n", k, headers[k])
	}
	b.WriteString("\r\n")
	b.Write(body)
	return []byte(b.String())
}
