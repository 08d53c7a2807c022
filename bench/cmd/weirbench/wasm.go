package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/weirgw/weir/internal/wasmasm"
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
	{"sdk_request_body_rewrite.wasm", "e2e/testdata/proxywasm", "./request_body_rewrite"},
}

// handHeadersWasm is the file name under {{WASM}} of the hand-written
// header filter (wasmasm.HeaderFilter: no language runtime in the guest),
// assembled with the headers the Go example's scenario configures.
const handHeadersWasm = "hand_headers.wasm"

// buildBenchWasm builds benchWasmModules from the repository at repo
// into out, and writes the hand-written filter there too.
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
	hand := wasmasm.HeaderFilter("X-Wasm", "yes", "X-Wasm-Filter", "headers")
	return os.WriteFile(filepath.Join(out, handHeadersWasm), hand, 0o644)
}
