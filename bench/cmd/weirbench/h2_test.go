package main

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestSmokeH2 runs `weirbench -h2` tiny, with the real weir binary, nginx
// and h2load: both proxies must answer every h2load request 2xx over h2c
// and over TLS (h2 through ALPN) with 1 and 100 streams per connection,
// carry gRPC unary calls closed loop and open loop, and the table must
// hold a positive rate and CPU figure for each of the twelve rows, a p99
// for the open-loop rows and the direct row they are compared with.
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
	rows := map[string]int{}
	for _, l := range strings.Split(table.String(), "\n") {
		f := strings.Fields(l)
		if len(f) < 9 || f[0] != "weir" && f[0] != "nginx" && f[0] != "direct" {
			continue
		}
		// proxy, row words..., round, requests/s, CPU, p50, p99, added p99, late p99
		num := func(back int) float64 {
			v, err := strconv.ParseFloat(f[len(f)-back], 64)
			if err != nil {
				t.Fatalf("row %q: %v", l, err)
			}
			return v
		}
		rps, cpu, p99 := num(6), num(5), num(3)
		open := strings.Contains(l, grpcOpenRow)
		switch {
		case rps <= 0:
			t.Errorf("row %q: requests/s %v, want positive", l, rps)
		case f[0] != "direct" && cpu <= 0:
			t.Errorf("row %q: CPU %v, want positive", l, cpu)
		case open && p99 <= 0:
			t.Errorf("row %q: p99 %v, want positive", l, p99)
		}
		if f[0] == "direct" && !open {
			t.Errorf("row %q: only the open-loop row goes direct", l)
		}
		rows[f[0]]++
		if strings.Contains(l, "h2 TLS") {
			rows[f[0]+" TLS"]++
		}
	}
	want := map[string]int{"weir": 6, "nginx": 6, "direct": 1, "weir TLS": 2, "nginx TLS": 2}
	for k, n := range want {
		if rows[k] != n {
			t.Errorf("%d %s rows, want %d", rows[k], k, n)
		}
	}
	if !strings.Contains(table.String(), "open loop at ") {
		t.Error("the table does not say the open loop's rate")
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
