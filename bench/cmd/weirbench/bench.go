package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// cell is one contender serving one body size: a row of the report.
type cell struct {
	c    *contender
	body string
	path string
	// post is the request body POSTed with every request; nil: a GET.
	post  []byte
	loads []int
	// Measurements, one entry per round.
	max []closedRun
	lat map[int][]openRun
	acc []accuracyRun
}

func (c *cell) label() string { return c.c.name + " " + c.body }

type closedRun struct {
	RPS      float64 `json:"rps"`
	Requests int64   `json:"requests"`
	Bad      int64   `json:"bad"` // non-2xx answers and socket errors
	P50us    float64 `json:"p50_us"`
	P99us    float64 `json:"p99_us"`
	CPUus    float64 `json:"cpu_us_per_req"`
}

type openRun struct {
	Rate    float64    `json:"rate"`
	Result  loadResult `json:"result"`
	CPUus   float64    `json:"cpu_us_per_req"`
	RedisUs float64    `json:"redis_cpu_us_per_req,omitempty"`
	// LoadBusy: the share of the run the backend's loop (generator and
	// backend) spent working rather than polling (wall clock: what Redis
	// took from it mid-iteration counts).
	// ProxyBusy: the busy fraction of the busiest proxy CPU; 0 when
	// unpinned or unknown. A load side near 1 means the latency measured
	// the rig's own queue as much as the contender.
	LoadBusy  float64 `json:"load_cpu_busy,omitempty"`
	ProxyBusy float64 `json:"proxy_cpu_busy,omitempty"`
}

type accuracyRun struct {
	Seconds  float64 `json:"seconds"`
	Allowed  int64   `json:"allowed"`
	Rejected int64   `json:"rejected_429"`
	Other    int64   `json:"other"`
	Expected float64 `json:"expected"`
	Ratio    float64 `json:"ratio"`
}

// step is one planned run.
type step struct {
	phase string // warmup | max | latency | accuracy
	round int
	cell  *cell
	load  int
}

// bench is one harness run.
type bench struct {
	r       *rig
	self    string
	spin    bool // the generator may poll (loadSpec.Spin)
	clk     int64
	closed  string // wrk | builtin
	dur     time.Duration
	warm    time.Duration
	cells   []*cell
	basis   map[string]rateBasis
	prog    *progress
	notes   []string
	started time.Time
	// The pinned CPUs, to tell how busy each side was during a run.
	loadCPUs, proxyCPUs []int
	// postScript is wrk's Lua script for the POST rows (writePostScript).
	postScript string
}

type rateBasis struct {
	Contender string  `json:"contender"`
	RPS       float64 `json:"rps"`
}

// perRunOverhead is what a run costs besides its duration (starting the
// generator, dialing, reading /proc); the time estimate counts it.
const perRunOverhead = 400 * time.Millisecond

// newBench starts a bench run: the weir binary made absolute in o, and
// the harness's own executable found (it runs the backend). false: a
// reason was logged, exit 2.
func newBench(o *options) (*bench, bool) {
	b := &bench{started: time.Now(), clk: clockTicks(), basis: map[string]rateBasis{}}
	weir, err := filepath.Abs(o.weir)
	if err == nil {
		_, err = os.Stat(weir)
	}
	if err != nil {
		logf("no weir binary at %s (build it: go build -o bin/weir ./cmd/weir): %v", o.weir, err)
		return nil, false
	}
	o.weir = weir
	if b.self, err = os.Executable(); err != nil {
		logf("find own executable: %v", err)
		return nil, false
	}
	return b, true
}

func runBench(o options, stdout io.Writer) int {
	b, ok := newBench(&o)
	if !ok {
		return 2
	}
	scenarios, err := loadScenarios(o.scenarios)
	if err != nil {
		logf("%v", err)
		return 2
	}
	known := map[string]bool{"direct": true, "nginx": true, "haproxy": true}
	for _, s := range scenarios {
		known[s.Name] = true
	}
	for _, n := range o.only {
		if !known[n] {
			logf("-only: no contender %q (have direct, nginx, haproxy and the scenarios in %s)", n, o.scenarios)
			return 2
		}
	}
	wanted := func(n string) bool { return len(o.only) == 0 || contains(o.only, n) }

	dir, err := os.MkdirTemp("", "weirbench-")
	if err != nil {
		logf("make work dir: %v", err)
		return 2
	}
	r := &rig{opts: o, dir: dir, tools: map[string]string{}}
	b.r = r
	for _, t := range []string{"nginx", "haproxy", "wrk", "redis-server", "taskset", "chrt"} {
		r.tools[t] = lookTool(t)
	}
	keepLogs := o.keep
	defer func() {
		r.stopAll()
		if keepLogs {
			logf("process logs kept in %s", dir)
		} else {
			os.RemoveAll(dir)
		}
	}()
	// An interrupted run stops what it started before exiting.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; ok {
			if b.prog != nil {
				b.prog.finish()
			}
			logf("interrupted: stopping contenders")
			r.stopAll()
			os.RemoveAll(dir)
			os.Exit(130)
		}
	}()

	switch {
	case o.noPin:
		b.notes = append(b.notes, "processes are not pinned (-no-pin)")
	case r.tools["taskset"] == "":
		r.skip("pinning", "taskset not found (apt-get install -y util-linux): processes run unpinned")
	default:
		r.pin.taskset = r.tools["taskset"]
		var errL, errP error
		b.loadCPUs, errL = parseCPUList(o.loadCPUs)
		b.proxyCPUs, errP = parseCPUList(o.proxyCPUs)
		if err := errors.Join(errL, errP); err != nil {
			logf("%v", err)
			return 2
		}
	}
	if o.proxyCPUs == o.loadCPUs {
		b.notes = append(b.notes, "one CPU only: proxy, backend and load generator share it")
	}
	// Contenders and Redis run SCHED_FIFO: on a shared machine other
	// processes otherwise take their CPU for 10-25 ms at a time (the
	// sandbox agent's threads, kdamond), which is most of every proxy's
	// p99 (measured: 4-6 ms for nginx, HAProxy and Weir alike; 0.13-0.2 ms
	// at FIFO). The same for every contender; the polling generator stays
	// a normal process, or it would starve Redis on its CPU.
	switch {
	case o.noRT:
		b.notes = append(b.notes, "contenders run at normal priority (-no-rt): other processes on the machine can take their CPU for milliseconds, which shows in the tails")
	case r.pin.taskset == "":
		// Unpinned (noted above): a real-time contender could take the
		// CPU the generator and backend run on.
	case r.tools["chrt"] == "":
		r.skip("real-time priority", "chrt not found (apt-get install -y util-linux): contenders run at normal priority, and other processes' time slices show in the tails")
	default:
		if out, err := exec.Command(r.tools["chrt"], "-f", "1", "true").CombinedOutput(); err != nil {
			r.skip("real-time priority", "chrt -f 1 refused (%s): contenders run at normal priority, and other processes' time slices show in the tails", strings.TrimSpace(string(out)))
		} else {
			r.pin.chrt = r.tools["chrt"]
			b.notes = append(b.notes, "contenders and Redis run SCHED_FIFO priority 1 (chrt -f 1), so that other processes cannot take their CPU mid-request; -no-rt turns it off")
		}
	}
	// The generator polls instead of sleeping only on CPUs of its own:
	// next to a proxy it would take that proxy's CPU.
	b.spin = len(b.loadCPUs) > 0 && !overlap(b.loadCPUs, b.proxyCPUs)
	if !b.spin {
		b.notes = append(b.notes, "the load generator sleeps between events (its CPUs are not pinned apart from the proxy's), so latency includes its wake-ups")
	}
	switch {
	case o.closed == "builtin":
		b.closed = "builtin"
	case r.tools["wrk"] != "":
		b.closed = "wrk"
	case o.closed == "wrk":
		logf("-closed-loop wrk: wrk is not installed (apt-get install -y wrk)")
		return 2
	default:
		b.closed = "builtin"
		r.skip("wrk", "not installed (apt-get install -y wrk): max RPS comes from the built-in Go closed-loop generator, which costs more CPU per request than wrk")
	}
	if busy := cpuBusy(500 * time.Millisecond); busy > 0.25 {
		b.notes = append(b.notes, fmt.Sprintf("the machine was %.0f %% busy before the run (other processes): absolute figures are noisy; the ratios, taken side by side, hold better", busy*100))
	}
	acct := startForeignAccounting()

	logf("starting backend (with the load generator) on CPU %s", o.loadCPUs)
	if err := r.startBackend(b.self); err != nil {
		logf("backend: %v", err)
		keepLogs = true
		return 1
	}
	var contenders []*contender
	if wanted("direct") {
		contenders = append(contenders, r.direct())
	}
	for _, name := range []string{"nginx", "haproxy"} {
		if !wanted(name) {
			continue
		}
		if r.tools[name] == "" {
			r.skip(name, "not installed (apt-get install -y %s)", name)
			continue
		}
		start := r.startNginx
		if name == "haproxy" {
			start = r.startHAProxy
		}
		c, err := start()
		if err != nil {
			r.fail(name, "%v", err)
			continue
		}
		contenders = append(contenders, c)
	}
	for _, s := range scenarios {
		if !wanted(s.Name) {
			continue
		}
		if c, _ := r.startScenario(s); c != nil {
			contenders = append(contenders, c)
		}
	}
	for _, c := range contenders {
		for _, body := range c.bodies {
			loads := o.loads
			if body != "64B" {
				loads = o.loadsLarge
			} else if c.loads != nil {
				loads = c.loads
			}
			k, _ := bodyKindOf(body)
			cl := &cell{c: c, body: body, path: c.prefix + k.path, loads: loads, lat: map[int][]openRun{}}
			if k.post {
				cl.post = requestBody
			}
			b.cells = append(b.cells, cl)
		}
	}
	if b.postScript, err = writePostScript(dir); err != nil {
		logf("%v", err)
		return 2
	}
	if len(b.cells) == 0 {
		logf("nothing to measure")
		keepLogs = true
		return 1
	}

	steps := b.plan(contenders)
	b.fitBudget(steps)
	b.prog = newProgress(os.Stderr, steps, b.dur, b.warm)
	logf("%d runs: %d round(s) x %s, %s warm-up, max RPS by %s, rates %% of %s's capacity",
		len(steps), o.rounds, b.dur, b.warm, b.closed, basisName(b.cells))
	for i, s := range steps {
		if s.phase == "latency" && i > 0 && steps[i-1].phase == "max" {
			b.setBasis()
		}
		b.prog.begin(i, s)
		if err := b.exec(s); err != nil {
			r.fail(s.cell.label(), "%s round %d: %v", s.phase, s.round, err)
		}
		time.Sleep(100 * time.Millisecond) // let sockets settle between runs
	}
	b.prog.finish()
	if len(b.basis) == 0 {
		b.setBasis()
	}
	if cpus, ok := acct.foreignCPUs(r.all, b.clk); ok && cpus > 0.15 {
		b.notes = append(b.notes, fmt.Sprintf("other processes used %.2f CPUs on average during the run (of %d): figures are noisy; ratios between contenders hold better than absolute numbers", cpus, runtime.NumCPU()))
	}

	rep := b.report()
	if err := writeOutputs(o.out, rep); err != nil {
		logf("%v", err)
		keepLogs = true
		return 1
	}
	printReport(stdout, rep)
	fmt.Fprintf(stdout, "\nwrote %s and %s\n", filepath.Join(o.out, "latest.json"), filepath.Join(o.out, "latest.svg"))
	if len(r.failed) > 0 {
		keepLogs = true
		return 1
	}
	return 0
}

// plan lists the runs: a warm-up per contender, then rounds of max RPS
// with every cell in turn (A B A B ...), then rounds of each constant
// load, then the rate-limit accuracy checks.
func (b *bench) plan(contenders []*contender) []step {
	o := b.r.opts
	var steps []step
	if o.warmup > 0 {
		seen := map[*contender]bool{}
		for _, c := range b.cells {
			if !seen[c.c] {
				seen[c.c] = true
				steps = append(steps, step{phase: "warmup", cell: c})
			}
		}
	}
	for r := 1; r <= o.rounds; r++ {
		for _, c := range b.cells {
			steps = append(steps, step{phase: "max", round: r, cell: c})
		}
	}
	// Every distinct load, in increasing order.
	var loads []int
	for _, c := range b.cells {
		for _, l := range c.loads {
			loads = insertSorted(loads, l)
		}
	}
	for r := 1; r <= o.rounds; r++ {
		for _, l := range loads {
			for _, c := range b.cells {
				if containsInt(c.loads, l) {
					steps = append(steps, step{phase: "latency", round: r, cell: c, load: l})
				}
			}
		}
		for _, c := range b.cells {
			if c.c.accuracy != nil && c.body == c.c.bodies[0] {
				steps = append(steps, step{phase: "accuracy", round: r, cell: c})
			}
		}
	}
	return steps
}

// fitBudget shrinks the run length so that all runs fit the budget; wrk
// only takes whole seconds, so with wrk lengths are whole seconds.
func (b *bench) fitBudget(steps []step) {
	o := b.r.opts
	b.dur, b.warm = o.duration, o.warmup
	if b.closed == "wrk" {
		b.dur = roundUpSecond(b.dur)
		if b.warm > 0 {
			b.warm = roundUpSecond(b.warm)
		}
	}
	var measured, warm int
	for _, s := range steps {
		if s.phase == "warmup" {
			warm++
		} else {
			measured++
		}
	}
	total := time.Duration(measured)*(b.dur+perRunOverhead) + time.Duration(warm)*(b.warm+perRunOverhead)
	if total <= o.budget || measured == 0 {
		return
	}
	avail := o.budget - time.Duration(measured+warm)*perRunOverhead - time.Duration(warm)*b.warm
	d := avail / time.Duration(measured)
	step := 100 * time.Millisecond
	if b.closed == "wrk" {
		step = time.Second
	}
	d = d / step * step
	if d < step {
		d = step
	}
	if d < 500*time.Millisecond {
		d = 500 * time.Millisecond
	}
	if d < b.dur {
		b.notes = append(b.notes, fmt.Sprintf("runs shortened from %s to %s to fit the %s budget (%d runs)", b.dur, d, o.budget, measured))
		b.dur = d
	}
}

func roundUpSecond(d time.Duration) time.Duration {
	s := (d + time.Second - 1) / time.Second * time.Second
	if s < time.Second {
		s = time.Second
	}
	return s
}

// basisName says whose capacity the constant rates are a percentage of,
// before it is measured.
func basisName(cells []*cell) string {
	for _, want := range []string{"nginx", "weir", "direct"} {
		for _, c := range cells {
			if c.c.name == want {
				return want
			}
		}
	}
	if len(cells) > 0 {
		return cells[0].c.name
	}
	return "?"
}

// setBasis fixes, per body, the capacity the constant rates are a
// percentage of: nginx's median max RPS (bench/README.md), or when nginx did not
// run, plain Weir's, then direct's.
func (b *bench) setBasis() {
	want := basisName(b.cells)
	for _, body := range b.r.opts.bodies {
		for _, name := range []string{want, "nginx", "weir", "direct"} {
			var found *cell
			for _, c := range b.cells {
				if c.c.name == name && c.body == body {
					found = c
				}
			}
			if found == nil {
				continue
			}
			var rps []float64
			for _, m := range found.max {
				rps = append(rps, m.RPS)
			}
			if v := median(rps); v > 0 {
				b.basis[body] = rateBasis{Contender: name, RPS: v}
				break
			}
		}
	}
	if want != "nginx" {
		b.notes = append(b.notes, fmt.Sprintf("nginx did not run: constant rates are a percentage of %s's capacity instead", want))
	}
}

// exec runs one step.
func (b *bench) exec(s step) error {
	c := s.cell
	switch s.phase {
	case "warmup":
		_, err := b.closedRun(c, b.warm)
		return err
	case "max":
		var prof chan error
		if b.r.opts.pprof && s.round == 1 && c.c.kind == "weir" {
			prof = make(chan error, 1)
			go func() { prof <- b.profile(c) }()
		}
		res, err := b.closedRun(c, b.dur)
		if prof != nil {
			if perr := <-prof; perr != nil {
				b.notes = append(b.notes, fmt.Sprintf("no CPU profile of %s: %v", c.label(), perr))
			}
		}
		if err != nil {
			return err
		}
		c.max = append(c.max, res)
		if res.Requests > 0 && float64(res.Bad) > 0.01*float64(res.Requests) {
			return fmt.Errorf("%d of %d answers were errors or not 2xx", res.Bad, res.Requests)
		}
		return nil
	case "latency":
		basis, ok := b.basis[c.body]
		if !ok || basis.RPS <= 0 {
			return fmt.Errorf("no capacity measured for %s bodies, so no rate to hold", c.body)
		}
		rate := basis.RPS * float64(s.load) / 100
		res, err := b.openRun(c, c.path, c.post, rate)
		if err != nil {
			return err
		}
		c.lat[s.load] = append(c.lat[s.load], res)
		if bad := res.Result.Errors + res.Result.Non2xx; float64(bad) > 0.01*float64(res.Result.Scheduled) {
			return fmt.Errorf("%d%% load: %d errors, %d non-2xx of %d (first error: %s)", s.load, res.Result.Errors, res.Result.Non2xx, res.Result.Scheduled, res.Result.FirstError)
		}
		return nil
	case "accuracy":
		a := c.c.accuracy
		res, err := b.openRun(c, a.Path, nil, a.OfferedRPS)
		if err != nil {
			return err
		}
		lr := res.Result
		run := accuracyRun{Seconds: lr.Seconds, Allowed: lr.OK, Rejected: lr.Status["429"]}
		run.Other = lr.Completed - lr.OK - run.Rejected + lr.Errors + lr.Unsent
		// A token bucket lets through its burst, then the rate.
		run.Expected = a.LimitRPS*b.dur.Seconds() + a.Burst
		if run.Expected > float64(lr.Scheduled) {
			run.Expected = float64(lr.Scheduled)
		}
		run.Ratio = float64(run.Allowed) / run.Expected
		c.acc = append(c.acc, run)
		return nil
	}
	return fmt.Errorf("unknown phase %q", s.phase)
}

// closedRun measures maximum throughput with wrk (one wrk per target
// process, connections split between them) or the built-in generator.
func (b *bench) closedRun(c *cell, dur time.Duration) (closedRun, error) {
	before, errBefore := treeCPU(pidsOf(c.c.procs))
	var res closedRun
	if b.closed == "wrk" {
		conns := b.r.opts.conns / len(c.c.targets)
		if conns < 1 {
			conns = 1
		}
		type out struct {
			w   wrkResult
			err error
		}
		outs := make([]out, len(c.c.targets))
		var wg sync.WaitGroup
		for i, t := range c.c.targets {
			wg.Add(1)
			go func(i int, t string) {
				defer wg.Done()
				outs[i].w, outs[i].err = b.wrk(t, c, conns, dur)
			}(i, t)
		}
		wg.Wait()
		for _, o := range outs {
			if o.err != nil {
				return res, o.err
			}
			res.RPS += o.w.RPS
			res.Requests += o.w.Requests
			res.Bad += o.w.Non2xx + o.w.Errors
			res.P50us = maxf(res.P50us, o.w.P50us)
			res.P99us = maxf(res.P99us, o.w.P99us)
		}
	} else {
		lr, err := b.child(loadSpec{Targets: c.c.targets, Path: c.path, Headers: c.c.headers, Body: c.post, Duration: dur, Conns: b.r.opts.conns, Grace: time.Second})
		if err != nil {
			return res, err
		}
		res.RPS = float64(lr.Completed) / lr.Seconds
		res.Requests = lr.Completed
		res.Bad = lr.Non2xx + lr.Errors
		res.P50us, res.P99us = lr.P50us, lr.P99us
	}
	after, errAfter := treeCPU(pidsOf(c.c.procs))
	if errBefore == nil && errAfter == nil && res.Requests > 0 {
		res.CPUus = b.ticksToUs(after-before) / float64(res.Requests)
	}
	return res, nil
}

// profile fetches a CPU profile from the first Weir process's admin
// listener while a max-RPS run goes on, into OUT/pprof/NAME-BODY.pprof
// (`go tool pprof -top bin/weir FILE` reads it).
func (b *bench) profile(c *cell) error {
	if len(c.c.admins) == 0 {
		return errors.New("no admin listener")
	}
	secs := int(b.dur/time.Second) - 1
	if secs < 1 {
		secs = 1
	}
	dir := filepath.Join(b.r.opts.out, "pprof")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	file := filepath.Join(dir, sanitize(c.c.name+"-"+c.body)+".pprof")
	if err := fetchProfile(c.c.admins[0], secs, file); err != nil {
		return fmt.Errorf("%w (is admin pprof: true in the scenario?)", err)
	}
	b.notes = append(b.notes, "CPU profile of "+c.label()+": "+file)
	return nil
}

// openRun holds a constant rate on path (POSTing post when set) and
// measures latency and CPU per request.
func (b *bench) openRun(c *cell, path string, post []byte, rate float64) (openRun, error) {
	pids := pidsOf(c.c.procs)
	cpu0, err0 := treeCPU(pids)
	var red0 cpuTicks
	var errr0 error = errors.New("no redis")
	if c.c.redis != nil {
		red0, errr0 = treeCPU([]int{c.c.redis.pid()})
	}
	stat0, errs0 := cpuSnapshot()
	lr, err := b.child(loadSpec{Targets: c.c.targets, Path: path, Headers: c.c.headers, Body: post, Rate: rate, Duration: b.dur, Conns: b.r.opts.conns, Grace: time.Second, Spin: b.spin})
	if err != nil {
		return openRun{}, err
	}
	// The load side's busy share: when the loop polls (the CPU then always
	// reads 100 %), the share of the run its working iterations took (time
	// Redis or others took in the middle of one included); else the
	// busiest load CPU's.
	res := openRun{Rate: rate, Result: lr, LoadBusy: lr.LoopBusy}
	if stat1, err := cpuSnapshot(); err == nil && errs0 == nil && len(b.proxyCPUs) > 0 {
		res.ProxyBusy = max(busiestBetween(stat0, stat1, b.proxyCPUs), 0)
		if !b.spin {
			res.LoadBusy = max(busiestBetween(stat0, stat1, b.loadCPUs), 0)
		}
	}
	n := float64(lr.Completed)
	if n > 0 {
		// direct's process is the backend, which also runs the generator
		// (and polls): its CPU is not the backend's.
		if cpu1, err := treeCPU(pids); err == nil && err0 == nil && c.c.kind != "direct" {
			res.CPUus = b.ticksToUs(cpu1-cpu0) / n
		}
		if c.c.redis != nil && errr0 == nil {
			if red1, err := treeCPU([]int{c.c.redis.pid()}); err == nil {
				res.RedisUs = b.ticksToUs(red1-red0) / n
			}
		}
	}
	return res, nil
}

func (b *bench) ticksToUs(t cpuTicks) float64 { return float64(t) * 1e6 / float64(b.clk) }

// wrk runs `wrk --latency` on one of c's targets, pinned to the load
// CPUs, and parses its output. A POST row sends requestBody through
// b.postScript.
func (b *bench) wrk(target string, c *cell, conns int, dur time.Duration) (wrkResult, error) {
	args := []string{b.r.tools["wrk"], "-t1", "-c" + strconv.Itoa(conns),
		"-d" + strconv.Itoa(int(dur/time.Second)) + "s", "--timeout", "2s", "--latency"}
	for k, v := range c.c.headers {
		args = append(args, "-H", k+": "+v)
	}
	if c.post != nil {
		args = append(args, "-s", b.postScript)
	}
	args = append(args, "http://"+target+c.path)
	argv := b.r.pin.wrap(b.r.opts.loadCPUs, args)
	ctx, cancel := context.WithTimeout(context.Background(), dur+30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %v: %s", err, strings.TrimSpace(string(out)))
	}
	w, err := parseWrk(string(out))
	if err != nil {
		return w, fmt.Errorf("%w\n%s", err, out)
	}
	return w, nil
}

// child has the backend process run the load generator on its event loop
// (backendChildMain): the spec as a line on its stdin, the result as a
// line on its stdout.
func (b *bench) child(spec loadSpec) (loadResult, error) {
	back := b.r.back
	if back == nil || back.ctl == nil {
		return loadResult{}, errors.New("load generator: no backend process")
	}
	in, err := json.Marshal(spec)
	if err != nil {
		return loadResult{}, err
	}
	type answer struct {
		reply backendReply
		err   error
	}
	done := make(chan answer, 1)
	go func() {
		var a answer
		if _, a.err = back.ctl.in.Write(append(in, '\n')); a.err == nil {
			var line []byte
			if line, a.err = back.ctl.out.ReadBytes('\n'); a.err == nil {
				a.err = json.Unmarshal(line, &a.reply)
			}
		}
		done <- a
	}()
	select {
	case a := <-done:
		switch {
		case a.err != nil:
			return loadResult{}, fmt.Errorf("load generator: %v (backend log: %s)", a.err, back.tail(3))
		case a.reply.Error != "":
			return loadResult{}, fmt.Errorf("load generator: %s", a.reply.Error)
		case a.reply.Result == nil:
			return loadResult{}, errors.New("load generator: empty answer")
		}
		return *a.reply.Result, nil
	case <-time.After(spec.Duration + spec.Grace + 30*time.Second):
		back.stop()
		return loadResult{}, fmt.Errorf("load generator: no answer within %s; stopped the backend process", spec.Duration+spec.Grace+30*time.Second)
	}
}

// overlap reports whether two CPU lists share a CPU.
func overlap(a, b []int) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

func pidsOf(ps []*proc) []int {
	out := make([]int, len(ps))
	for i, p := range ps {
		out[i] = p.pid()
	}
	return out
}

// foreignAccounting measures how much CPU processes other than the
// harness's used during a run: all busy CPU time from /proc/stat, less the
// harness's own (with its waited-for children: wrk and the generators) and
// that of the processes it started. On a shared machine that is the noise
// in the figures.
type foreignAccounting struct {
	start       time.Time
	busy0, own0 float64
	ok          bool
}

func startForeignAccounting() foreignAccounting {
	busy, ok1 := systemBusyTicks()
	own, ok2 := selfTicks()
	return foreignAccounting{start: time.Now(), busy0: busy, own0: own, ok: ok1 && ok2}
}

// foreignCPUs is the average number of CPUs kept busy by others since
// the start; procs must still be running.
func (a foreignAccounting) foreignCPUs(procs []*proc, clk int64) (float64, bool) {
	if !a.ok {
		return 0, false
	}
	busy, ok1 := systemBusyTicks()
	own, ok2 := selfTicks()
	var started []int
	for _, p := range procs {
		if !p.exited() {
			started = append(started, p.pid())
		}
	}
	ticks, err := treeCPU(started)
	secs := time.Since(a.start).Seconds()
	if !ok1 || !ok2 || err != nil || secs <= 0 {
		return 0, false
	}
	foreign := (busy - a.busy0) - (own - a.own0) - float64(ticks)
	if foreign < 0 {
		foreign = 0
	}
	return foreign / float64(clk) / secs, true
}

// selfTicks is the harness's utime+stime+cutime+cstime (man 5 proc,
// fields 14-17): its own CPU and that of the children it has waited for.
func selfTicks() (float64, bool) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return 0, false
	}
	var sum float64
	for _, s := range f[11:15] {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, false
		}
		sum += v
	}
	return sum, true
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	for i := 1; i < len(s); i++ { // insertion sort: a handful of rounds
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func maxf(a, b float64) float64 {
	if a > b {
		return a
	}
	return b
}

func insertSorted(s []int, v int) []int {
	for i, x := range s {
		if x == v {
			return s
		}
		if x > v {
			return append(s[:i], append([]int{v}, s[i:]...)...)
		}
	}
	return append(s, v)
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// logf prints a harness message on stderr, clear of the progress line.
func logf(format string, a ...any) {
	progressMu.Lock()
	defer progressMu.Unlock()
	if progressShown {
		fmt.Fprint(os.Stderr, "\r\033[K")
	}
	fmt.Fprintf(os.Stderr, "weirbench: "+format+"\n", a...)
}
