package main

import (
	"os"
	"path/filepath"
	"testing"

	_ "github.com/weirgw/weir/plugins/all"
	"github.com/weirgw/weir/proxy"
	"github.com/weirgw/weir/proxy/config"
)

// TestWasmScenariosConfigure builds the wasm scenarios' modules as a run
// does and checks each scenario's rendered config the way `weir
// validate` does (the modules are compiled and one instance of each
// starts).
func TestWasmScenariosConfigure(t *testing.T) {
	list, err := loadScenarios(filepath.Join("..", "..", "scenarios"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := buildBenchWasm(filepath.Join("..", "..", ".."), dir); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, s := range list {
		if !s.needsWasm {
			continue
		}
		names[s.Name] = true
		s.wasmDir = dir
		file := filepath.Join(dir, s.Name+".yaml")
		data := []byte(s.render("127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", ""))
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Parse(file, data)
		if err == nil {
			err = proxy.Validate(cfg, file)
		}
		if err != nil {
			t.Errorf("%s: %v\n%s", s.Name, err, data)
		}
	}
	for _, want := range []string{"weir+wasm_header", "weir+wasm_header_hand", "weir+wasm_sdk_headers", "weir+wasm_body", "weir+wasm_request_body"} {
		if !names[want] {
			t.Errorf("scenario %s missing or not using {{WASM}} (have %v)", want, names)
		}
	}
}
