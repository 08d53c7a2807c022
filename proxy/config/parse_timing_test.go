package config

import (
	"os"
	"path/filepath"
	"testing"
)

// Config loading is not on the request path, but reloads and admin API
// changes run it while traffic flows; these keep its cost visible.

func benchDoc(b *testing.B, name string) []byte {
	b.Helper()
	data, err := os.ReadFile(filepath.Join(goldenDir, "valid", name))
	if err != nil {
		b.Fatal(err)
	}
	return data
}

func BenchmarkParseYAML(b *testing.B) {
	data := benchDoc(b, "spec_example.yaml")
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ParseEnv("spec_example.yaml", data, goldenEnv); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseJSON(b *testing.B) {
	data := benchDoc(b, "full.json")
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ParseEnv("full.json", data, goldenEnv); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDefaultsAndValidate(b *testing.B) {
	c, err := ParseEnv("spec_example.yaml", benchDoc(b, "spec_example.yaml"), goldenEnv)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		x := c.Clone()
		ApplyDefaults(x)
		if err := Validate(x, "spec_example.yaml"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMasked(b *testing.B) {
	c, err := ParseEnv("spec_example.yaml", benchDoc(b, "spec_example.yaml"), goldenEnv)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		c.Masked()
	}
}
