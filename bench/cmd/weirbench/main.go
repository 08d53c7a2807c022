// Command weirbench measures Weir side by side with nginx, HAProxy and no
// proxy at all, on loopback, the way bench/README.md describes:
// maximum throughput with wrk (closed loop), latency at a constant 25, 50
// and 75 % of nginx's capacity (open loop, so that coordinated omission
// does not flatter the tail), gateway CPU per request from /proc/PID/stat,
// contenders alternating A B A B over rounds, medians reported.
//
//	weirbench [-quick] [-weir bin/weir] [-only weir,nginx] [-out bench/results]
//
// It prints a table, writes bench/results/latest.json and latest.svg, and
// says what it skipped and why. `scripts/bench.sh` (make bench) installs
// the tools and builds the binaries first; see bench/README.md.
//
// The same binary is its own backend and load generator: run with
// WEIRBENCH_CHILD=backend it serves the backend every contender forwards
// to, and runs on the same event loop each loadSpec it reads as a JSON
// line on stdin, writing the result as a line on stdout (backend.go). The
// harness starts it that way so that taskset can pin it to the load CPUs,
// away from the proxy under test.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// options are the command line, after defaults.
type options struct {
	weir       string
	scenarios  string
	out        string
	quick      bool
	rounds     int
	duration   time.Duration
	warmup     time.Duration
	conns      int
	loads      []int
	loadsLarge []int
	bodies     []string
	only       []string
	budget     time.Duration
	proxyCPUs  string
	loadCPUs   string
	closed     string
	noPin      bool
	noRT       bool
	pprof      bool
	keep       bool
	tls        bool
	shape      bool
	many       int
	ws         bool // the WebSocket rows (ws.go)
	h2         bool // the HTTP/2 and gRPC rows (h2.go)
	wsConns    int
	// custom is set when a flag changed what is measured, so the report
	// does not call a partial run "full".
	custom bool
}

func main() {
	if os.Getenv("WEIRBENCH_CHILD") == "backend" {
		os.Exit(backendChildMain())
	}
	if os.Getenv("WEIRBENCH_CHILD") == "tlsclient" {
		os.Exit(tlsClientChildMain())
	}
	opts, err := parseOptions(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "weirbench:", err)
		os.Exit(2)
	}
	if opts.tls {
		os.Exit(runTLSBench(opts, os.Stdout))
	}
	if opts.shape {
		os.Exit(runShapeBench(opts, os.Stdout))
	}
	if opts.ws {
		os.Exit(runWSBench(opts, os.Stdout))
	}
	if opts.h2 {
		os.Exit(runH2Bench(opts, os.Stdout))
	}
	os.Exit(runBench(opts, os.Stdout))
}

func parseOptions(args []string) (options, error) {
	fs := flag.NewFlagSet("weirbench", flag.ContinueOnError)
	var o options
	var loads, loadsLarge, bodies, only string
	fs.StringVar(&o.weir, "weir", "bin/weir", "the weir binary (gateway and echo backend)")
	fs.StringVar(&o.scenarios, "scenarios", "bench/scenarios", "directory of Weir scenario files (*.yaml)")
	fs.StringVar(&o.out, "out", "bench/results", "directory for latest.json and latest.svg")
	fs.BoolVar(&o.quick, "quick", false, "1 round of short runs at 50 % load only (under 2 minutes)")
	fs.IntVar(&o.rounds, "rounds", 0, "rounds of A B A B alternation (default 3; quick 1)")
	fs.DurationVar(&o.duration, "duration", 0, "length of each measured run (default 4s; quick 2s)")
	fs.DurationVar(&o.warmup, "warmup", -1, "closed-loop warm-up per contender before measuring (default 1s; 0 = none)")
	fs.IntVar(&o.conns, "conns", 64, "connections the load generators keep open")
	fs.StringVar(&loads, "loads", "", "constant-rate loads, percent of nginx's capacity, for 64B (default 25,50,75; quick 50)")
	fs.StringVar(&loadsLarge, "loads-1k", "50", "constant-rate loads for the 1KiB and POST1KiB bodies")
	fs.StringVar(&bodies, "bodies", "64B,1KiB,POST1KiB", "bodies: 64B and 1KiB answers, POST1KiB a 1 KiB request body (64 B answer)")
	fs.StringVar(&only, "only", "", "comma-separated contenders to run (direct, nginx, haproxy, scenario names); default all")
	fs.DurationVar(&o.budget, "budget", 0, "most time for all measured runs; durations shrink to fit (default 7m30s; quick 75s)")
	fs.StringVar(&o.proxyCPUs, "proxy-cpus", "", "CPUs for the proxies (taskset -c list; default 0)")
	fs.StringVar(&o.loadCPUs, "load-cpus", "", "CPUs for load generator, backend and Redis (default 1)")
	fs.StringVar(&o.closed, "closed-loop", "auto", "max-RPS generator: wrk, builtin, or auto (wrk when installed)")
	fs.BoolVar(&o.noPin, "no-pin", false, "do not pin processes to CPUs")
	fs.BoolVar(&o.noRT, "no-rt", false, "run contenders and Redis at normal priority, not SCHED_FIFO")
	fs.BoolVar(&o.keep, "keep", false, "keep the work dir (configs and process logs) after the run")
	fs.BoolVar(&o.pprof, "pprof", false, "save a CPU profile of each Weir scenario during its first max-RPS run (needs admin pprof: true) under OUT/pprof/")
	fs.BoolVar(&o.shape, "shape", false, "run the users'-shape rows instead (10 KiB answers, 1 KiB POSTs, nginx static backends, c32/c64/c10000, FIFO/normal, 1 and 2 processes; Weir vs nginx): make bench-shape")
	fs.IntVar(&o.many, "many", 10000, "client connections in the shape bench's many-connections row")
	fs.BoolVar(&o.tls, "tls", false, "run the TLS rows instead (HTTPS keep-alive, handshakes/s; Weir vs nginx): make bench-tls")
	fs.BoolVar(&o.ws, "ws", false, "run the WebSocket rows instead (messages/s and RSS per idle WebSocket; Weir vs nginx): make bench-ws")
	fs.BoolVar(&o.h2, "h2", false, "run the HTTP/2 rows instead (h2load over h2c and h2/TLS, 64 B, 1 and 100 streams; gRPC unary closed loop and open loop at 50 %; Weir vs nginx): make bench-h2")
	fs.IntVar(&o.wsConns, "ws-conns", 1000, "WebSockets each contender relays in the -ws rows")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "rounds", "duration", "warmup", "loads", "loads-1k", "bodies", "only", "budget", "conns":
			o.custom = true
		}
	})
	if o.rounds == 0 {
		o.rounds = 3
		if o.quick {
			o.rounds = 1
		}
	}
	if o.rounds < 1 {
		return o, fmt.Errorf("-rounds must be >= 1")
	}
	if o.duration == 0 {
		o.duration = 4 * time.Second
		if o.quick {
			o.duration = 2 * time.Second
		}
	}
	if o.duration < 500*time.Millisecond {
		return o, fmt.Errorf("-duration must be at least 500ms")
	}
	if o.warmup < 0 {
		o.warmup = time.Second
	}
	if o.budget == 0 {
		o.budget = 450 * time.Second
		if o.quick {
			o.budget = 75 * time.Second
		}
	}
	if o.conns < 1 {
		return o, fmt.Errorf("-conns must be >= 1")
	}
	if loads == "" {
		loads = "25,50,75"
		if o.quick {
			loads = "50"
		}
	}
	var err error
	if o.loads, err = parsePercents("-loads", loads); err != nil {
		return o, err
	}
	if o.loadsLarge, err = parsePercents("-loads-1k", loadsLarge); err != nil {
		return o, err
	}
	o.bodies = splitList(bodies)
	if len(o.bodies) == 0 {
		return o, fmt.Errorf("-bodies must name at least one of %s", bodyKindNames())
	}
	for _, b := range o.bodies {
		if _, ok := bodyKindOf(b); !ok {
			return o, fmt.Errorf("-bodies: %q is not a body; use %s", b, bodyKindNames())
		}
	}
	o.only = splitList(only)
	switch o.closed {
	case "auto", "wrk", "builtin":
	default:
		return o, fmt.Errorf("-closed-loop must be wrk, builtin or auto, got %q", o.closed)
	}
	if o.proxyCPUs == "" || o.loadCPUs == "" {
		p, l := defaultCPUs(allowedCPUs())
		if o.proxyCPUs == "" {
			o.proxyCPUs = p
		}
		if o.loadCPUs == "" {
			o.loadCPUs = l
		}
	}
	return o, nil
}

// defaultCPUs puts the proxy on the first CPU this process may use and
// everything else on the next ones (bench/README.md: proxy on one CPU, load
// generator and backend on the other): up to three, one each for the
// generator (or wrk), the backend and Redis, so that on a machine with
// four or more CPUs the load side no longer queues behind itself.
func defaultCPUs(allowed []int) (proxy, load string) {
	switch len(allowed) {
	case 0:
		return "0", "0"
	case 1:
		return strconv.Itoa(allowed[0]), strconv.Itoa(allowed[0])
	}
	rest := make([]string, 0, 3)
	for _, c := range allowed[1:min(len(allowed), 4)] {
		rest = append(rest, strconv.Itoa(c))
	}
	return strconv.Itoa(allowed[0]), strings.Join(rest, ",")
}

// allowedCPUs lists the CPUs in this process's affinity mask, which in a
// container need not start at 0.
func allowedCPUs() []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		out := make([]int, runtime.NumCPU())
		for i := range out {
			out[i] = i
		}
		return out
	}
	var out []int
	for i := 0; i < 1024 && len(out) < set.Count(); i++ {
		if set.IsSet(i) {
			out = append(out, i)
		}
	}
	return out
}

func parsePercents(flagName, s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 200 {
			return nil, fmt.Errorf("%s: %q is not a percentage between 1 and 200", flagName, f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s must list at least one percentage", flagName)
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
