package proxy

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weirgw/weir/proxy/config"

	_ "github.com/weirgw/weir/plugins/response_transformer"
)

// scaleConfig writes a config of n routes, each on its own path with its
// own response_transformer (a plugin instance per route, as real configs
// have), all to one service, in YAML or JSON. gen is route 0's X-Gen
// header, so that successive configs differ in exactly one route.
func scaleConfig(n, gen int, asJSON bool) []byte {
	var b strings.Builder
	if asJSON {
		b.WriteString(`{"listen": "127.0.0.1:0", "services": [{"name": "echo", "targets": [{"url": "http://127.0.0.1:9"}]}], "routes": [`)
	} else {
		b.WriteString("listen: 127.0.0.1:0\nservices:\n  - name: echo\n    targets: [{url: \"http://127.0.0.1:9\"}]\nroutes:\n")
	}
	for i := 0; i < n; i++ {
		v := i
		if i == 0 {
			v = gen
		}
		if asJSON {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"name": "r%d", "paths": ["/r%d/{id}"], "service": "echo", "plugins": [{"name": "response_transformer", "config": {"set": {"headers": {"X-Gen": "%d"}}}}]}`+"\n", i, i, v)
		} else {
			fmt.Fprintf(&b, "  - name: r%d\n    paths: [\"/r%d/{id}\"]\n    service: echo\n    plugins:\n      - name: response_transformer\n        config: {set: {headers: {X-Gen: \"%d\"}}}\n", i, i, v)
		}
	}
	if asJSON {
		b.WriteString("]}")
	}
	return []byte(b.String())
}

func scaleFile(asJSON bool) string {
	if asJSON {
		return "weir.json"
	}
	return "weir.yaml"
}

// parseScale reads a scaleConfig text as a reload of cmd/weir does.
func parseScale(tb testing.TB, data []byte, asJSON bool) *config.Config {
	cfg, err := config.CheckAdjusted(scaleFile(asJSON), data, nil, nil, PluginChecker(scaleFile(asJSON)))
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

// cpuTime is the process's CPU time (user and system, every thread): on
// a shared machine, CPU time per operation is the figure that does not
// depend on what else runs; ns/op does.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds cpu-ms/op, the process CPU time since start per op.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

func scaleServer(tb testing.TB, n int) *Server {
	srv, err := New(parseScale(tb, scaleConfig(n, -1, true), true), "weir.json", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { srv.retireWG.Wait() })
	return srv
}

// BenchmarkApplyOneRouteChange10K: Server.Apply of a 10,000-route config
// in which one route changed (validate, compile, start, swap); the
// parsing of the file is BenchmarkReloadOneRouteChange10K's.
func BenchmarkApplyOneRouteChange10K(b *testing.B) {
	const n = 10000
	srv := scaleServer(b, n)
	cfgs := [2]*config.Config{parseScale(b, scaleConfig(n, 1, true), true), parseScale(b, scaleConfig(n, 2, true), true)}
	b.ReportAllocs()
	b.ResetTimer()
	var cpu time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		cfg := cfgs[i%2].Clone()
		c0 := cpuTime()
		b.StartTimer()
		if err := srv.Apply(cfg, "weir.json"); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - c0
	}
	b.ReportMetric(float64(cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

// BenchmarkReloadOneRouteChange10K: the reload path of cmd/weir minus the
// file read (config.Reader.CheckAdjusted, then Server.ApplyChecked), from the text of a 10,000-route config in which one route
// changed to the swapped snapshot.
func BenchmarkReloadOneRouteChange10K(b *testing.B) {
	const n = 10000
	for _, asJSON := range []bool{false, true} {
		b.Run(strings.TrimPrefix(scaleFile(asJSON), "weir."), func(b *testing.B) {
			srv := scaleServer(b, n)
			texts := [2][]byte{scaleConfig(n, 1, asJSON), scaleConfig(n, 2, asJSON)}
			// cmd/weir reads its file through a Reader from the start.
			rd := &config.Reader{}
			read := func(text []byte) *config.Config {
				cfg, err := rd.CheckAdjusted(scaleFile(asJSON), text, nil, nil, PluginChecker(scaleFile(asJSON)))
				if err != nil {
					b.Fatal(err)
				}
				return cfg
			}
			read(scaleConfig(n, -1, asJSON))
			b.ReportAllocs()
			b.ResetTimer()
			c0 := cpuTime()
			for i := 0; i < b.N; i++ {
				if err := srv.ApplyChecked(read(texts[i%2]), scaleFile(asJSON)); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, c0)
		})
	}
}
