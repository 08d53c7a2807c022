package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSmokeTinyRun runs the whole harness the way `make bench` does, only
// tiny: the real weir binary (gateway and echo backend), direct and plain
// Weir, one round of one-second runs, no nginx or HAProxy needed. It
// keeps the harness from rotting: the config it writes must still be
// accepted, the processes must start, the generators must measure, and
// the JSON and the SVG chart must come out. A scenario that `weir validate`
// refuses must be skipped with the reason, not fail the run.
func TestSmokeTinyRun(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("the harness reads /proc; not on this system")
	}
	start := time.Now()
	weir := buildWeir(t)

	scen := t.TempDir()
	plain, err := os.ReadFile(filepath.Join("..", "..", "scenarios", "00-weir.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(scen, "00-weir.yaml"), plain, 0o644); err != nil {
		t.Fatal(err)
	}
	bogus := strings.Replace(string(plain), "name: weir\n", "name: weir+bogus\n", 1)
	bogus = strings.Replace(bogus, "      service: backend\n", "      service: backend\n      plugins: [{name: no_such_plugin}]\n", 1)
	if err := os.WriteFile(filepath.Join(scen, "90-bogus.yaml"), []byte(bogus), 0o644); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(t.TempDir(), "results")
	opts, err := parseOptions([]string{
		"-weir", weir, "-scenarios", scen, "-out", out,
		"-only", "direct,weir,weir+bogus", "-bodies", "64B",
		"-rounds", "1", "-duration", "1s", "-warmup", "0", "-loads", "50", "-conns", "16",
	})
	if err != nil {
		t.Fatal(err)
	}
	rep, table := smokeRun(t, opts)
	t.Logf("smoke run took %s\n%s", time.Since(start).Round(time.Millisecond), table)
	got := map[string]cellReport{}
	for _, r := range rep.Results {
		got[r.Contender] = r
	}
	for _, name := range []string{"direct", "weir"} {
		r, ok := got[name]
		if !ok {
			t.Errorf("no result for %s", name)
			continue
		}
		if r.MaxRPS <= 0 {
			t.Errorf("%s: max RPS %v", name, r.MaxRPS)
		}
		if len(r.Latency) != 1 || r.Latency[0].LoadPct != 50 || r.Latency[0].AchievedRPS <= 0 || r.Latency[0].P99ms <= 0 {
			t.Errorf("%s: latency %+v", name, r.Latency)
		}
		// direct's process also runs the generator: no CPU per request
		// at a constant rate, only at max (wrk apart).
		if (r.CPUus <= 0) != (name == "direct") || r.MaxCPUus <= 0 {
			t.Errorf("%s: CPU per request %v, at max %v", name, r.CPUus, r.MaxCPUus)
		}
		if rep.Settings.Pinned && r.Latency[0].LoadBusy <= 0 {
			t.Errorf("%s: no busy share of the load side: %+v", name, r.Latency[0])
		}
	}
	if _, ok := got["weir+bogus"]; ok {
		t.Error("the refused scenario was measured")
	}
	skipped := false
	for _, n := range rep.Skipped {
		if n.What == "weir+bogus" && strings.Contains(n.Why, "weir validate refused") && strings.Contains(n.Why, "no_such_plugin") {
			skipped = true
		}
	}
	if !skipped {
		t.Errorf("weir+bogus not reported as skipped with validate's reason: %+v", rep.Skipped)
	}
	if rep.RateBasis["64B"].Contender != "weir" {
		t.Errorf("without nginx the rates must be based on weir, got %+v", rep.RateBasis)
	}
	if !strings.Contains(table, "weir+bogus: weir validate refused") {
		t.Errorf("the table does not say what was skipped:\n%s", table)
	}

	svg, err := os.ReadFile(filepath.Join(out, "latest.svg"))
	if err != nil {
		t.Fatal(err)
	}
	if bars := chartBars(t, svg); len(bars["rps"]) != len(rep.Results) {
		t.Errorf("latest.svg has rps bars %q for %d results", bars["rps"], len(rep.Results))
	}
}

// TestSmokeWasmRequestBodyRow runs the shipped scenarios weir and
// weir+wasm_request_body on their POST1KiB rows, tiny, with the real
// binary: the harness builds the Go SDK request-body filter, both
// contenders answer the POSTed 1 KiB body, none with a non-2xx (a filter
// that broke the framing would show as 4xx/5xx answers or errors), and
// the plugin row carries its ratios to the plain route's POST row.
func TestSmokeWasmRequestBodyRow(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("the harness reads /proc; not on this system")
	}
	weir := buildWeir(t)
	out := filepath.Join(t.TempDir(), "results")
	opts, err := parseOptions([]string{
		"-weir", weir, "-scenarios", filepath.Join("..", "..", "scenarios"), "-out", out,
		"-only", "weir,weir+wasm_request_body", "-bodies", "POST1KiB",
		"-rounds", "1", "-duration", "1s", "-warmup", "0", "-loads", "50", "-loads-1k", "50", "-conns", "16",
	})
	if err != nil {
		t.Fatal(err)
	}
	rep, table := smokeRun(t, opts)
	t.Logf("%s", table)
	got := map[string]cellReport{}
	for _, r := range rep.Results {
		got[r.Contender+" "+r.Body] = r
	}
	for _, key := range []string{"weir POST1KiB", "weir+wasm_request_body POST1KiB"} {
		r, ok := got[key]
		switch {
		case !ok:
			t.Errorf("no result for %s (have %v)", key, rep.Results)
		// More than 1 % errors fails the run (runBench's exit); a few
		// requests still in flight when a constant-rate run ends are the
		// loaded machine's, but a single non-2xx answer is the contender's.
		case r.MaxRPS <= 0 || len(r.MaxRounds) != 1:
			t.Errorf("%s: max RPS %v, rounds %+v", key, r.MaxRPS, r.MaxRounds)
		case len(r.Latency) != 1 || r.Latency[0].AchievedRPS <= 0 || r.Latency[0].Non2xx > 0:
			t.Errorf("%s: latency %+v", key, r.Latency)
		}
	}
	if r := got["weir+wasm_request_body POST1KiB"]; r.RPSRatioWeir == nil || r.CPURatioWeir == nil {
		t.Errorf("the plugin row has no ratio to the plain POST row: %+v", r)
	}
	if len(rep.Failed) > 0 || len(rep.Skipped) > 0 {
		t.Errorf("failed %+v, skipped %+v", rep.Failed, rep.Skipped)
	}
}

// smokeRun runs the harness with opts, which must succeed, and returns
// the report it wrote (latest.json) and the table it printed.
func smokeRun(t *testing.T, opts options) (report, string) {
	t.Helper()
	var table bytes.Buffer
	if code := runBench(opts, &table); code != 0 {
		t.Fatalf("runBench exit %d\n%s", code, table.String())
	}
	var rep report
	js, err := os.ReadFile(filepath.Join(opts.out, "latest.json"))
	if err == nil {
		err = json.Unmarshal(js, &rep)
	}
	if err != nil {
		t.Fatal(err)
	}
	return rep, table.String()
}

// buildWeir builds the gateway binary from this checkout into a temp dir.
func buildWeir(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to build bin/weir")
	}
	mod, err := exec.Command(goBin, "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(mod)))
	bin := filepath.Join(t.TempDir(), "weir")
	cmd := exec.Command(goBin, "build", "-o", bin, "./cmd/weir")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/weir: %v\n%s", err, out)
	}
	return bin
}

// TestShippedLuaScenariosValidate: the Lua scenarios issue 20 asks for
// (an access setting one header, the same from a Kong plugin through
// kong.service.request.set_header, a body_filter rewriting a 1 KiB body)
// are shipped, and `weir validate` accepts each as the harness renders it
// (the Kong plugin's folder through {{SCENARIOS}}). A refused scenario
// would only be reported as a skip by a bench run.
func TestShippedLuaScenariosValidate(t *testing.T) {
	list, err := loadScenarios(filepath.Join("..", "..", "scenarios"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"weir+lua_header": true, "weir+lua_kong_header": true, "weir+lua_body": true}
	weir := buildWeir(t)
	for _, s := range list {
		if !want[s.Name] {
			continue
		}
		delete(want, s.Name)
		file := filepath.Join(t.TempDir(), "weir.yaml")
		if err := os.WriteFile(file, []byte(s.render("127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4")), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(weir, "validate", "-c", file).CombinedOutput(); err != nil {
			t.Errorf("%s: weir validate: %v\n%s", s.Name, err, out)
		}
	}
	for name := range want {
		t.Errorf("scenario %s is not shipped", name)
	}
}
