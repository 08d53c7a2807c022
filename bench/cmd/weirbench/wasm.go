package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// benchWasmModules are the Proxy-Wasm filters the wasm scenarios run,
// built from the repository with the standard Go toolchain (as a plugin
// author builds them): the file name under {{WASM}}, the Go module's
// directory and the package in it.
var benchWasmModules = []struct{ file, dir, pkg string }{
	// A filter written without an SDK (//go:wasmexport): the repo's example.
	{"headers.wasm", "plugins/wasm/examples/headers", "."},
	// Filters written against the Proxy-Wasm Go SDK, as the e2e suite's.
	{"sdk_http_headers.wasm", "e2e/testdata/proxywasm", "./http_headers"},
	{"sdk_body_rewrite.wasm", "e2e/testdata/proxywasm", "./body_rewrite"},
}

// buildBenchWasm builds benchWasmModules from the repository at repo
// into out.
func buildBenchWasm(repo, out string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	out, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	for _, m := range benchWasmModules {
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-o", filepath.Join(out, m.file), m.pkg)
		cmd.Dir = filepath.Join(repo, m.dir)
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOWORK=off", "GOFLAGS=", "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s in %s: %v\n%s", m.pkg, m.dir, err, b)
		}
	}
	return nil
}
