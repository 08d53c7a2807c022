package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeBench builds a finished run without starting anything: direct,
// nginx and weir with made-up measurements over two rounds.
func fakeBench() *bench {
	o, _ := parseOptions([]string{"-bodies", "64B", "-loads", "25,50", "-rounds", "2"})
	r := &rig{opts: o, tools: map[string]string{}, skipped: []note{{"haproxy", "not installed (apt-get install -y haproxy)"}}}
	b := &bench{r: r, clk: 100, closed: "wrk", dur: 2 * time.Second, warm: time.Second, started: time.Now(),
		basis: map[string]rateBasis{"64B": {Contender: "nginx", RPS: 20000}}}
	mk := func(name, kind string, rps []float64, p99ms map[int][]float64, cpu float64, t *scenarioTargets) *cell {
		c := &cell{c: &contender{name: name, kind: kind, targets: []string{"x"}, bodies: []string{"64B"}, targetsS: t},
			body: "64B", loads: []int{25, 50}, lat: map[int][]openRun{}}
		for _, v := range rps {
			c.max = append(c.max, closedRun{RPS: v, Requests: int64(v) * 2, CPUus: cpu / 2})
		}
		for l, vs := range p99ms {
			for _, v := range vs {
				c.lat[l] = append(c.lat[l], openRun{Rate: 200 * float64(l), CPUus: cpu,
					Result: loadResult{P50us: v * 500, P99us: v * 1000, P999us: v * 2000, MaxUs: v * 3000, RPS: 200 * float64(l)}})
			}
		}
		return c
	}
	b.cells = []*cell{
		mk("direct", "direct", []float64{90000, 100000}, map[int][]float64{25: {0.1, 0.1}, 50: {0.2, 0.2}}, 5, nil),
		mk("nginx", "nginx", []float64{20000, 20000}, map[int][]float64{25: {0.3, 0.3}, 50: {0.4, 0.4}}, 20, nil),
		mk("weir", "weir", []float64{21000, 23000}, map[int][]float64{25: {0.5, 0.5}, 50: {0.6, 0.8}}, 16,
			&scenarioTargets{RPSRatio: 1, CPURatio: 1, AddedP99ms: 0.4}),
	}
	// The load CPUs were near saturation during weir's 50 % runs.
	for i, busy := range []float64{0.9, 0.94} {
		b.cells[2].lat[50][i].LoadBusy, b.cells[2].lat[50][i].ProxyBusy = busy, 0.65
	}
	b.cells[2].c.accuracy = &accuracySpec{Path: "/l", OfferedRPS: 1000, LimitRPS: 500, Burst: 50}
	b.cells[2].acc = []accuracyRun{{Ratio: 0.98}, {Ratio: 1.02}, {Ratio: 1.0}}
	return b
}

func TestReportMediansRatiosAndTargets(t *testing.T) {
	rep := fakeBench().report()
	if len(rep.Results) != 3 {
		t.Fatalf("%d results", len(rep.Results))
	}
	w := rep.Results[2]
	if w.MaxRPS != 22000 || w.MaxCPUus != 8 {
		t.Errorf("weir max RPS median = %v, CPU at max %v; want 22000 and 8", w.MaxRPS, w.MaxCPUus)
	}
	if w.RPSRatio == nil || *w.RPSRatio != 1.1 {
		t.Errorf("rps ratio = %v, want 1.1", w.RPSRatio)
	}
	if w.CPUus != 16 || w.CPURatio == nil || *w.CPURatio != 0.8 {
		t.Errorf("cpu %v ratio %v, want 16 and 0.8", w.CPUus, w.CPURatio)
	}
	// p99 at 50 %: weir median 0.7 ms, direct 0.2 ms, nginx 0.4 ms.
	if w.AddedP99 == nil || *w.AddedP99 < 0.499 || *w.AddedP99 > 0.501 {
		t.Errorf("added p99 = %v, want 0.5", w.AddedP99)
	}
	if w.P99Ratio == nil || *w.P99Ratio < 1.749 || *w.P99Ratio > 1.751 {
		t.Errorf("p99 ratio = %v, want 1.75", w.P99Ratio)
	}
	if rep.Results[0].AddedP99 != nil {
		t.Error("direct has an added latency over itself")
	}
	if len(w.Latency) != 2 || math.Abs(w.Latency[1].LoadBusy-0.92) > 1e-9 || w.Latency[1].ProxyBusy != 0.65 || w.Latency[0].LoadBusy != 0 {
		t.Errorf("busy medians: %+v", w.Latency)
	}
	if !slices.Contains(w.Problems, "50% load: the load CPUs (generator, backend) were 92% busy: latency includes their queueing, not only the contender's") {
		t.Errorf("no problem reported for the busy load CPUs: %q", w.Problems)
	}
	if w.Accuracy == nil || w.Accuracy.Ratio != 1.0 {
		t.Errorf("accuracy %+v", w.Accuracy)
	}
	got := map[string]bool{}
	for _, tc := range rep.Targets {
		got[tc.Goal] = tc.Passed
	}
	want := map[string]bool{
		"weir 64B: max RPS ÷ nginx ≥ 1":                              true,
		"weir 64B: CPU/request ÷ nginx ≤ 1":                          true,
		"weir 64B: p99 − direct's at 50% < 0.4 ms":                   false,
		"weir 64B: p99 − direct's never > 10 ms":                     true,
		"weir: rate-limit accuracy (allowed ÷ limit) within 0.9–1.1": true,
	}
	for g, passed := range want {
		if p, ok := got[g]; !ok || p != passed {
			t.Errorf("target %q: got %v (present %v), want %v; all: %v", g, p, ok, passed, got)
		}
	}
}

// TestTargetRounds: each round's ratio pairs with the nginx run next to
// it, and a verdict whose rounds fall on both sides of the limit says so.
func TestTargetRounds(t *testing.T) {
	b := fakeBench()
	b.cells[2].max[0].RPS = 19000 // rounds 0.95 and 1.15 of nginx's 20000; median 1.05
	rep := b.report()
	w := rep.Results[2]
	if !slices.Equal(w.RPSRatioRounds, []float64{0.95, 1.15}) || !slices.Equal(w.CPURatioRounds, []float64{0.8, 0.8}) {
		t.Fatalf("paired rounds: rps %v cpu %v", w.RPSRatioRounds, w.CPURatioRounds)
	}
	if rep.Results[1].RPSRatioRounds != nil {
		t.Errorf("nginx paired with itself: %v", rep.Results[1].RPSRatioRounds)
	}
	byGoal := map[string]targetCheck{}
	for _, tc := range rep.Targets {
		byGoal[tc.Goal] = tc
	}
	rps, cpu := byGoal["weir 64B: max RPS ÷ nginx ≥ 1"], byGoal["weir 64B: CPU/request ÷ nginx ≤ 1"]
	if !rps.Passed || !rps.WithinSpread || cpu.WithinSpread || !cpu.Passed {
		t.Errorf("rps %+v cpu %+v", rps, cpu)
	}
	var out bytes.Buffer
	printReport(&out, rep)
	for _, want := range []string{
		"met    weir 64B: max RPS ÷ nginx ≥ 1: 1.050 (rounds 0.950 1.150: on both sides of the limit, within the run-to-run spread)",
		"met    weir 64B: CPU/request ÷ nginx ≤ 1: 0.800 (rounds 0.800 0.800)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	// A round that failed (no figure) breaks the pairing rather than
	// pairing the wrong runs.
	if got := pairedRatios([]float64{1, 2}, []float64{1}); got != nil {
		t.Errorf("unequal rounds paired: %v", got)
	}
}

// TestPollingGeneratorProblems: behind a polling generator a send lag is
// the contender holding every connection, not the generator's queue; its
// own stalls are reported instead.
func TestPollingGeneratorProblems(t *testing.T) {
	b := fakeBench()
	for i := range b.cells[2].lat[50] {
		r := &b.cells[2].lat[50][i].Result
		r.LoopBusy, r.SendLagP99, r.LoopStalls, r.LoopStallMaxUs = 0.5, 5000, 2, 3000+float64(i)*1000
	}
	rep := b.report()
	w := rep.Results[2]
	var lr loadReport
	for _, l := range w.Latency {
		if l.LoadPct == 50 {
			lr = l
		}
	}
	if !lr.Polling || lr.LoopStalls != 4 || lr.LoopStallMaxMs != 4 {
		t.Fatalf("polling %v stalls %d longest %v", lr.Polling, lr.LoopStalls, lr.LoopStallMaxMs)
	}
	for _, p := range w.Problems {
		if strings.Contains(p, "generator sent late") {
			t.Errorf("a polling generator's lag reported as its own queueing: %q", p)
		}
	}
	if !slices.Contains(w.Problems, "50% load: the load loop was off its CPU 4 times for over 0.5 ms (longest 4.0 ms; another process or the hypervisor): requests due then waited") {
		t.Errorf("stalls not reported: %q", w.Problems)
	}
}

func TestRigLimitNotes(t *testing.T) {
	results := []cellReport{
		{Contender: "direct", Kind: "direct", Body: "64B", Latency: []loadReport{{LoadPct: 25, Rate: 5000, SendLagP99: 0.2}, {LoadPct: 75, Rate: 15000, SendLagP99: 4}}},
		{Contender: "weir", Kind: "weir", Body: "64B", Latency: []loadReport{{LoadPct: 75, SendLagP99: 9, LoadBusy: 0.99}}},
		{Contender: "nginx", Kind: "nginx", Body: "64B", Latency: []loadReport{{LoadPct: 25, Rate: 5000, LoadBusy: 0.5}, {LoadPct: 50, Rate: 10000, LoadBusy: 0.91}}},
	}
	got := rigLimitNotes(results)
	if len(got) != 2 || !strings.HasPrefix(got[0], "at 75% load (15,000 rps, 64B bodies) the load CPUs could not keep the schedule even with no proxy (direct: send lag p99 4.000 ms)") ||
		!strings.HasPrefix(got[1], "at 50% load (10,000 rps, 64B bodies) the load CPUs were 91% busy behind nginx") {
		t.Errorf("notes %q", got)
	}
}

// TestReportRatiosToPlainWeir: a plugin scenario's row carries its max
// RPS and CPU per request over the plain weir row's of the same body
// (for a POST1KiB row, the plain route's POST row), and prints them.
func TestReportRatiosToPlainWeir(t *testing.T) {
	b := fakeBench()
	plain := b.cells[2]
	plugin := &cell{c: &contender{name: "weir+wasm_request_body", kind: "weir", targets: []string{"x"}, bodies: []string{"64B"}},
		body: "64B", loads: []int{25, 50}, lat: map[int][]openRun{}}
	for range plain.max {
		plugin.max = append(plugin.max, closedRun{RPS: 11000, Requests: 22000, CPUus: 12})
	}
	for _, l := range []int{25, 50} {
		for range plain.lat[l] {
			plugin.lat[l] = append(plugin.lat[l], openRun{Rate: 200 * float64(l), CPUus: 24, Result: loadResult{P99us: 900, RPS: 200 * float64(l)}})
		}
	}
	b.cells = append(b.cells, plugin)
	rep := b.report()
	p := rep.Results[3]
	if p.RPSRatioWeir == nil || *p.RPSRatioWeir != 0.5 || p.CPURatioWeir == nil || *p.CPURatioWeir != 1.5 {
		t.Fatalf("ratios to weir: rps %v cpu %v, want 0.5 and 1.5", p.RPSRatioWeir, p.CPURatioWeir)
	}
	for _, r := range rep.Results[:3] {
		if r.RPSRatioWeir != nil || r.CPURatioWeir != nil {
			t.Errorf("%s has a ratio to the plain weir row", r.Contender)
		}
	}
	var out bytes.Buffer
	printReport(&out, rep)
	if !strings.Contains(out.String(), "  0.50/1.50") {
		t.Errorf("the table does not show 0.50/1.50:\n%s", out.String())
	}
}

func TestPrintReport(t *testing.T) {
	var out bytes.Buffer
	printReport(&out, fakeBench().report())
	s := out.String()
	for _, want := range []string{
		"constant rates for 64B are % of nginx's 20,000 rps",
		"weir                   64B         22,000    1.10",
		"0.80    1.75      8.0",
		"p99 / p99.9 ms at constant load",
		"rate-limit accuracy weir: 1.000",
		"CPU busy % (busiest), load CPUs / proxy CPUs, at constant load",
		"weir                   64B                      -           92 / 65",
		"MISSED weir 64B: p99 − direct's at 50% < 0.4 ms: 0.500",
		"skipped:\n  haproxy: not installed (apt-get install -y haproxy)",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
}

func TestWriteOutputs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "results")
	rep := fakeBench().report()
	if err := writeOutputs(dir, rep); err != nil {
		t.Fatal(err)
	}
	js, err := os.ReadFile(filepath.Join(dir, "latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back report
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Results) != 3 || back.Results[1].Contender != "nginx" || back.Skipped[0].What != "haproxy" {
		t.Errorf("json round trip: %+v", back)
	}
	svg, err := os.ReadFile(filepath.Join(dir, "latest.svg"))
	if err != nil {
		t.Fatal(err)
	}
	bars := chartBars(t, svg)
	for _, panel := range []string{"rps", "p99"} {
		if got, want := bars[panel], []string{"direct 64B", "nginx 64B", "weir 64B"}; !slices.Equal(got, want) {
			t.Errorf("panel %s has bars %q, want one per contender %q", panel, got, want)
		}
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(matches) > 0 {
		t.Errorf("temp files left: %v", matches)
	}
}

// chartBars reads an SVG chart as XML and returns, per panel (a <g>
// with an id), the "contender body" of each of its bars in order.
func chartBars(t *testing.T, svg []byte) map[string][]string {
	t.Helper()
	var doc struct {
		XMLName xml.Name `xml:"svg"`
		Groups  []struct {
			ID    string `xml:"id,attr"`
			Rects []struct {
				Class     string `xml:"class,attr"`
				Contender string `xml:"data-contender,attr"`
				Body      string `xml:"data-body,attr"`
				Width     int    `xml:"width,attr"`
			} `xml:"rect"`
		} `xml:"g"`
	}
	if err := xml.Unmarshal(svg, &doc); err != nil {
		t.Fatalf("the chart is not XML: %v\n%s", err, svg)
	}
	bars := map[string][]string{}
	for _, g := range doc.Groups {
		for _, r := range g.Rects {
			if r.Class != "bar" {
				continue
			}
			if r.Width < 1 {
				t.Errorf("panel %s: bar %s %s has width %d", g.ID, r.Contender, r.Body, r.Width)
			}
			bars[g.ID] = append(bars[g.ID], r.Contender+" "+r.Body)
		}
	}
	return bars
}

// TestChartEscapesAndSkipsUnmeasured: a name that is markup stays text,
// and a row without a figure gets no bar.
func TestChartEscapesAndSkipsUnmeasured(t *testing.T) {
	rep := fakeBench().report()
	rep.Results[1].Contender = `ng<i>nx & "co"`
	rep.Results[0].MaxRPS = 0
	svg, err := renderChart(rep)
	if err != nil {
		t.Fatal(err)
	}
	bars := chartBars(t, svg)
	if got, want := bars["rps"], []string{`ng<i>nx & "co" 64B`, "weir 64B"}; !slices.Equal(got, want) {
		t.Errorf("rps bars %q, want %q", got, want)
	}
	if !bytes.Contains(svg, []byte("not measured")) {
		t.Error("the unmeasured row does not say so")
	}
}

func TestPlanAlternatesContenders(t *testing.T) {
	b := fakeBench()
	steps := b.plan(nil)
	var order []string
	for _, s := range steps {
		if s.phase == "max" {
			order = append(order, s.cell.c.name)
		}
	}
	if strings.Join(order, " ") != "direct nginx weir direct nginx weir" {
		t.Errorf("max phase order: %v", order)
	}
	var lat []string
	for _, s := range steps {
		if s.phase == "latency" && s.round == 1 {
			lat = append(lat, s.cell.c.name+"@"+itoa(s.load))
		}
	}
	if strings.Join(lat, " ") != "direct@25 nginx@25 weir@25 direct@50 nginx@50 weir@50" {
		t.Errorf("latency order: %v", lat)
	}
	if steps[0].phase != "warmup" || steps[len(steps)-1].phase != "accuracy" {
		t.Errorf("first %s last %s", steps[0].phase, steps[len(steps)-1].phase)
	}
}

func TestFitBudget(t *testing.T) {
	b := fakeBench()
	b.r.opts.budget = 20 * time.Second
	b.r.opts.duration = 4 * time.Second
	steps := b.plan(nil)
	b.fitBudget(steps)
	if b.dur != time.Second {
		t.Errorf("duration %s, want 1s (wrk takes whole seconds)", b.dur)
	}
	if len(b.notes) == 0 || !strings.Contains(b.notes[0], "runs shortened from 4s to 1s") {
		t.Errorf("notes %v", b.notes)
	}
	b = fakeBench()
	b.closed = "builtin"
	b.r.opts.duration = 1500 * time.Millisecond
	b.r.opts.budget = time.Hour
	b.fitBudget(b.plan(nil))
	if b.dur != 1500*time.Millisecond {
		t.Errorf("duration %s changed within budget", b.dur)
	}
}

func itoa(n int) string { return strings.TrimSpace(fmtInt(float64(n))) }
