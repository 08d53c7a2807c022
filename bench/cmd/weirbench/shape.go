package main

// The users' shape (make bench-shape = weirbench -shape): Weir beside
// nginx on what the people who asked for Weir send and run, rather than on
// the rig's favourite case. Each row changes one thing a user would vary:
//
//   - the answer: 10 KiB (the users' average) as well as 64 B;
//   - the request: a 1 KiB POST body as well as a GET;
//   - the backend: the harness's own epoll server, or nginx serving the
//     same bytes from files with sendfile on (header and body written
//     apart) and off;
//   - the client connections: 32, 64 and 10,000 (with each proxy's RSS);
//   - the scheduling: SCHED_FIFO pinned (the rig's default) or normal
//     priority pinned, and unpinned with GOMAXPROCS / worker_processes 1
//     and 2 (on a 2-CPU machine the load generator then shares both CPUs,
//     so CPU per request is the figure that judges scaling).
//
// Every row runs on both proxies in every round, who goes first
// alternating between rounds. A row's verdict says whether Weir ÷ nginx
// stays on one side of 1 in every round ("holds") or not ("undecided"),
// for throughput and for CPU per request; a result that flips with the
// round is not a result.

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// shapeSetup is one pair of proxies (Weir and nginx) started alike.
type shapeSetup struct {
	backend string // own | sendfile | copy
	sched   string // fifo (pinned) | normal (pinned) | free (unpinned, normal)
	procs   int    // GOMAXPROCS for Weir, worker_processes for nginx
}

func (s shapeSetup) String() string {
	return fmt.Sprintf("%s-%s-%d", s.backend, s.sched, s.procs)
}

// shapeRow is one measurement, taken on both proxies of its setup.
type shapeRow struct {
	name  string
	setup shapeSetup
	post  bool // POST a 1 KiB body
	path  string
	conns int
	// many: the many-connections row (its RSS is sampled; its
	// connection count is -many).
	many bool
}

// instance names the proxy pair a row runs on. Rows share a pair only
// when they ask for the same answer size and neither is the
// many-connections row: a proxy carries state from one run into the next
// (Weir's body-buffer pool sized by the last answers, thousands of idle
// worker goroutines for seconds after 10,000 connections, which every GC
// then scans), and the row that followed such a run in the next round
// was charged for it: GET 10 KiB at c64 measured 1.07×, 1.44×, 1.81×
// nginx's CPU in rounds 1, 2, 3 on one shared pair, 1.0× on its own.
func (row shapeRow) instance() string {
	k := row.setup.String() + strings.ReplaceAll(row.path, "/", "-")
	if row.many {
		k += "-many"
	}
	return k
}

func shapeRows() []shapeRow {
	fifo1 := func(b string) shapeSetup { return shapeSetup{b, "fifo", 1} }
	return []shapeRow{
		{"GET 10KiB · own · c64 · FIFO", fifo1("own"), false, "/static10k", 64, false},
		{"GET 10KiB · nginx sendfile · c64 · FIFO", fifo1("sendfile"), false, "/static10k", 64, false},
		{"GET 10KiB · nginx copy · c64 · FIFO", fifo1("copy"), false, "/static10k", 64, false},
		{"POST 1KiB→10KiB · own · c64 · FIFO", fifo1("own"), true, "/static10k", 64, false},
		{"POST 1KiB→10KiB · nginx sendfile · c64 · FIFO", fifo1("sendfile"), true, "/static10k", 64, false},
		{"GET 10KiB · own · c32 · FIFO", fifo1("own"), false, "/static10k", 32, false},
		{"GET 10KiB · own · c64 · normal", shapeSetup{"own", "normal", 1}, false, "/static10k", 64, false},
		{"GET 64B · nginx sendfile · c32 · normal", shapeSetup{"sendfile", "normal", 1}, false, "/static", 32, false},
		{"GET 64B · own · c64 · FIFO", fifo1("own"), false, "/static", 64, false},
		{"GET 64B · own · c64 · unpinned 1 proc", shapeSetup{"own", "free", 1}, false, "/static", 64, false},
		{"GET 64B · own · c64 · unpinned 2 procs", shapeSetup{"own", "free", 2}, false, "/static", 64, false},
		{"GET 10KiB · own · c64 · unpinned 1 proc", shapeSetup{"own", "free", 1}, false, "/static10k", 64, false},
		{"GET 10KiB · own · c64 · unpinned 2 procs", shapeSetup{"own", "free", 2}, false, "/static10k", 64, false},
		{"GET 64B · own · many connections · FIFO", fifo1("own"), false, "/static", 10000, true},
	}
}

// shapeProxy is one started proxy.
type shapeProxy struct {
	kind  string // weir | nginx
	addr  string
	path  string // the answer its rows ask for, warmed up with
	admin string
	proc  *proc
}

type shapeResult struct {
	Row        string    `json:"row"`
	Contender  string    `json:"contender"`
	RPS        []float64 `json:"rps_rounds"`
	CPUus      []float64 `json:"cpu_us_rounds"`
	P99us      []float64 `json:"p99_us_rounds"`
	RSSMiB     []float64 `json:"rss_mib_rounds,omitempty"`
	IdleRSSMiB []float64 `json:"idle_rss_mib_rounds,omitempty"`
	Errors     []int64   `json:"errors_rounds"`
}

type shapeReport struct {
	Date     string         `json:"date"`
	Machine  string         `json:"machine"`
	LoadAvg  []string       `json:"loadavg"`
	Rounds   int            `json:"rounds"`
	Duration string         `json:"duration"`
	Many     int            `json:"many_connections"`
	Results  []*shapeResult `json:"results"`
	Notes    []string       `json:"notes"`
	Failures []string       `json:"failures,omitempty"`
}

const shapeNginxBackend = `worker_processes 1;
pid {{DIR}}/nginx.pid;
error_log {{DIR}}/error.log warn;
worker_rlimit_nofile 65536;
events { worker_connections 32768; }
http {
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 60s;
    sendfile {{SENDFILE}};
    client_body_temp_path {{DIR}}/client_body;
    proxy_temp_path {{DIR}}/proxy;
    fastcgi_temp_path {{DIR}}/fastcgi;
    uwsgi_temp_path {{DIR}}/uwsgi;
    scgi_temp_path {{DIR}}/scgi;
    server {
        listen {{LISTEN}} backlog=4096;
        root {{DIR}}/www;
        default_type application/octet-stream;
        # A POST to a static file answers the file (nginx says 405 to it
        # otherwise); its body is read and dropped.
        error_page 405 =200 $uri;
        location = /healthz { return 200 "ok"; }
    }
}
`

// shapeNginxProxy is the bench's nginx proxy template with the worker
// count and connection limits the rows need.
func shapeNginxProxy(procs int) string {
	t := strings.Replace(nginxTemplate, "worker_processes 1;", "worker_processes "+strconv.Itoa(procs)+";\nworker_rlimit_nofile 65536;", 1)
	return strings.Replace(t, "worker_connections 4096;", "worker_connections 32768;", 1)
}

const shapeWeirConfig = `listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}", pprof: true}
services:
  - name: backend
    targets: [{url: "http://{{BACKEND}}"}]
routes:
  - {name: all, paths: ["/"], service: backend}
`

func runShapeBench(o options, stdout io.Writer) int {
	b, r, cleanup, fifo, ok := newSideRig(&o, "shape", "the shape rows")
	if !ok {
		return 2
	}
	defer cleanup()
	dir := r.dir
	_ = os.Chmod(dir, 0o755) // nginx workers may run unprivileged
	rep := &shapeReport{Date: time.Now().UTC().Format(time.RFC3339), Rounds: o.rounds, Duration: o.duration.String(), Many: o.many, Machine: machineLine()}
	// 10,000 client connections need as many descriptors in wrk and in
	// each proxy (children inherit the raised limit).
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	rep.Notes = append(rep.Notes, fmt.Sprintf("open-file limit %d for wrk and the proxies", lim.Cur))
	if !fifo {
		rep.Notes = append(rep.Notes, "SCHED_FIFO not used here (not allowed, -no-rt or -no-pin): the FIFO rows run at normal priority")
	}
	rep.Notes = append(rep.Notes, fmt.Sprintf("pinned rows: proxies on CPU %s, wrk and backends on CPU %s; unpinned rows: proxies and wrk on any CPU, the backends still on %s", o.proxyCPUs, o.loadCPUs, o.loadCPUs))
	rep.LoadAvg = append(rep.LoadAvg, "start "+loadAvg())
	if err := r.startBackend(b.self); err != nil {
		logf("backend: %v", err)
		return 1
	}
	backends := map[string]string{"own": r.backend}
	for _, kind := range []string{"sendfile", "copy"} {
		addr, err := r.startShapeNginxBackend(kind)
		if err != nil {
			logf("nginx %s backend: %v", kind, err)
			return 1
		}
		backends[kind] = addr
	}
	script, err := writePostScript(dir)
	if err != nil {
		logf("%v", err)
		return 2
	}
	rows := shapeRows()
	for i := range rows {
		if rows[i].many {
			rows[i].conns = o.many
			rows[i].name = strings.Replace(rows[i].name, "many connections", "c"+strconv.Itoa(o.many), 1)
		}
	}
	if len(o.only) > 0 {
		// -only picks rows whose name holds any of its words.
		var picked []shapeRow
		for _, row := range rows {
			for _, w := range o.only {
				if strings.Contains(row.name, w) {
					picked = append(picked, row)
					break
				}
			}
		}
		rows = picked
		if len(rows) == 0 {
			logf("-only %s matches no shape row", strings.Join(o.only, ","))
			return 2
		}
	}
	proxies := map[string]*shapeProxy{}
	for _, row := range rows {
		for _, kind := range []string{"weir", "nginx"} {
			key := kind + "-" + row.instance()
			if proxies[key] != nil {
				continue
			}
			p, err := r.startShapeProxy(kind, key, row.setup, backends[row.setup.backend])
			if err != nil {
				logf("%s: %v", key, err)
				return 1
			}
			p.path = row.path
			if err := checkGet(p.addr, "/static10k", nil, 10<<10); err != nil {
				logf("%s does not answer 10 KiB: %v", key, err)
				return 1
			}
			proxies[key] = p
		}
	}
	results := map[string]*shapeResult{}
	for _, row := range rows {
		for _, kind := range []string{"weir", "nginx"} {
			res := &shapeResult{Row: row.name, Contender: kind}
			results[row.name+"|"+kind] = res
			rep.Results = append(rep.Results, res)
		}
	}
	for _, p := range proxies { // warm-up, unmeasured
		_, _ = b.sideWrk("http://"+p.addr+p.path, "", 64, time.Second, true)
	}
	for round := 0; round < o.rounds; round++ {
		rep.LoadAvg = append(rep.LoadAvg, fmt.Sprintf("round %d %s", round+1, loadAvg()))
		for _, row := range rows {
			order := []string{"weir", "nginx"}
			if round%2 == 1 {
				order = []string{"nginx", "weir"}
			}
			for _, kind := range order {
				p := proxies[kind+"-"+row.instance()]
				scr := ""
				if row.post {
					scr = script
				}
				if err := b.shapeMeasure(p, row, scr, results[row.name+"|"+kind]); err != nil {
					rep.Failures = append(rep.Failures, fmt.Sprintf("%s %s round %d: %v", row.name, kind, round+1, err))
					logf("%s %s: %v", row.name, kind, err)
				}
			}
		}
	}
	rep.LoadAvg = append(rep.LoadAvg, "end "+loadAvg())
	printShapeReport(stdout, rep)
	return finishSideRun(o.out, "shape-latest.json", rep, len(rep.Failures))
}

// startShapeNginxBackend serves the harness backend's bodies from files.
func (r *rig) startShapeNginxBackend(kind string) (string, error) {
	addr, err := r.ports.next()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(r.dir, "backend-"+kind)
	if err := os.MkdirAll(filepath.Join(dir, "www"), 0o755); err != nil {
		return "", err
	}
	for name, n := range map[string]int{"static": 64, "static1k": 1 << 10, "static10k": 10 << 10} {
		if err := os.WriteFile(filepath.Join(dir, "www", name), []byte(strings.Repeat("x", n)), 0o644); err != nil {
			return "", err
		}
	}
	sf := map[string]string{"sendfile": "on", "copy": "off"}[kind]
	conf := strings.NewReplacer("{{DIR}}", dir, "{{LISTEN}}", addr, "{{SENDFILE}}", sf).Replace(shapeNginxBackend)
	file := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		return "", err
	}
	p, err := r.start("backend-nginx-"+kind, r.opts.loadCPUs, nil, r.tools["nginx"], "-p", dir, "-c", file, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
	if err != nil {
		return "", err
	}
	if err := p.waitReady(addr, 10*time.Second); err != nil {
		return "", err
	}
	if err := checkGet(addr, "/static10k", nil, 10<<10); err != nil {
		return "", err
	}
	return addr, nil
}

// startShapeProxy starts Weir or nginx for a setup: pinned at SCHED_FIFO,
// pinned at normal priority, or unpinned.
func (r *rig) startShapeProxy(kind, name string, s shapeSetup, backend string) (*shapeProxy, error) {
	addr, err := r.ports.next()
	if err != nil {
		return nil, err
	}
	pin, cpus := r.pin, r.opts.proxyCPUs
	switch s.sched {
	case "fifo":
		pin = pin.realtime()
	case "free":
		cpus = ""
	}
	p := &shapeProxy{kind: kind, addr: addr}
	var argv, env []string
	if kind == "weir" {
		if p.admin, err = r.ports.next(); err != nil {
			return nil, err
		}
		conf := strings.NewReplacer("{{LISTEN}}", addr, "{{ADMIN}}", p.admin, "{{BACKEND}}", backend).Replace(shapeWeirConfig)
		file := filepath.Join(r.dir, name+".yaml")
		if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
			return nil, err
		}
		argv = []string{r.opts.weir, "run", "-c", file, "--log-level", "warn"}
		env = []string{"GOMAXPROCS=" + strconv.Itoa(s.procs)}
	} else {
		dir := filepath.Join(r.dir, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		conf := strings.NewReplacer("{{DIR}}", dir, "{{LISTEN}}", addr, "{{BACKEND}}", backend).Replace(shapeNginxProxy(s.procs))
		file := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
			return nil, err
		}
		argv = []string{r.tools["nginx"], "-p", dir, "-c", file, "-e", filepath.Join(dir, "nginx-error.log"), "-g", "daemon off;"}
	}
	if p.proc, err = startProc(pin, name, cpus, r.dir, env, argv...); err != nil {
		return nil, err
	}
	r.all = append(r.all, p.proc)
	if err := p.proc.waitReady(addr, 10*time.Second); err != nil {
		return nil, err
	}
	return p, nil
}

// shapeMeasure runs one row on one proxy and appends its figures. For
// the 10,000-connection row it also samples the proxy's RSS halfway
// through the run (and before it, idle).
func (b *bench) shapeMeasure(p *shapeProxy, row shapeRow, script string, res *shapeResult) error {
	pids := []int{p.proc.pid()}
	many := row.many
	dur := b.r.opts.duration
	if many {
		// wrk opens its connections inside the run's time: give it a
		// few seconds so that most of the run has them all open.
		dur = max(dur, 6*time.Second)
	}
	if many {
		res.IdleRSSMiB = append(res.IdleRSSMiB, float64(rssTree(p.proc.pid()))/(1<<20))
	}
	rss := make(chan int64, 1)
	if many {
		go func() {
			time.Sleep(dur * 3 / 4)
			rss <- rssTree(p.proc.pid())
		}()
	}
	cpu0, err0 := treeCPU(pids)
	w, err := b.sideWrk("http://"+p.addr+row.path, script, row.conns, dur, row.setup.sched == "free")
	cpu1, err1 := treeCPU(pids)
	if many {
		res.RSSMiB = append(res.RSSMiB, float64(<-rss)/(1<<20))
	}
	if err != nil {
		return err
	}
	res.Errors = append(res.Errors, w.Errors+w.Non2xx)
	if w.Requests == 0 {
		return fmt.Errorf("wrk: no request answered in %s", dur)
	}
	if bad := w.Errors + w.Non2xx; float64(bad) > 0.01*float64(w.Requests) {
		return fmt.Errorf("wrk: %d socket errors, %d non-2xx of %d", w.Errors, w.Non2xx, w.Requests)
	}
	res.RPS = append(res.RPS, w.RPS)
	res.P99us = append(res.P99us, w.P99us)
	if err0 == nil && err1 == nil && w.Requests > 0 {
		res.CPUus = append(res.CPUus, b.ticksToUs(cpu1-cpu0)/float64(w.Requests))
	}
	return nil
}

// rssTree is the resident memory of pid and its descendants, in bytes.
func rssTree(pid int) int64 {
	var total int64
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				total += kb << 10
			}
		}
	}
	if c, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)); err == nil {
		for _, f := range strings.Fields(string(c)) {
			if child, err := strconv.Atoi(f); err == nil {
				total += rssTree(child)
			}
		}
	}
	return total
}

// verdict says whether per-round ratios stay on one side of 1.
func verdict(ratios []float64) string {
	if len(ratios) == 0 {
		return "-"
	}
	above, below := 0, 0
	for _, x := range ratios {
		if x >= 1 {
			above++
		} else {
			below++
		}
	}
	switch {
	case below == 0:
		return "≥1 holds"
	case above == 0:
		return "<1 holds"
	}
	return "undecided"
}

// pairRatios divides a's rounds by b's, round by round.
func pairRatios(a, b []float64) []float64 {
	var out []float64
	for i := 0; i < len(a) && i < len(b); i++ {
		if b[i] > 0 {
			out = append(out, a[i]/b[i])
		}
	}
	return out
}

func printShapeReport(w io.Writer, rep *shapeReport) {
	fmt.Fprintf(w, "\nweirbench -shape  %s  %s  %d rounds of %s\n\n", rep.Date, rep.Machine, rep.Rounds, rep.Duration)
	fmt.Fprintf(w, "| row | Weir req/s | nginx req/s | ×nginx (rounds) | rate verdict | Weir CPU µs/r | nginx CPU µs/r | CPU ×nginx (rounds) | CPU verdict |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|\n")
	byRow := map[string][2]*shapeResult{}
	var order []string
	for _, r := range rep.Results {
		pair := byRow[r.Row]
		if r.Contender == "weir" {
			pair[0] = r
		} else {
			pair[1] = r
		}
		if _, seen := byRow[r.Row]; !seen {
			order = append(order, r.Row)
		}
		byRow[r.Row] = pair
	}
	for _, name := range order {
		wr, nr := byRow[name][0], byRow[name][1]
		if wr == nil || nr == nil {
			continue
		}
		rate, cpu := pairRatios(wr.RPS, nr.RPS), pairRatios(wr.CPUus, nr.CPUus)
		fmt.Fprintf(w, "| %s | %s | %s | %.2f (%s) | %s | %.1f | %.1f | %.2f (%s) | %s |\n", name,
			fmtInt(median(wr.RPS)), fmtInt(median(nr.RPS)), median(rate), fmtRatios(rate), verdict(rate),
			median(wr.CPUus), median(nr.CPUus), median(cpu), fmtRatios(cpu), verdict(invert(cpu)))
	}
	// Memory at 10,000 connections and scaling from 1 to 2 processes.
	for _, name := range order {
		wr, nr := byRow[name][0], byRow[name][1]
		if wr == nil || nr == nil || len(wr.RSSMiB) == 0 || len(nr.RSSMiB) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s: RSS Weir %.1f MiB (idle %.1f), nginx %.1f MiB (idle %.1f): %.2f× nginx; per connection Weir %.1f KiB, nginx %.1f KiB\n",
			name, median(wr.RSSMiB), median(wr.IdleRSSMiB), median(nr.RSSMiB), median(nr.IdleRSSMiB),
			median(wr.RSSMiB)/median(nr.RSSMiB),
			(median(wr.RSSMiB)-median(wr.IdleRSSMiB))*1024/float64(rep.Many), (median(nr.RSSMiB)-median(nr.IdleRSSMiB))*1024/float64(rep.Many))
	}
	for _, size := range []string{"64B", "10KiB"} {
		one := byRow["GET "+size+" · own · c64 · unpinned 1 proc"]
		two := byRow["GET "+size+" · own · c64 · unpinned 2 procs"]
		if one[0] == nil || two[0] == nil || one[1] == nil || two[1] == nil {
			continue
		}
		fmt.Fprintf(w, "\nGET %s, 1 → 2 processes (unpinned): Weir req/s ×%.2f, CPU/r ×%.2f; nginx req/s ×%.2f, CPU/r ×%.2f\n", size,
			median(two[0].RPS)/median(one[0].RPS), median(two[0].CPUus)/median(one[0].CPUus),
			median(two[1].RPS)/median(one[1].RPS), median(two[1].CPUus)/median(one[1].CPUus))
	}
	fmt.Fprintln(w, "\nverdicts: \"≥1 holds\" = Weir at or above nginx in every round (for CPU: at or below nginx's CPU per request); \"<1 holds\" = below in every round; \"undecided\" = the rounds disagree.")
	fmt.Fprintf(w, "load average: %s\n", strings.Join(rep.LoadAvg, "; "))
	for _, n := range rep.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	for _, f := range rep.Failures {
		fmt.Fprintln(w, "FAILED:", f)
	}
}

// invert turns CPU ratios (lower is better) into "higher is better" ones
// for verdict.
func invert(v []float64) []float64 {
	out := make([]float64, 0, len(v))
	for _, x := range v {
		if x > 0 {
			out = append(out, 1/x)
		}
	}
	return out
}
