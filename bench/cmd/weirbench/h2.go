package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
)

// The HTTP/2 rows (-h2): Weir and nginx (one worker, Weir GOMAXPROCS=1,
// on the proxy CPUs) take HTTP/2 from h2load (Debian nghttp2-client),
// over cleartext (h2c, prior knowledge) and over TLS (h2 through ALPN,
// both serving the same ECDSA P-256 certificate): a 64-byte answer from
// an HTTP/1.1 upstream, with 1 and 100 streams on one connection. Then
// gRPC unary calls (grpc-go's interop TestService, served by this
// process) from a grpc-go client in this process, through Weir's grpc://
// target and nginx's grpc_pass: closed loop (16 calls at once: the
// maximum rate), and open loop at half of nginx's maximum, where the row
// reports each proxy's p99 and its added p99 (its p99 minus the p99 of
// the same load sent straight to the upstream). Per row: requests/s, the
// contender's CPU time per request (what a shared machine disturbs least)
// and, for gRPC, the call's p50/p99 as the client saw them.

const h2NginxLocations = `
        location / {
            proxy_pass http://h1;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
        location /grpc.testing.TestService/ {
            grpc_pass grpc://g;
        }`

const h2NginxTemplate = nginxHead + `
    upstream h1 { server {{H1}}; keepalive 64; keepalive_requests 100000000; }
    upstream g { server {{GRPC}}; keepalive 64; }
    server {
        listen {{LISTEN}} http2 backlog=4096;
        http2_max_concurrent_streams 128;
        keepalive_requests 100000000;` + h2NginxLocations + `
    }
    server {
        listen {{LISTEN_TLS}} ssl http2 backlog=4096;
        ssl_certificate {{CERT}};
        ssl_certificate_key {{KEY}};
        ssl_protocols TLSv1.2 TLSv1.3;
        http2_max_concurrent_streams 128;
        keepalive_requests 100000000;` + h2NginxLocations + `
    }
}
`

const h2WeirTemplate = `
listen:
  - {address: "{{LISTEN}}", http2: true}
  - {address: "{{LISTEN_TLS}}", http2: true, tls: {certificates: [{cert: "{{CERT}}", key: "{{KEY}}"}], min_version: "1.2"}}
admin: {listen: "{{ADMIN}}"}
server: {max_concurrent_streams: 128}
services:
  - {name: h1, targets: [{url: "http://{{H1}}"}]}
  - {name: g, targets: [{url: "grpc://{{GRPC}}"}]}
routes:
  - {name: grpc, paths: ["/grpc.testing.TestService/"], service: g}
  - {name: all, paths: ["/"], service: h1}
`

type h2Row struct {
	Contender string  `json:"contender"`
	Row       string  `json:"row"`
	Round     int     `json:"round"`
	RPS       float64 `json:"requests_per_s"`
	CPUus     float64 `json:"cpu_us_per_request"`
	P50ms     float64 `json:"p50_ms,omitempty"`
	P99ms     float64 `json:"p99_ms,omitempty"`
	// AddedP99ms is the open-loop row's p99 minus the direct one's.
	AddedP99ms float64 `json:"added_p99_ms,omitempty"`
	// LateP99ms is the open-loop generator's own lateness, p99: how far
	// behind schedule it sent the calls (not counted in the latency).
	LateP99ms float64 `json:"generator_late_p99_ms,omitempty"`
}

type h2Echo struct {
	testgrpc.UnimplementedTestServiceServer
}

func (h2Echo) UnaryCall(_ context.Context, in *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	return &testgrpc.SimpleResponse{Payload: in.GetPayload()}, nil
}

// h2Backends serves the 64-byte HTTP/1.1 answer and the gRPC service on
// loopback ports.
func h2Backends() (h1, g string, stop func(), err error) {
	l1, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", nil, err
	}
	l2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		l1.Close()
		return "", "", nil, err
	}
	body := []byte(strings.Repeat("x", 64))
	hs := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "64")
		_, _ = w.Write(body)
	})}
	gs := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(gs, h2Echo{})
	go func() { _ = hs.Serve(l1) }()
	go func() { _ = gs.Serve(l2) }()
	return l1.Addr().String(), l2.Addr().String(), func() { _ = hs.Close(); gs.Stop() }, nil
}

// h2loadRow runs h2load against url (http: h2c, https: h2 over TLS): n
// requests on one connection with m streams; it returns requests/s and
// pid's CPU µs per request.
func h2loadRow(bin, url string, pid, n, m int) (rps, cpuUs float64, err error) {
	_ = exec.Command(bin, "-n", strconv.Itoa(min(n, 2000)), "-c", "1", "-m", strconv.Itoa(m), url).Run() // warm
	c0, cerr := treeCPU([]int{pid})
	out, err := exec.Command(bin, "-n", strconv.Itoa(n), "-c", "1", "-m", strconv.Itoa(m), url).CombinedOutput()
	c1, cerr2 := treeCPU([]int{pid})
	if err != nil {
		return 0, 0, fmt.Errorf("h2load: %v: %s", err, out)
	}
	ok := -1
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 4 && f[0] == "finished" && f[1] == "in":
			rps, _ = strconv.ParseFloat(f[3], 64)
		case len(f) >= 3 && f[0] == "status" && f[1] == "codes:":
			ok, _ = strconv.Atoi(f[2])
		}
	}
	if ok != n {
		return 0, 0, fmt.Errorf("h2load: %d of %d answers were 2xx:\n%s", ok, n, out)
	}
	if cerr == nil && cerr2 == nil {
		cpuUs = float64(c1-c0) / float64(clockTicks()) * 1e6 / float64(n)
	}
	return rps, cpuUs, nil
}

// grpcClient connects one grpc-go connection to addr and makes a first
// call (which checks the route); done closes it.
func grpcClient(addr string) (testgrpc.TestServiceClient, *testgrpc.SimpleRequest, func(), error) {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, nil, err
	}
	c := testgrpc.NewTestServiceClient(cc)
	req := &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte(strings.Repeat("x", 64))}}
	if _, err := c.UnaryCall(context.Background(), req); err != nil {
		cc.Close()
		return nil, nil, nil, fmt.Errorf("first call: %w", err)
	}
	return c, req, func() { cc.Close() }, nil
}

// grpcRow calls UnaryCall through addr from conc goroutines on one
// connection for d.
func grpcRow(addr string, pid, conc int, d time.Duration) (h2Row, error) {
	var row h2Row
	c, req, done, err := grpcClient(addr)
	if err != nil {
		return row, err
	}
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	var lat []time.Duration
	var failed atomic.Value
	var wg sync.WaitGroup
	cpu0, cpuErr := treeCPU([]int{pid})
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for ctx.Err() == nil {
				t0 := time.Now()
				if _, err := c.UnaryCall(ctx, req); err != nil {
					// grpc-go's own deadline timer may fire just before ctx's.
					if ctx.Err() == nil && status.Code(err) != codes.DeadlineExceeded {
						failed.Store(err)
					}
					break
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if err, _ := failed.Load().(error); err != nil {
		return row, fmt.Errorf("call: %w", err)
	}
	if len(lat) == 0 {
		return row, fmt.Errorf("no call finished in %s", d)
	}
	row.RPS = float64(len(lat)) / took.Seconds()
	if cpu1, err := treeCPU([]int{pid}); err == nil && cpuErr == nil {
		row.CPUus = float64(cpu1-cpu0) / float64(clockTicks()) * 1e6 / float64(len(lat))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	row.P50ms = float64(lat[len(lat)/2]) / 1e6
	row.P99ms = float64(lat[len(lat)*99/100]) / 1e6
	return row, nil
}

// The open-loop row: calls at a fixed rate, each started at its
// scheduled time whatever the others do (a slow answer does not hold
// back the next call), through each target in turn. On a shared 2-CPU
// machine the generator's own hiccups (its GC, its goroutines waiting
// for a CPU) are milliseconds, more than the gateway's share, and they
// fall on whichever target runs then. So:
//   - the generator (this process, which also serves the upstream) runs
//     on the load CPUs, away from the proxies' (pinSelf), as wrk and the
//     backend do in the HTTP/1.1 rows;
//   - the rate is half of nginx's closed-loop rate, but at most half of
//     what the generator and the upstream manage there alone (direct,
//     closed loop, pinned): past it the generator itself queues;
//   - it collects no garbage while a slice is measured (GC off under a
//     memory limit; a collection between slices, not counted);
//   - a call's latency runs from when it was sent, and its lateness
//     (sent - scheduled) is reported apart, as the row's "late p99": the
//     generator's own lag, which no target causes (each call has its own
//     goroutine and the proxies do not push back on the sender);
//   - the targets (direct, then the proxies) take turns in one-second
//     slices, the order rotating, so the machine's noise falls on all of
//     them alike; p50 and p99 are over all of a target's slices.
// added p99 is a proxy's p99 minus the direct one's, measured thus.

// olTarget is one target of the open loop and what it measured.
type olTarget struct {
	name string
	addr string
	pid  int // 0: no process's CPU to measure (direct: the upstream is here)
	c    testgrpc.TestServiceClient
	req  *testgrpc.SimpleRequest
	lat  []time.Duration // from sent to answered
	late []time.Duration // from scheduled to sent
	took time.Duration
	cpu  cpuTicks
}

// olSlice is how long one target's turn lasts.
const olSlice = time.Second

// grpcOpenLoops runs the open loop at rate, or half of what the direct
// target (ts[0]) manages closed-loop if less, for d per target and
// returns one row per target, in order, and the rate.
func grpcOpenLoops(ts []*olTarget, rate float64, d time.Duration, pinCPUs []int) ([]h2Row, float64, error) {
	if len(pinCPUs) > 0 {
		restore, err := pinSelf(pinCPUs)
		if err != nil {
			logf("open loop: the generator stays unpinned: %v", err)
		} else {
			defer restore()
		}
	}
	top, err := grpcRow(ts[0].addr, 0, 16, min(d/2, olSlice))
	if err != nil {
		return nil, 0, fmt.Errorf("%s closed loop: %w", ts[0].name, err)
	}
	rate = min(rate, top.RPS/2)
	if rate <= 0 {
		return nil, 0, fmt.Errorf("open loop at %v calls/s", rate)
	}
	for _, t := range ts {
		c, req, done, err := grpcClient(t.addr)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", t.name, err)
		}
		defer done()
		t.c, t.req = c, req
		// A warm-up at the same rate, not counted (connection windows,
		// goroutine and heap growth on both sides).
		if _, _, _, err := openLoop(c, req, rate, min(d/4, olSlice)); err != nil {
			return nil, 0, fmt.Errorf("%s: %w", t.name, err)
		}
	}
	slice := min(olSlice, d)
	gc := debug.SetGCPercent(-1)
	defer debug.SetGCPercent(gc)
	limit := debug.SetMemoryLimit(2 << 30)
	defer debug.SetMemoryLimit(limit)
	for k := range max(int(d/slice), 1) {
		for i := range ts {
			t := ts[(i+k)%len(ts)]
			runtime.GC()
			c0, cerr := treeCPU([]int{t.pid})
			lat, late, took, err := openLoop(t.c, t.req, rate, slice)
			if err != nil {
				return nil, 0, fmt.Errorf("%s: %w", t.name, err)
			}
			if c1, err := treeCPU([]int{t.pid}); t.pid > 0 && err == nil && cerr == nil {
				t.cpu += c1 - c0
			}
			t.lat, t.late, t.took = append(t.lat, lat...), append(t.late, late...), t.took+took
		}
	}
	rows := make([]h2Row, len(ts))
	for i, t := range ts {
		n := len(t.lat)
		r := &rows[i]
		r.Contender, r.RPS = t.name, float64(n)/t.took.Seconds()
		if t.pid > 0 {
			r.CPUus = float64(t.cpu) / float64(clockTicks()) * 1e6 / float64(n)
		}
		r.P50ms, r.P99ms = quantileMs(t.lat, 0.5), quantileMs(t.lat, 0.99)
		r.LateP99ms = quantileMs(t.late, 0.99)
		if i > 0 {
			r.AddedP99ms = r.P99ms - rows[0].P99ms
		}
	}
	return rows, rate, nil
}

// quantileMs is the q quantile of ds (sorted in place), in ms.
func quantileMs(ds []time.Duration, q float64) float64 {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return float64(ds[min(int(float64(len(ds))*q), len(ds)-1)]) / 1e6
}

// openLoop starts a call every 1/rate for d and returns each call's
// latency from when it was sent and its lateness (sent - scheduled), and
// how long the loop took.
func openLoop(c testgrpc.TestServiceClient, req *testgrpc.SimpleRequest, rate float64, d time.Duration) (lat, late []time.Duration, took time.Duration, err error) {
	interval := time.Duration(float64(time.Second) / rate)
	n := max(int(d/interval), 1)
	lat, late = make([]time.Duration, n), make([]time.Duration, n)
	ctx, cancel := context.WithTimeout(context.Background(), d+10*time.Second)
	defer cancel()
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if w := time.Until(at); w > 0 {
			time.Sleep(w)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent := time.Now()
			if _, err := c.UnaryCall(ctx, req); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				return
			}
			lat[i], late[i] = time.Since(sent), sent.Sub(at)
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, nil, 0, fmt.Errorf("call: %w", firstErr)
	}
	return lat, late, time.Since(start), nil
}

// pinSelf runs every thread of this process (and the threads it makes
// later, which inherit it) on cpus, with as many Ps (two Ps time-sliced
// on one CPU would add the kernel's slices to the latencies); restore
// undoes it.
func pinSelf(cpus []int) (restore func(), err error) {
	var set, old unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return nil, err
	}
	each := func(s *unix.CPUSet) error {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		for _, t := range tasks {
			if tid, err := strconv.Atoi(t.Name()); err == nil {
				if err := unix.SchedSetaffinity(tid, s); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := each(&set); err != nil {
		_ = each(&old)
		return nil, err
	}
	procs := runtime.GOMAXPROCS(len(cpus))
	return func() {
		runtime.GOMAXPROCS(procs)
		_ = each(&old)
	}, nil
}

// The gRPC rows' names.
const (
	grpcClosedRow = "gRPC unary, 16 calls at once"
	grpcOpenRow   = "gRPC unary, open loop 50%"
)

// runH2Bench runs the HTTP/2 rows and prints them.
func runH2Bench(o options, stdout io.Writer) int {
	h2load := lookTool("h2load")
	if h2load == "" {
		logf("the -h2 rows need h2load (apt-get install -y nghttp2-client)")
		return 1
	}
	h1, g, stop, err := h2Backends()
	if err != nil {
		logf("backends: %v", err)
		return 1
	}
	defer stop()
	certDir, err := os.MkdirTemp("", "weirbench-h2cert-")
	if err != nil {
		logf("%v", err)
		return 1
	}
	defer os.RemoveAll(certDir)
	_ = os.Chmod(certDir, 0o755) // nginx's worker may run as another user
	cert, key, err := writeCert(certDir, "ecdsa")
	if err != nil {
		logf("%v", err)
		return 1
	}
	targets, cleanup, err := startPair(o, "h2", h2WeirTemplate, h2NginxTemplate, map[string]string{
		"{{H1}}": h1, "{{GRPC}}": g, "{{CERT}}": cert, "{{KEY}}": key})
	if err != nil {
		logf("%v", err)
		return 1
	}
	defer cleanup()
	n := 50000
	if o.quick {
		n = 5000
	}
	var rows []h2Row
	rates := map[int]float64{}
	for round := 1; round <= o.rounds; round++ {
		closed := map[string]float64{}
		for i := range targets {
			t := targets[(i+round)%len(targets)] // who goes first alternates
			for _, p := range []struct{ name, url string }{{"h2c", "http://" + t.addr + "/"}, {"h2 TLS", "https://" + t.tlsAddr + "/"}} {
				for _, m := range []int{1, 100} {
					rps, cpu, err := h2loadRow(h2load, p.url, t.pid, n, m)
					if err != nil {
						logf("%s %s m=%d: %v", t.name, p.name, m, err)
						return 1
					}
					rows = append(rows, h2Row{Contender: t.name, Row: fmt.Sprintf("%s 64 B, %d stream(s)/conn", p.name, m), Round: round, RPS: rps, CPUus: cpu})
				}
			}
			row, err := grpcRow(t.addr, t.pid, 16, o.duration)
			if err != nil {
				logf("%s gRPC unary: %v", t.name, err)
				return 1
			}
			row.Contender, row.Row, row.Round = t.name, grpcClosedRow, round
			rows = append(rows, row)
			closed[t.name] = row.RPS
		}
		// Open loop at half of nginx's maximum (Weir's without nginx):
		// the upstream straight, then each proxy at the same rate.
		rate := closed["nginx"] / 2
		if rate == 0 {
			rate = closed["weir"] / 2
		}
		rates[round] = rate
		ts := []*olTarget{{name: "direct", addr: g}}
		for _, t := range targets {
			ts = append(ts, &olTarget{name: t.name, addr: t.addr, pid: t.pid})
		}
		var pin []int
		if !o.noPin && o.proxyCPUs != o.loadCPUs {
			pin, _ = parseCPUList(o.loadCPUs)
		}
		open, rate, err := grpcOpenLoops(ts, rate, o.duration, pin)
		rates[round] = rate
		if err != nil {
			logf("gRPC open loop: %v", err)
			return 1
		}
		for _, r := range open {
			r.Row, r.Round = grpcOpenRow, round
			rows = append(rows, r)
		}
	}
	fmt.Fprintf(stdout, "HTTP/2: h2load -c 1 -n %d over h2c and h2 (TLS, ECDSA P-256); gRPC unary for %s (%s)\n", n, o.duration, machineLine())
	for round := 1; round <= o.rounds; round++ {
		fmt.Fprintf(stdout, "round %d: open loop at %.0f calls/s (half of nginx's closed-loop rate, at most half of direct's, pinned), targets in turn by %s slices; latency from send; added p99 = p99 - direct p99; late p99: the generator's own lag\n", round, rates[round], olSlice)
	}
	fmt.Fprintf(stdout, "%-8s %-32s %5s %12s %14s %8s %8s %10s %9s\n", "proxy", "row", "round", "requests/s", "CPU µs/req", "p50 ms", "p99 ms", "added p99", "late p99")
	for _, r := range rows {
		fmt.Fprintf(stdout, "%-8s %-32s %5d %12.0f %14.1f %8.2f %8.2f %10.2f %9.2f\n", r.Contender, r.Row, r.Round, r.RPS, r.CPUus, r.P50ms, r.P99ms, r.AddedP99ms, r.LateP99ms)
	}
	return 0
}
