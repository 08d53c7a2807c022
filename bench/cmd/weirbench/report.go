package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// report is latest.json: everything the table shows and the per-round
// figures behind each median.
type report struct {
	Tool      string               `json:"tool"`
	Started   time.Time            `json:"started"`
	Seconds   float64              `json:"seconds"`
	Mode      string               `json:"mode"` // full | quick | custom
	Host      hostInfo             `json:"host"`
	Settings  settings             `json:"settings"`
	Backend   string               `json:"backend"`
	RateBasis map[string]rateBasis `json:"rate_basis"`
	Results   []cellReport         `json:"results"`
	Targets   []targetCheck        `json:"targets"`
	Skipped   []note               `json:"skipped"`
	Failed    []note               `json:"failed"`
	Notes     []string             `json:"notes"`
}

type hostInfo struct {
	CPUs       int               `json:"cpus"`
	Kernel     string            `json:"kernel"`
	GoVersion  string            `json:"go_version"`
	LoadAvg    string            `json:"loadavg_at_end"`
	Versions   map[string]string `json:"versions"`
	ClockTicks int64             `json:"clock_ticks"`
}

type settings struct {
	Rounds     int     `json:"rounds"`
	RunSeconds float64 `json:"run_seconds"`
	Warmup     float64 `json:"warmup_seconds"`
	Conns      int     `json:"conns"`
	Loads      []int   `json:"loads_pct"`
	Loads1K    []int   `json:"loads_1kib_pct"`
	ClosedLoop string  `json:"closed_loop"`
	ProxyCPUs  string  `json:"proxy_cpus"`
	LoadCPUs   string  `json:"load_cpus"`
	Pinned     bool    `json:"pinned"`
	RefLoad    int     `json:"reference_load_pct"`
}

// cellReport is one row: medians over rounds, ratios to nginx (same body)
// and the added latency over direct (same body, same load).
type cellReport struct {
	Contender string       `json:"contender"`
	Kind      string       `json:"kind"`
	Body      string       `json:"body"`
	About     string       `json:"about,omitempty"`
	Processes int          `json:"processes"`
	MaxRPS    float64      `json:"max_rps"`
	MaxCPUus  float64      `json:"max_cpu_us_per_req"`
	MaxRounds []closedRun  `json:"max_rounds"`
	Latency   []loadReport `json:"latency"`
	RefLoad   int          `json:"reference_load_pct"`
	CPUus     float64      `json:"cpu_us_per_req"` // at the reference load
	RPSRatio  *float64     `json:"rps_ratio_to_nginx"`
	CPURatio  *float64     `json:"cpu_ratio_to_nginx"`
	// The same two ratios round by round, each against the nginx run next
	// to it (A B A B): their spread is the rig's run-to-run noise.
	RPSRatioRounds []float64 `json:"rps_ratio_rounds,omitempty"`
	CPURatioRounds []float64 `json:"cpu_ratio_rounds,omitempty"`
	P99Ratio       *float64  `json:"p99_ratio_to_nginx"`
	// A plugin scenario's max RPS and CPU per request (reference load)
	// over the plain route's (the "weir" scenario), same body: what the
	// plugin costs, with or without nginx in the run.
	RPSRatioWeir *float64      `json:"rps_ratio_to_weir,omitempty"`
	CPURatioWeir *float64      `json:"cpu_ratio_to_weir,omitempty"`
	AddedP99     *float64      `json:"added_p99_ms_vs_direct"`
	Accuracy     *accuracyRept `json:"rate_limit_accuracy,omitempty"`
	Problems     []string      `json:"problems,omitempty"`
}

// loadBusyLimit: above this busy fraction of the load CPUs, a
// constant-rate run measures the rig's own queue as much as the contender.
const loadBusyLimit = 0.85

type loadReport struct {
	LoadPct     int     `json:"load_pct"`
	Rate        float64 `json:"rate"`
	AchievedRPS float64 `json:"achieved_rps"`
	P50ms       float64 `json:"p50_ms"`
	P90ms       float64 `json:"p90_ms"`
	P99ms       float64 `json:"p99_ms"`
	P999ms      float64 `json:"p999_ms"`
	MaxMs       float64 `json:"max_ms"`
	SendLagP99  float64 `json:"generator_lag_p99_ms"`
	// Polling: the generator polled on CPUs of its own (loadSpec.Spin).
	// LoopStalls: times its loop was off the CPU for over 0.5 ms, all
	// rounds; LoopStallMaxMs the longest.
	Polling        bool      `json:"generator_polling,omitempty"`
	LoopStalls     int64     `json:"generator_stalls,omitempty"`
	LoopStallMaxMs float64   `json:"generator_stall_max_ms,omitempty"`
	CPUus          float64   `json:"cpu_us_per_req"`
	RedisUs        float64   `json:"redis_cpu_us_per_req,omitempty"`
	LoadBusy       float64   `json:"load_cpu_busy,omitempty"`
	ProxyBusy      float64   `json:"proxy_cpu_busy,omitempty"`
	Errors         int64     `json:"errors"`
	Non2xx         int64     `json:"non_2xx"`
	Unsent         int64     `json:"unsent"`
	Rounds         []openRun `json:"rounds"`
}

type accuracyRept struct {
	OfferedRPS float64       `json:"offered_rps"`
	LimitRPS   float64       `json:"limit_rps"`
	Burst      float64       `json:"burst"`
	Ratio      float64       `json:"ratio"` // allowed ÷ what the limit allows, median
	Rounds     []accuracyRun `json:"rounds"`
}

type targetCheck struct {
	Goal   string  `json:"goal"`
	Value  float64 `json:"value"` // the median
	Limit  float64 `json:"limit"`
	Passed bool    `json:"passed"` // by the median
	// Rounds: the figure round by round, where it pairs with nginx's.
	// WithinSpread: some rounds pass and some do not, so the verdict is
	// inside the rig's run-to-run noise rather than a measured difference.
	Rounds       []float64 `json:"rounds,omitempty"`
	WithinSpread bool      `json:"within_spread,omitempty"`
}

// check builds a target check from the median and the per-round figures.
func check(goal string, value, limit float64, rounds []float64, pass func(float64) bool) targetCheck {
	t := targetCheck{Goal: goal, Value: value, Limit: limit, Passed: pass(value), Rounds: rounds}
	for _, r := range rounds {
		if pass(r) != t.Passed {
			t.WithinSpread = true
		}
	}
	return t
}

// pairedRatios divides each round's figure by the reference's in the same
// round; nil unless both have the same number of rounds (a failed round
// breaks the pairing).
func pairedRatios(v, ref []float64) []float64 {
	if len(v) == 0 || len(v) != len(ref) {
		return nil
	}
	out := make([]float64, len(v))
	for i := range v {
		if ref[i] <= 0 {
			return nil
		}
		out[i] = v[i] / ref[i]
	}
	return out
}

// roundRPS and roundCPU are a row's max RPS and its CPU per request at
// the reference load, round by round.
func roundRPS(cr *cellReport) []float64 {
	out := make([]float64, 0, len(cr.MaxRounds))
	for _, m := range cr.MaxRounds {
		out = append(out, m.RPS)
	}
	return out
}

func roundCPU(cr *cellReport) []float64 {
	for _, l := range cr.Latency {
		if l.LoadPct == cr.RefLoad {
			out := make([]float64, 0, len(l.Rounds))
			for _, r := range l.Rounds {
				out = append(out, r.CPUus)
			}
			return out
		}
	}
	return nil
}

// refLoad is the load whose latency and CPU fill the main table: 50 % when
// measured, else the first.
func refLoad(loads []int) int {
	if containsInt(loads, 50) || len(loads) == 0 {
		return 50
	}
	return loads[0]
}

func (b *bench) report() *report {
	o := b.r.opts
	rep := &report{
		Tool: "weirbench", Started: b.started, Seconds: time.Since(b.started).Seconds(),
		Mode:      "full",
		Backend:   "weirbench's own epoll backend, on the load generator's loop: GET /static 64 B, /static1k 1 KiB, POST /static with a 1 KiB body (64 B answered), on the load CPUs",
		RateBasis: b.basis,
		Skipped:   b.r.skipped, Failed: b.r.failed, Notes: b.notes,
	}
	switch {
	case o.custom:
		rep.Mode = "custom"
	case o.quick:
		rep.Mode = "quick"
	}
	rep.Host = hostInfo{
		CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), ClockTicks: b.clk,
		Kernel:   strings.TrimSpace(readFirstLine("/proc/sys/kernel/osrelease")),
		LoadAvg:  strings.TrimSpace(readFirstLine("/proc/loadavg")),
		Versions: map[string]string{"weir": toolVersion(o.weir, "version")},
	}
	for _, t := range []struct{ name, arg string }{{"nginx", "-v"}, {"haproxy", "-v"}, {"wrk", "-v"}, {"redis-server", "--version"}} {
		if v := toolVersion(b.r.tools[t.name], t.arg); v != "" {
			rep.Host.Versions[t.name] = v
		}
	}
	rep.Settings = settings{
		Rounds: o.rounds, RunSeconds: b.dur.Seconds(), Warmup: b.warm.Seconds(), Conns: o.conns,
		Loads: o.loads, Loads1K: o.loadsLarge, ClosedLoop: b.closed,
		ProxyCPUs: o.proxyCPUs, LoadCPUs: o.loadCPUs, Pinned: b.r.pin.taskset != "", RefLoad: 50,
	}
	byKey := map[string]*cellReport{}
	for _, c := range b.cells {
		cr := cellReport{Contender: c.c.name, Kind: c.c.kind, Body: c.body, About: c.c.about,
			Processes: len(c.c.targets), MaxRounds: c.max, RefLoad: refLoad(c.loads)}
		var rps, cpu []float64
		for _, m := range c.max {
			rps = append(rps, m.RPS)
			cpu = append(cpu, m.CPUus)
		}
		cr.MaxRPS, cr.MaxCPUus = median(rps), median(cpu)
		loads := append([]int(nil), c.loads...)
		sort.Ints(loads)
		for _, l := range loads {
			runs := c.lat[l]
			if len(runs) == 0 {
				continue
			}
			lr := loadReport{LoadPct: l, Rounds: runs}
			var rate, ach, p50, p90, p99, p999, mx, lag, cu, ru, lb, pb []float64
			for _, r := range runs {
				rate = append(rate, r.Rate)
				ach = append(ach, r.Result.RPS)
				p50 = append(p50, r.Result.P50us/1e3)
				p90 = append(p90, r.Result.P90us/1e3)
				p99 = append(p99, r.Result.P99us/1e3)
				p999 = append(p999, r.Result.P999us/1e3)
				mx = append(mx, r.Result.MaxUs/1e3)
				lag = append(lag, r.Result.SendLagP99/1e3)
				cu = append(cu, r.CPUus)
				ru = append(ru, r.RedisUs)
				lb = append(lb, r.LoadBusy)
				pb = append(pb, r.ProxyBusy)
				lr.Errors += r.Result.Errors
				lr.Non2xx += r.Result.Non2xx
				lr.Unsent += r.Result.Unsent
				lr.Polling = lr.Polling || r.Result.LoopBusy > 0
				lr.LoopStalls += r.Result.LoopStalls
				lr.LoopStallMaxMs = max(lr.LoopStallMaxMs, r.Result.LoopStallMaxUs/1e3)
			}
			lr.Rate, lr.AchievedRPS = median(rate), median(ach)
			lr.P50ms, lr.P90ms, lr.P99ms, lr.P999ms, lr.MaxMs = median(p50), median(p90), median(p99), median(p999), median(mx)
			lr.SendLagP99, lr.CPUus, lr.RedisUs = median(lag), median(cu), median(ru)
			lr.LoadBusy, lr.ProxyBusy = median(lb), median(pb)
			cr.Latency = append(cr.Latency, lr)
			if l == cr.RefLoad {
				cr.CPUus = lr.CPUus
			}
			if lr.Errors+lr.Non2xx+lr.Unsent > 0 {
				cr.Problems = append(cr.Problems, fmt.Sprintf("%d%% load: %d errors, %d non-2xx, %d unsent", l, lr.Errors, lr.Non2xx, lr.Unsent))
			}
			// A polling generator is late only when every connection is
			// taken (the contender holds them: that is its latency) or when
			// it was off its CPU (a stall, counted apart).
			if lr.SendLagP99 > 1 && !lr.Polling {
				cr.Problems = append(cr.Problems, fmt.Sprintf("%d%% load: the generator sent late (p99 %.2f ms): latency includes its own queueing", l, lr.SendLagP99))
			}
			if lr.LoopStalls > 0 && lr.LoopStallMaxMs > 1 {
				cr.Problems = append(cr.Problems, fmt.Sprintf("%d%% load: the load loop was off its CPU %d times for over 0.5 ms (longest %.1f ms; another process or the hypervisor): requests due then waited", l, lr.LoopStalls, lr.LoopStallMaxMs))
			}
			if lr.LoadBusy > loadBusyLimit {
				cr.Problems = append(cr.Problems, fmt.Sprintf("%d%% load: the load CPUs (generator, backend) were %.0f%% busy: latency includes their queueing, not only the contender's", l, lr.LoadBusy*100))
			}
		}
		for _, m := range c.max {
			if m.Bad > 0 {
				cr.Problems = append(cr.Problems, fmt.Sprintf("max RPS: %d errors or non-2xx answers in a round", m.Bad))
				break
			}
		}
		if a := c.c.accuracy; a != nil && len(c.acc) > 0 {
			var ratios []float64
			for _, r := range c.acc {
				ratios = append(ratios, r.Ratio)
			}
			cr.Accuracy = &accuracyRept{OfferedRPS: a.OfferedRPS, LimitRPS: a.LimitRPS, Burst: a.Burst, Ratio: median(ratios), Rounds: c.acc}
		}
		rep.Results = append(rep.Results, cr)
	}
	for i := range rep.Results {
		cr := &rep.Results[i]
		byKey[cr.Contender+"|"+cr.Body] = cr
	}
	for i := range rep.Results {
		cr := &rep.Results[i]
		if n := byKey["nginx|"+cr.Body]; n != nil {
			if n.MaxRPS > 0 {
				cr.RPSRatio = ptr(cr.MaxRPS / n.MaxRPS)
			}
			if n.CPUus > 0 && cr.CPUus > 0 {
				cr.CPURatio = ptr(cr.CPUus / n.CPUus)
			}
			if cr != n {
				cr.RPSRatioRounds = pairedRatios(roundRPS(cr), roundRPS(n))
				if n.RefLoad == cr.RefLoad {
					cr.CPURatioRounds = pairedRatios(roundCPU(cr), roundCPU(n))
				}
			}
			if np, cp := p99At(n, cr.RefLoad), p99At(cr, cr.RefLoad); np > 0 && cp > 0 {
				cr.P99Ratio = ptr(cp / np)
			}
		}
		if p := byKey["weir|"+cr.Body]; p != nil && cr.Kind == "weir" && cr != p {
			if p.MaxRPS > 0 {
				cr.RPSRatioWeir = ptr(cr.MaxRPS / p.MaxRPS)
			}
			if p.CPUus > 0 && cr.CPUus > 0 {
				cr.CPURatioWeir = ptr(cr.CPUus / p.CPUus)
			}
		}
		if d := byKey["direct|"+cr.Body]; d != nil && cr.Kind != "direct" {
			if dp, cp := p99At(d, cr.RefLoad), p99At(cr, cr.RefLoad); dp > 0 && cp > 0 {
				cr.AddedP99 = ptr(cp - dp)
			}
		}
	}
	rep.Targets = b.targets(rep, byKey)
	rep.Notes = append(rep.Notes, rigLimitNotes(rep.Results)...)
	return rep
}

// rigLimitNotes says at which loads the load side itself (generator and
// backend on the load CPUs) could not keep the schedule without any proxy
// in the way, or was near saturation behind nginx, the reference: there
// the latencies measure the rig more than the proxies.
func rigLimitNotes(results []cellReport) []string {
	var out []string
	for _, r := range results {
		if r.Kind == "nginx" {
			for _, l := range r.Latency {
				if l.LoadBusy > loadBusyLimit {
					out = append(out, fmt.Sprintf("at %d%% load (%s rps, %s bodies) the load CPUs were %.0f%% busy behind nginx (generator and backend; a proxy in between costs them more per request than direct, where the two batch): every proxy's latency at that load includes the rig's own queueing",
						l.LoadPct, fmtInt(l.Rate), r.Body, l.LoadBusy*100))
				}
			}
		}
		if r.Kind != "direct" {
			continue
		}
		for _, l := range r.Latency {
			if l.SendLagP99 > 1 && !l.Polling {
				out = append(out, fmt.Sprintf("at %d%% load (%s rps, %s bodies) the load CPUs could not keep the schedule even with no proxy (direct: send lag p99 %s ms): latencies at that load are bounded by the rig, not only by the proxies",
					l.LoadPct, fmtInt(l.Rate), r.Body, fmtMs(l.SendLagP99)))
			}
		}
	}
	return out
}

// targets checks the goals (bench/README.md) a scenario declares, and for every
// Weir row the "never more than 10 ms added" rule.
func (b *bench) targets(rep *report, byKey map[string]*cellReport) []targetCheck {
	var out []targetCheck
	for _, c := range b.cells {
		cr := byKey[c.c.name+"|"+c.body]
		if cr == nil || c.c.kind != "weir" {
			continue
		}
		if t := c.c.targetsS; t != nil {
			if lim := t.RPSRatio; lim > 0 && cr.RPSRatio != nil {
				out = append(out, check(fmt.Sprintf("%s %s: max RPS ÷ nginx ≥ %.2g", cr.Contender, cr.Body, lim),
					*cr.RPSRatio, lim, cr.RPSRatioRounds, func(v float64) bool { return v >= lim }))
			}
			if lim := t.CPURatio; lim > 0 && cr.CPURatio != nil {
				out = append(out, check(fmt.Sprintf("%s %s: CPU/request ÷ nginx ≤ %.2g", cr.Contender, cr.Body, lim),
					*cr.CPURatio, lim, cr.CPURatioRounds, func(v float64) bool { return v <= lim }))
			}
			if t.AddedP99ms > 0 && cr.AddedP99 != nil {
				out = append(out, targetCheck{Goal: fmt.Sprintf("%s %s: p99 − direct's at %d%% < %.3g ms", cr.Contender, cr.Body, cr.RefLoad, t.AddedP99ms),
					Value: *cr.AddedP99, Limit: t.AddedP99ms, Passed: *cr.AddedP99 < t.AddedP99ms})
			}
		}
		if d := byKey["direct|"+c.body]; d != nil {
			worst := 0.0
			for _, l := range cr.Latency {
				if dp := p99At(d, l.LoadPct); dp > 0 {
					worst = maxf(worst, l.P99ms-dp)
				}
			}
			if len(cr.Latency) > 0 {
				out = append(out, targetCheck{Goal: fmt.Sprintf("%s %s: p99 − direct's never > 10 ms", cr.Contender, cr.Body),
					Value: worst, Limit: 10, Passed: worst <= 10})
			}
		}
		if cr.Accuracy != nil {
			out = append(out, targetCheck{Goal: fmt.Sprintf("%s: rate-limit accuracy (allowed ÷ limit) within 0.9–1.1", cr.Contender),
				Value: cr.Accuracy.Ratio, Limit: 1, Passed: cr.Accuracy.Ratio >= 0.9 && cr.Accuracy.Ratio <= 1.1})
		}
	}
	return out
}

func p99At(cr *cellReport, load int) float64 {
	for _, l := range cr.Latency {
		if l.LoadPct == load {
			return l.P99ms
		}
	}
	return 0
}

func ptr(v float64) *float64 { return &v }

func readFirstLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.SplitN(string(b), "\n", 2)[0]
}

// writeOutputs writes latest.json and latest.svg into dir.
func writeOutputs(dir string, rep *report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, "latest.json"), append(js, '\n')); err != nil {
		return err
	}
	svg, err := renderChart(rep)
	if err != nil {
		return fmt.Errorf("draw chart: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, "latest.svg"), svg)
}

// writeFileAtomic writes through a temp file and a rename, so a reader
// (or an interrupted run) never sees half a file.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// printReport prints the terminal table.
func printReport(w io.Writer, rep *report) {
	s := rep.Settings
	fmt.Fprintf(w, "\nWeir bench (%s): %d round(s) x %.0fs runs, medians; proxy on CPU %s, load+backend on CPU %s%s; max RPS by %s, %d conns\n",
		rep.Mode, s.Rounds, s.RunSeconds, s.ProxyCPUs, s.LoadCPUs, map[bool]string{true: "", false: " (not pinned)"}[s.Pinned], s.ClosedLoop, s.Conns)
	for _, k := range bodyKinds {
		if bs, ok := rep.RateBasis[k.name]; ok {
			fmt.Fprintf(w, "constant rates for %s are %% of %s's %s rps\n", k.name, bs.Contender, fmtInt(bs.RPS))
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-22s %-8s %9s %7s  %8s %8s %8s %8s  %8s %7s %7s %8s %11s\n",
		"contender", "body", "max RPS", "×nginx", "p50 ms", "p99 ms", "p99.9 ms", "+p99 ms", "CPU µs/r", "×nginx", "p99 ×ng", "CPU@max", "×weir r/c")
	fmt.Fprintln(w, strings.Repeat("-", 142))
	for _, r := range rep.Results {
		var ref *loadReport
		for i := range r.Latency {
			if r.Latency[i].LoadPct == r.RefLoad {
				ref = &r.Latency[i]
			}
		}
		p50, p99, p999 := "-", "-", "-"
		if ref != nil {
			p50, p99, p999 = fmtMs(ref.P50ms), fmtMs(ref.P99ms), fmtMs(ref.P999ms)
		}
		cpu := "-"
		if r.CPUus > 0 {
			cpu = fmt.Sprintf("%.1f", r.CPUus)
		}
		flag := ""
		if len(r.Problems) > 0 {
			flag = " !"
		}
		cpuMax := "-"
		if r.MaxCPUus > 0 {
			cpuMax = fmt.Sprintf("%.1f", r.MaxCPUus)
		}
		vsWeir := "-"
		if r.RPSRatioWeir != nil || r.CPURatioWeir != nil {
			vsWeir = fmtRatio(r.RPSRatioWeir) + "/" + fmtRatio(r.CPURatioWeir)
		}
		fmt.Fprintf(w, "%-22s %-8s %9s %7s  %8s %8s %8s %8s  %8s %7s %7s %8s %11s%s\n",
			r.Contender, r.Body, fmtInt(r.MaxRPS), fmtRatio(r.RPSRatio), p50, p99, p999, fmtOptMs(r.AddedP99),
			cpu, fmtRatio(r.CPURatio), fmtRatio(r.P99Ratio), cpuMax, vsWeir, flag)
	}
	fmt.Fprintf(w, "latency and CPU µs/r at a constant %d%% of the basis rate (open loop, from the intended send time); CPU@max: CPU µs per request during the max-RPS runs (direct: the backend's own); direct has no CPU µs/r at constant rate (its process also runs the generator); ×weir r/c: a plugin scenario's max RPS / CPU µs/r over the plain weir row's, same body; body POST1KiB: a 1 KiB request body POSTed, 64 B answered\n", rep.Settings.RefLoad)

	// Latency at every load, when there is more than one.
	var loads []int
	for _, r := range rep.Results {
		for _, l := range r.Latency {
			loads = insertSorted(loads, l.LoadPct)
		}
	}
	if len(loads) > 1 {
		printLoadTable(w, "p99 / p99.9 ms at constant load", loads, rep.Results, func(x loadReport) string {
			return fmt.Sprintf("%s / %s", fmtMs(x.P99ms), fmtMs(x.P999ms))
		})
		printLoadTable(w, "CPU busy % (busiest), load CPUs / proxy CPUs, at constant load", loads, rep.Results, func(x loadReport) string {
			if x.LoadBusy == 0 {
				return "-"
			}
			return fmt.Sprintf("%.0f / %.0f", x.LoadBusy*100, x.ProxyBusy*100)
		})
	}
	for _, r := range rep.Results {
		if r.Accuracy != nil {
			fmt.Fprintf(w, "\nrate-limit accuracy %s: %.3f (allowed ÷ (limit %.0f/s × run + burst %.0f), offered %.0f/s, %d process(es))\n",
				r.Contender, r.Accuracy.Ratio, r.Accuracy.LimitRPS, r.Accuracy.Burst, r.Accuracy.OfferedRPS, r.Processes)
		}
	}
	if len(rep.Targets) > 0 {
		fmt.Fprintln(w, "\ntargets (bench/README.md):")
		for _, t := range rep.Targets {
			verdict := "met"
			if !t.Passed {
				verdict = "MISSED"
			}
			fmt.Fprintf(w, "  %-6s %s: %.3f%s\n", verdict, t.Goal, t.Value, fmtRounds(t))
		}
	}
	var problems []string
	for _, r := range rep.Results {
		for _, p := range r.Problems {
			problems = append(problems, fmt.Sprintf("%s %s: %s", r.Contender, r.Body, p))
		}
	}
	if len(problems) > 0 {
		fmt.Fprintln(w, "\n! problems:")
		for _, p := range problems {
			fmt.Fprintln(w, "  "+p)
		}
	}
	if len(rep.Skipped) > 0 {
		fmt.Fprintln(w, "\nskipped:")
		for _, n := range rep.Skipped {
			fmt.Fprintf(w, "  %s: %s\n", n.What, n.Why)
		}
	}
	if len(rep.Failed) > 0 {
		fmt.Fprintln(w, "\nFAILED:")
		for _, n := range rep.Failed {
			fmt.Fprintf(w, "  %s: %s\n", n.What, n.Why)
		}
	}
	if len(rep.Notes) > 0 {
		fmt.Fprintln(w, "\nnotes:")
		for _, n := range rep.Notes {
			fmt.Fprintf(w, "  %s\n", n)
		}
	}
	fmt.Fprintf(w, "\ntook %s\n", fmtDur(time.Duration(rep.Seconds*float64(time.Second))))
}

// fmtRounds shows a target's round-by-round figures when there are
// several, and says when they fall on both sides of the limit.
func fmtRounds(t targetCheck) string {
	if len(t.Rounds) < 2 {
		return ""
	}
	parts := make([]string, len(t.Rounds))
	for i, r := range t.Rounds {
		parts[i] = fmt.Sprintf("%.3f", r)
	}
	s := " (rounds " + strings.Join(parts, " ")
	if t.WithinSpread {
		s += ": on both sides of the limit, within the run-to-run spread"
	}
	return s + ")"
}

func fmtInt(v float64) string {
	n := int64(v + 0.5)
	s := fmt.Sprint(n)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func fmtMs(v float64) string {
	switch {
	case v <= 0:
		return "-"
	case v < 10:
		return fmt.Sprintf("%.3f", v)
	case v < 100:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func fmtOptMs(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%+.3f", *v)
}

func fmtRatio(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f", *v)
}

// printLoadTable prints one row per result and one column per load, each
// cell from cell ("-" where a result has no run at that load).
func printLoadTable(w io.Writer, title string, loads []int, results []cellReport, cell func(loadReport) string) {
	fmt.Fprintf(w, "\n%s\n%-22s %-8s", title, "contender", "body")
	for _, l := range loads {
		fmt.Fprintf(w, " %17s", fmt.Sprintf("%d%%", l))
	}
	fmt.Fprintln(w)
	for _, r := range results {
		fmt.Fprintf(w, "%-22s %-8s", r.Contender, r.Body)
		for _, l := range loads {
			text := "-"
			for _, x := range r.Latency {
				if x.LoadPct == l {
					text = cell(x)
				}
			}
			fmt.Fprintf(w, " %17s", text)
		}
		fmt.Fprintln(w)
	}
}
