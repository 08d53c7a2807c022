package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSmokeShape runs `weirbench -shape` tiny, with the real weir binary,
// nginx and wrk: three of its rows (10 KiB GET on the harness backend, a
// 1 KiB POST through nginx static files with sendfile, the
// many-connections row with 1,000), one round of one second. It keeps the users'-shape rows
// from rotting: every proxy and backend must start and answer 10 KiB, the
// POST must be answered 200, the many connections must be served without
// errors by both proxies with their RSS sampled, and the table and JSON
// must come out.
func TestSmokeShape(t *testing.T) {
	requireTools(t, "apt-get install -y nginx wrk", "nginx", "wrk")
	start := time.Now()
	weir := buildWeir(t)
	out := filepath.Join(t.TempDir(), "results")
	opts, err := parseOptions([]string{"-shape", "-weir", weir, "-out", out,
		"-only", "GET 10KiB · own · c64 · FIFO,POST 1KiB→10KiB · nginx sendfile,c1000 ", "-many", "1000",
		"-rounds", "1", "-duration", "1s"})
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	if code := runShapeBench(opts, &table); code != 0 {
		t.Fatalf("runShapeBench exit %d\n%s", code, table.String())
	}
	t.Logf("shape smoke run took %s\n%s", time.Since(start).Round(time.Millisecond), table.String())
	for _, want := range []string{"| GET 10KiB · own · c64 · FIFO |", "| POST 1KiB→10KiB · nginx sendfile · c64 · FIFO |", "GET 64B · own · c1000 · FIFO: RSS Weir"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("the table lacks %q", want)
		}
	}
	js, err := os.ReadFile(filepath.Join(out, "shape-latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep shapeReport
	if err := json.Unmarshal(js, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 6 {
		t.Fatalf("%d results, want 3 rows × 2 proxies", len(rep.Results))
	}
	for _, r := range rep.Results {
		if len(r.RPS) != 1 || r.RPS[0] <= 0 || len(r.CPUus) != 1 || r.CPUus[0] <= 0 {
			t.Errorf("%s %s: rps %v cpu %v, want one positive figure each", r.Row, r.Contender, r.RPS, r.CPUus)
		}
		if strings.Contains(r.Row, "c1000 ") && (len(r.RSSMiB) != 1 || r.RSSMiB[0] <= 0) {
			t.Errorf("%s %s: RSS %v, want a sample", r.Row, r.Contender, r.RSSMiB)
		}
	}
}

// TestShapeRowsDoNotShareStatefulInstances: a row never runs on a proxy
// that the many-connections row or a row of another answer size has
// used, so no row is charged for what an earlier one left behind.
func TestShapeRowsDoNotShareStatefulInstances(t *testing.T) {
	byInstance := map[string][]shapeRow{}
	for _, row := range shapeRows() {
		byInstance[row.instance()] = append(byInstance[row.instance()], row)
	}
	for key, rows := range byInstance {
		for _, r := range rows[1:] {
			if r.many || rows[0].many {
				t.Errorf("%s: the many-connections row shares its proxies with %q", key, r.name)
			}
			if r.path != rows[0].path {
				t.Errorf("%s: %q (%s) and %q (%s) share proxies", key, rows[0].name, rows[0].path, r.name, r.path)
			}
			if r.setup != rows[0].setup {
				t.Errorf("%s: %q and %q differ in setup", key, rows[0].name, r.name)
			}
		}
	}
	if k := shapeRows()[0].instance(); !strings.Contains(k, "own-fifo-1") {
		t.Errorf("instance %q does not name its setup", k)
	}
}
