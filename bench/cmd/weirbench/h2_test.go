package main

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestSmokeH2 runs `weirbench -h2` tiny, with the real weir binary, nginx
// and h2load: both proxies must answer every h2load request 2xx with 1 and
// 100 streams per connection and carry gRPC unary calls, and the table
// must hold a positive rate and CPU figure for each of the six rows.
func TestSmokeH2(t *testing.T) {
	requireTools(t, "apt-get install -y nginx nghttp2-client", "nginx", "h2load")
	weir := buildWeir(t)
	opts, err := parseOptions([]string{"-h2", "-quick", "-weir", weir, "-rounds", "1", "-duration", "1s", "-no-pin", "-no-rt"})
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	if code := runH2Bench(opts, &table); code != 0 {
		t.Fatalf("runH2Bench exit %d\n%s", code, table.String())
	}
	t.Log(table.String())
	rows := 0
	for _, l := range strings.Split(table.String(), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 || f[0] != "weir" && f[0] != "nginx" {
			continue
		}
		// proxy, row words..., round, requests/s, CPU, p50, p99
		rps, _ := strconv.ParseFloat(f[len(f)-4], 64)
		cpu, _ := strconv.ParseFloat(f[len(f)-3], 64)
		if rps <= 0 || cpu <= 0 {
			t.Errorf("row %q: requests/s %v, CPU %v; want both positive", l, rps, cpu)
		}
		rows++
	}
	if rows != 6 {
		t.Fatalf("%d rows, want 3 per proxy\n%s", rows, table.String())
	}
}

// requireTools skips the test when a tool is missing, and fails it under
// CI=true, where .ci/run installs them.
func requireTools(t *testing.T, install string, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if lookTool(tool) == "" {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not installed; .ci/run installs it", tool)
			}
			t.Skipf("%s is not installed (%s)", tool, install)
		}
	}
}
