package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite configs/golden/validate/*.err from the current output")

// TestValidateGolden runs what `weir validate` runs (loadConfig, with the
// real plugins) on configs/golden/validate/*.yaml and compares the errors
// with the .err file next to each: every stage's errors, plugins'
// included, in one run.
func TestValidateGolden(t *testing.T) {
	dir, err := filepath.Abs("../../configs/golden/validate")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if len(files) < 2 {
		t.Fatalf("only %d golden files in %s", len(files), dir)
	}
	// File names in the errors are as given: relative to dir.
	t.Chdir(dir)
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			_, _, err := loadConfig(name, "")
			if err == nil {
				t.Fatal("want errors, got a valid config")
			}
			got := err.Error() + "\n"
			errFile := strings.TrimSuffix(name, ".yaml") + ".err"
			if *update {
				if err := os.WriteFile(errFile, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, rerr := os.ReadFile(errFile)
			if rerr != nil {
				t.Fatalf("%v (run go test -run ValidateGolden -update to create it, then review it)", rerr)
			}
			if got != string(want) {
				t.Fatalf("errors differ\n--- got\n%s--- want\n%s", got, want)
			}
		})
	}
}
