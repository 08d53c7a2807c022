package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite configs/golden/invalid/*.err from the current output")

const goldenDir = "../../configs/golden"

// goldenEnv is the environment golden files see: fixed, so that the
// expected output does not depend on the machine.
func goldenEnv(name string) (string, bool) {
	v, ok := map[string]string{
		"WEIR_ADMIN_TOKEN": "golden-token",
		"GOLDEN_PORT":      "9001",
		"GOLDEN_RETRIES":   "3",
		"GOLDEN_EMPTY":     "",
	}[name]
	return v, ok
}

// load runs what `weir validate` runs in this package: config.Check
// (read, schema, defaults, validation in one pass; the plugins' own
// checks are the proxy's, see cmd/weir's golden test).
func load(t *testing.T, path string) (*Config, error) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return Check(filepath.Base(path), data, goldenEnv, nil)
}

func TestGoldenValid(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(goldenDir, "valid", "*"))
	if len(files) < 3 {
		t.Fatalf("only %d golden valid files", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := load(t, f)
			if err != nil {
				t.Fatalf("want valid, got:\n%v", err)
			}
			// The canonical form parses back to the same config.
			out, err := Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			c2, err := ParseEnv("canonical.json", out, nil)
			if err != nil {
				t.Fatalf("canonical form does not parse: %v\n%s", err, out)
			}
			out2, _ := Marshal(c2)
			if string(out) != string(out2) {
				t.Fatalf("canonical form is not stable:\n%s\n---\n%s", out, out2)
			}
		})
	}
}

func TestGoldenInvalid(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(goldenDir, "invalid", "*.yaml"))
	json, _ := filepath.Glob(filepath.Join(goldenDir, "invalid", "*.json"))
	files = append(files, json...)
	if len(files) < 5 {
		t.Fatalf("only %d golden invalid files", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := load(t, f)
			if err == nil {
				t.Fatal("want errors, got a valid config")
			}
			errFile := strings.TrimSuffix(f, filepath.Ext(f)) + ".err"
			got := err.Error() + "\n"
			if *update {
				if err := os.WriteFile(errFile, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, rerr := os.ReadFile(errFile)
			if rerr != nil {
				t.Fatalf("%v (run go test -run Golden -update to create it, then review it)", rerr)
			}
			if got != string(want) {
				t.Fatalf("errors differ\n--- got\n%s--- want\n%s", got, want)
			}
		})
	}
}
