package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWasmModuleStartsFromTheCompilationCache: a Go module compiled cold
// at a gateway's start is written to server.wasm_cache_dir; a reload that
// starts new instances of it (the plugin's config changed) and a restart
// on the same directory compile nothing: the directory gets no new or
// rewritten file, and each takes less than half the CPU (utime+stime,
// which a loaded machine does not stretch the way it stretches wall time)
// of the cold start.
//
// CI runs it with a Go SDK filter (~3 MB). WEIR_E2E_LARGE_WASM=1 runs it
// with the ~30 MB WAF of testdata/proxywasm_waf (the Proxy-Wasm Go SDK
// and Coraza, plain Go: the large module of plugins/wasm/README.md's
// start-up figures), which also must deny a request the WAF's rules
// catch; building it and compiling it cold take minutes on a loaded
// machine.
func TestWasmModuleStartsFromTheCompilationCache(t *testing.T) {
	module := buildSDKFilter(t, "http_headers")
	large := os.Getenv("WEIR_E2E_LARGE_WASM") != ""
	if large {
		module = buildGoWasm(t, "testdata/proxywasm_waf", ".", "no_fs_access")
		if fi, err := os.Stat(module); err != nil || fi.Size() < 25<<20 {
			t.Fatalf("the WAF module is not the large module it should be: %v %v", fi.Size(), err)
		}
	}
	up := startEcho(t, "e1")
	dir := filepath.Join(t.TempDir(), "wasm-cache")
	cfg := func(pool string) string {
		return "server: {wasm_cache_dir: " + dir + "}\n" + sdkRoute(up, "", module, "          pool_size: "+pool+"\n")
	}
	files := func() map[string]time.Time {
		out := map[string]time.Time{}
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if fi, err := d.Info(); err == nil {
					out[p] = fi.ModTime()
				}
			}
			return nil
		})
		return out
	}
	unchanged := func(what string, before map[string]time.Time) {
		t.Helper()
		after := files()
		if len(after) != len(before) {
			t.Fatalf("%s compiled again: %d cached files, then %d", what, len(before), len(after))
		}
		for p, m := range before {
			if !after[p].Equal(m) {
				t.Fatalf("%s rewrote %s", what, p)
			}
		}
	}
	start := func() (*weir, time.Duration) {
		t.Helper()
		w := &weir{t: t, Addr: freeAddr(t), Admin: freeAddr(t), ready: 10 * time.Minute}
		w.File = filepath.Join(t.TempDir(), "weir.yaml")
		w.write(cfg("2"))
		w.launch(false)
		cpu := procCPU(t, w.cmd.Process.Pid)
		if code, _, _ := get(t, newClient(w.Addr), "/x", nil); code != 200 {
			t.Fatalf("GET /x: %d\n%s", code, w.Logs())
		}
		if large {
			if code, body, _ := get(t, newClient(w.Addr), "/x?q=%3Cscript%3Ealert(1)", nil); code != 403 {
				t.Fatalf("the WAF let a script tag through: %d %q", code, body)
			}
		}
		return w, cpu
	}
	stop := func(w *weir) {
		_ = w.cmd.Process.Kill()
		if !w.waitExit(10 * time.Second) {
			t.Fatal("weir did not exit")
		}
	}

	w, cold := start()
	compiled := files()
	if len(compiled) == 0 {
		t.Fatalf("nothing was cached in %s", dir)
	}
	before := procCPU(t, w.cmd.Process.Pid)
	w.write(cfg("3"))
	w.waitVersionWithin(2, 5*time.Minute)
	reload := procCPU(t, w.cmd.Process.Pid) - before
	unchanged("the reload", compiled)
	if code, _, _ := get(t, newClient(w.Addr), "/x", nil); code != 200 {
		t.Fatalf("after the reload, GET /x: %d", code)
	}
	stop(w)

	w2, warm := start()
	unchanged("the restart", compiled)
	stop(w2)
	t.Logf("module %s: cold start %v of CPU, reload (new instances) %v, warm restart %v", filepath.Base(module), cold, reload, warm)
	if warm*2 > cold || reload*2 > cold {
		t.Fatalf("a start from the cache should take well under the cold start's CPU: cold %v, reload %v, warm restart %v", cold, reload, warm)
	}
}
