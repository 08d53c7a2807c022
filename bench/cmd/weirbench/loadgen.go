package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// loadSpec says what one generator run sends. It travels from the harness
// to the `weirbench load` child process as JSON.
type loadSpec struct {
	// Targets are host:port addresses; connection i goes to Targets[i%n],
	// which spreads load evenly over several gateway processes.
	Targets []string          `json:"targets"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers,omitempty"`
	// Rate is requests per second for an open-loop run; 0 means closed
	// loop (every connection sends its next request as soon as the last
	// one is answered, as wrk does).
	Rate     float64       `json:"rate"`
	Duration time.Duration `json:"duration"`
	Conns    int           `json:"conns"`
	// Grace is how long after Duration requests already due may still
	// complete; what is not sent by then counts as unsent.
	Grace time.Duration `json:"grace"`
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
	SendLagP99  float64          `json:"send_lag_p99_us,omitempty"`
	SendLagP999 float64          `json:"send_lag_p999_us,omitempty"`
}

// worker owns one keep-alive connection and its buffers.
type worker struct {
	addr   string
	req    []byte
	conn   net.Conn
	br     *bufio.Reader
	resp   fasthttp.Response
	lat    *histogram
	lag    *histogram
	status map[int]int64
	ok     int64
	non2xx int64
	errs   int64
	unsent int64
	done   int64
	last   time.Time // when the last answer arrived
	first  error
}

// buildRequest serializes the GET request once; every send writes the same
// bytes.
func buildRequest(addr, path string, headers map[string]string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: weirbench\r\n", path, addr)
	keys := make([]string, 0, len(headers))
	for k := range headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\r\n", k, headers[k])
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

func (w *worker) fail(err error) {
	w.errs++
	if w.first == nil {
		w.first = err
	}
	if w.conn != nil {
		_ = w.conn.Close()
		w.conn = nil
	}
}

// roundTrip sends the request on the worker's connection (dialing when it
// has none) and reads the whole response.
func (w *worker) roundTrip(deadline time.Time) error {
	if w.conn == nil {
		c, err := net.DialTimeout("tcp", w.addr, time.Second)
		if err != nil {
			return fmt.Errorf("dial %s: %w", w.addr, err)
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		// One deadline for the whole run: requests that are still hanging
		// when the run's grace period ends fail instead of blocking.
		_ = c.SetDeadline(deadline)
		w.conn = c
		if w.br == nil {
			w.br = bufio.NewReaderSize(c, 16<<10)
		} else {
			w.br.Reset(c)
		}
	}
	if _, err := w.conn.Write(w.req); err != nil {
		return fmt.Errorf("write to %s: %w", w.addr, err)
	}
	if err := w.resp.Read(w.br); err != nil {
		return fmt.Errorf("read from %s: %w", w.addr, err)
	}
	code := w.resp.StatusCode()
	w.status[code]++
	if code >= 200 && code < 300 {
		w.ok++
	} else {
		w.non2xx++
	}
	w.done++
	if w.resp.ConnectionClose() {
		_ = w.conn.Close()
		w.conn = nil
	}
	return nil
}

// runLoad drives one run and returns its measurements.
func runLoad(spec loadSpec) (loadResult, error) {
	if len(spec.Targets) == 0 {
		return loadResult{}, errors.New("load: no targets")
	}
	if spec.Conns < 1 {
		return loadResult{}, errors.New("load: conns must be >= 1")
	}
	if spec.Duration <= 0 {
		return loadResult{}, errors.New("load: duration must be > 0")
	}
	if spec.Rate < 0 {
		return loadResult{}, errors.New("load: rate must be >= 0")
	}
	if spec.Grace <= 0 {
		spec.Grace = time.Second
	}
	workers := make([]*worker, spec.Conns)
	for i := range workers {
		addr := spec.Targets[i%len(spec.Targets)]
		workers[i] = &worker{
			addr:   addr,
			req:    buildRequest(addr, spec.Path, spec.Headers),
			lat:    newHistogram(),
			lag:    newHistogram(),
			status: map[int]int64{},
		}
	}
	var res loadResult
	var elapsed time.Duration
	if spec.Rate > 0 {
		res.Mode = "open"
		res.Rate = spec.Rate
		res.Scheduled, elapsed = openLoop(spec, workers)
	} else {
		res.Mode = "closed"
		elapsed = closedLoop(spec, workers)
	}
	lat, lag := newHistogram(), newHistogram()
	status := map[int]int64{}
	for _, w := range workers {
		if w.conn != nil {
			_ = w.conn.Close()
		}
		lat.merge(w.lat)
		lag.merge(w.lag)
		res.OK += w.ok
		res.Non2xx += w.non2xx
		res.Errors += w.errs
		res.Unsent += w.unsent
		res.Completed += w.done
		for k, v := range w.status {
			status[k] += v
		}
		if res.FirstError == "" && w.first != nil {
			res.FirstError = w.first.Error()
		}
	}
	if len(status) > 0 {
		res.Status = map[string]int64{}
		for k, v := range status {
			res.Status[fmt.Sprint(k)] = v
		}
	}
	res.Seconds = elapsed.Seconds()
	if res.Seconds > 0 {
		res.RPS = float64(res.OK) / res.Seconds
	}
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	res.P50us = us(lat.quantile(0.50))
	res.P90us = us(lat.quantile(0.90))
	res.P99us = us(lat.quantile(0.99))
	res.P999us = us(lat.quantile(0.999))
	res.MaxUs = us(lat.quantile(1))
	if res.Mode == "open" {
		res.SendLagP99 = us(lag.quantile(0.99))
		res.SendLagP999 = us(lag.quantile(0.999))
	}
	return res, nil
}

// openLoop sends requests on a fixed schedule: request n is due at
// start + n/rate whatever happened to the ones before it. A dispatcher
// hands due times to the workers through a channel large enough to hold
// the whole run, so it never waits for them; when every connection is
// busy the due times queue up and the wait is part of the latency. It
// returns how many requests were scheduled and the run's length (the
// schedule's span, or longer when answers came late).
func openLoop(spec loadSpec, workers []*worker) (int64, time.Duration) {
	total := int64(spec.Rate * spec.Duration.Seconds())
	if total < 1 {
		total = 1
	}
	capacity := total
	if capacity > 1<<22 {
		capacity = 1 << 22
	}
	due := make(chan int64, capacity)
	interval := float64(time.Second) / spec.Rate
	start := time.Now()
	stopAt := start.Add(spec.Duration + spec.Grace)

	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func(w *worker) {
			defer wg.Done()
			for at := range due {
				intended := start.Add(time.Duration(at))
				now := time.Now()
				if now.After(stopAt) {
					// Never sent: count it, and record the least it would
					// have waited, so the tail does not forget it.
					w.unsent++
					w.lat.record(stopAt.Sub(intended))
					continue
				}
				if lag := now.Sub(intended); lag > 0 {
					w.lag.record(lag)
				} else {
					w.lag.record(0)
				}
				if err := w.roundTrip(stopAt); err != nil {
					w.fail(err)
					continue
				}
				w.last = time.Now()
				w.lat.record(w.last.Sub(intended))
			}
		}(w)
	}

	// The dispatcher sleeps until the next request is due (see pacer) and
	// releases every request that has come due; the due time, not the
	// wake-up time, is what latency is measured from.
	pace, err := newPacer()
	if err != nil {
		pace = nil // time.Sleep: coarser, still correct
	}
	var n int64
	for n < total {
		now := time.Since(start)
		upTo := int64(float64(now)/interval) + 1
		if upTo > total {
			upTo = total
		}
		for ; n < upTo; n++ {
			due <- int64(float64(n) * interval)
		}
		if n < total {
			next := time.Duration(float64(n)*interval) - time.Since(start)
			if next > 0 {
				if pace == nil || pace.sleep(next) != nil {
					time.Sleep(next)
				}
			}
		}
	}
	if pace != nil {
		pace.close()
	}
	close(due)
	wg.Wait()
	// The run lasts as long as its schedule, or until the last answer when
	// answers came late; the grace period must not dilute the rate of a
	// run that kept up.
	elapsed := time.Duration(float64(total) * interval)
	for _, w := range workers {
		if d := w.last.Sub(start); d > elapsed {
			elapsed = d
		}
	}
	return total, elapsed
}

// closedLoop keeps every connection busy for the duration: the measure of
// maximum throughput, used when wrk is not installed.
func closedLoop(spec loadSpec, workers []*worker) time.Duration {
	start := time.Now()
	end := start.Add(spec.Duration)
	hardStop := end.Add(spec.Grace)
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func(w *worker) {
			defer wg.Done()
			for {
				t := time.Now()
				if !t.Before(end) {
					return
				}
				if err := w.roundTrip(hardStop); err != nil {
					w.fail(err)
					// Do not spin on a refused connection.
					time.Sleep(10 * time.Millisecond)
					continue
				}
				w.lat.record(time.Since(t))
			}
		}(w)
	}
	wg.Wait()
	return time.Since(start)
}
