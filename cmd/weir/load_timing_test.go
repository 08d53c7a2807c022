package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/weirgw/weir/proxy"
	"github.com/weirgw/weir/proxy/config"
)

// Start-up at scale (README.md, Scale): what `weir run` does before it
// listens, on a config of many key_auth consumers. WEIR_LOAD_CONSUMERS
// sets how many (100,000 unless given).

func writeConsumers(tb testing.TB, dir, ext string, n int) string {
	tb.Helper()
	var b bytes.Buffer
	b.Grow(n * 100)
	if ext == ".json" {
		b.WriteString(`{"listen":["127.0.0.1:0"],"services":[{"name":"a","targets":[{"url":"http://127.0.0.1:9"}]}],` +
			`"routes":[{"name":"keyed","paths":["/keyed"],"service":"a","plugins":[{"name":"key_auth"}]}],"consumers":[`)
		for i := range n {
			if i > 0 {
				b.WriteString(",\n")
			}
			fmt.Fprintf(&b, `{"name":"c%07d","credentials":{"key_auth":[{"key":"key-%07d-abcdefghijklmnop"}]}}`, i, i)
		}
		b.WriteString("]}\n")
	} else {
		b.WriteString("listen: [\"127.0.0.1:0\"]\nservices:\n  - name: a\n    targets: [{url: \"http://127.0.0.1:9\"}]\n" +
			"routes:\n  - name: keyed\n    paths: [/keyed]\n    service: a\n    plugins: [{name: key_auth}]\nconsumers:\n")
		for i := range n {
			fmt.Fprintf(&b, "  - name: c%07d\n    credentials:\n      key_auth:\n        - key: key-%07d-abcdefghijklmnop\n", i, i)
		}
	}
	file := filepath.Join(dir, "weir"+ext)
	if err := os.WriteFile(file, b.Bytes(), 0o600); err != nil {
		tb.Fatal(err)
	}
	return file
}

func BenchmarkStartConsumers(b *testing.B) {
	n := 100_000
	if s := os.Getenv("WEIR_LOAD_CONSUMERS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	for _, ext := range []string{".json", ".yaml"} {
		b.Run(ext[1:], func(b *testing.B) {
			file := writeConsumers(b, b.TempDir(), ext, n)
			b.ReportAllocs()
			// CPU time of the whole process (the collector's included):
			// on a shared machine a steadier figure than the wall time.
			var before, after syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
			for b.Loop() {
				cfg, _, err := loadRunConfig(&config.Reader{}, file, "")
				if err != nil {
					b.Fatal(err)
				}
				srv, err := proxy.New(cfg, file, slog.New(slog.DiscardHandler))
				if err != nil {
					b.Fatal(err)
				}
				_ = srv
			}
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
			cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
			b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
		})
	}
}
