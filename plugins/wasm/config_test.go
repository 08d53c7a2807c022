package wasm

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/weirgw/weir/sdk"
)

// minimal is the smallest module this host accepts, with edit applied
// before it is assembled.
func minimal(edit func(a *asm)) []byte {
	a := &asm{}
	if edit != nil {
		edit(a)
	}
	if len(a.Funcs) == 0 {
		proxyBase(a)
		a.Func("proxy_on_configure", i32x(2), i32x(1), ci32(1))
	}
	a.Func("proxy_on_request_headers", i32x(3), i32x(1), ci32(0))
	return a.Bytes()
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ok := write("ok.wasm", minimal(nil))
	text := write("text.wasm", []byte("hello, not wasm"))
	wat := write("filter.wat", []byte("(module\n  (func $f))\n"))
	garbage := write("garbage.wasm", []byte("\x00asm\x01\x00\x00\x00\xff\xff"))
	noABI := write("noabi.wasm", (&asm{}).Bytes())
	abi010 := write("abi010.wasm", func() []byte {
		a := &asm{}
		a.Func("proxy_abi_version_0_1_0", nil, nil)
		return a.Bytes()
	}())
	noMalloc := write("nomalloc.wasm", func() []byte {
		a := &asm{}
		a.Func("proxy_abi_version_0_2_1", nil, nil)
		a.Func("proxy_on_context_create", i32x(2), nil)
		a.Func("proxy_on_vm_start", i32x(2), i32x(1), ci32(1))
		return a.Bytes()
	}())
	noContext := write("nocontext.wasm", func() []byte {
		a := &asm{}
		a.Func("proxy_abi_version_0_2_0", nil, nil)
		a.Func("malloc", i32x(1), i32x(1), ci32(1024))
		a.Func("proxy_on_vm_start", i32x(2), i32x(1), ci32(1))
		return a.Bytes()
	}())
	noStart := write("nostart.wasm", func() []byte {
		a := &asm{}
		a.Func("proxy_abi_version_0_2_1", nil, nil)
		a.Func("malloc", i32x(1), i32x(1), ci32(1024))
		a.Func("proxy_on_context_create", i32x(2), nil)
		return a.Bytes()
	}())
	badSig := write("badsig.wasm", func() []byte {
		a := &asm{}
		proxyBase(a)
		a.Func("proxy_on_request_body", i32x(2), i32x(1), ci32(0))
		return a.Bytes()
	}())
	unknownImport := write("unknownimport.wasm", func() []byte {
		a := &asm{}
		a.Import("env", "proxy_teleport", i32x(1), i32x(1))
		proxyBase(a)
		return a.Bytes()
	}())
	badImport := write("badimport.wasm", func() []byte {
		a := &asm{}
		a.Import("env", "proxy_log", i32x(2), i32x(1))
		proxyBase(a)
		return a.Bytes()
	}())
	otherModule := write("othermodule.wasm", func() []byte {
		a := &asm{}
		a.Import("fs", "open", i32x(1), i32x(1))
		proxyBase(a)
		return a.Bytes()
	}())
	noMemory := write("nomemory.wasm", func() []byte {
		a := &asm{NoMemExport: true}
		proxyBase(a)
		return a.Bytes()
	}())
	bigMemory := write("bigmemory.wasm", func() []byte {
		a := &asm{MemMin: 17} // 1 MiB and one page
		proxyBase(a)
		return a.Bytes()
	}())
	refuses := write("refuses.wasm", func() []byte {
		a := &asm{}
		proxyBase(a)
		a.Func("proxy_on_configure", i32x(2), i32x(1), ci32(0))
		return a.Bytes()
	}())
	vmRefuses := write("vmrefuses.wasm", func() []byte {
		a := &asm{}
		a.Func("proxy_abi_version_0_2_1", nil, nil)
		a.Func("malloc", i32x(1), i32x(1), ci32(1024))
		a.Func("proxy_on_context_create", i32x(2), nil)
		a.Func("proxy_on_vm_start", i32x(2), i32x(1), ci32(0))
		return a.Bytes()
	}())
	command := write("command.wasm", func() []byte {
		a := &asm{}
		exit := a.Import("wasi_snapshot_preview1", "proc_exit", i32x(1), nil)
		proxyBase(a)
		a.Func("_start", nil, nil, ci32(0), call(exit))
		return a.Bytes()
	}())
	traps := write("traps.wasm", func() []byte {
		a := &asm{}
		proxyBase(a)
		a.Func("proxy_on_configure", i32x(2), i32x(1), op(opUnreachable))
		return a.Bytes()
	}())

	tests := []struct {
		name string
		cfg  string
		err  string
	}{
		{"minimal", `{"module":"` + ok + `"}`, ""},
		{"all keys", `{"module":"` + ok + `","config":{"a":1},"memory_limit_mb":16,"timeout":"5ms","pool_size":2}`, ""},
		{"string config", `{"module":"` + ok + `","config":"plain text"}`, ""},
		{"null config", `{"module":"` + ok + `","config":null}`, ""},
		{"WAT-free path with 0_2_0", `{"module":"` + noContext + `"}`, "module: " + noContext + ": the module does not export proxy_on_context_create"},

		{"root_id", `{"module":"` + ok + `","root_id":"add_header"}`, ""},
		{"vm_config", `{"module":"` + ok + `","vm_config":{"a":1}}`, ""},
		{"bad vm_config", `{"module":"` + ok + `","vm_config":[1]}`, "vm_config must be a string or an object (it is passed to the guest's proxy_on_vm_start), got [1]"},
		{"bad root_id", `{"module":"` + ok + `","root_id":"a\nb"}`, `root_id must be at most 256 printable ASCII characters, got "a\nb"; it must match the root ID the module registers its filter under`},
		{"bad log_level", `{"module":"` + ok + `","log_level":"verbose"}`, `log_level must be one of trace, debug, info, warn, error, critical, got "verbose"; omit it for the gateway's level`},
		{"empty", ``, "module is required: set it to the path of a Proxy-Wasm .wasm file"},
		{"unknown key", `{"module":"` + ok + `","file":"x"}`, `unknown field "file"`},
		{"missing file", `{"module":"testdata/nope.wasm"}`, "module: cannot read the module: open testdata/nope.wasm: no such file or directory"},
		{"directory", `{"module":"` + dir + `"}`, "module: cannot read the module: read " + dir + ": is a directory"},
		{"not wasm", `{"module":"` + text + `"}`, "module: " + text + ` is not a WebAssembly binary (it does not start with \0asm)`},
		{"wat", `{"module":"` + wat + `"}`, "module: " + wat + " is WebAssembly text (WAT); compile it to a binary .wasm first (wat2wasm)"},
		{"garbage", `{"module":"` + garbage + `"}`, "module: " + garbage + " is not a valid WebAssembly module: "},
		{"no abi", `{"module":"` + noABI + `"}`, "module: " + noABI + ": the module does not export proxy_abi_version_0_2_1 (or _0_2_0): it is not a Proxy-Wasm module"},
		{"abi 0.1.0", `{"module":"` + abi010 + `"}`, "module: " + abi010 + ": the module implements Proxy-Wasm ABI 0.1.0; this host runs 0.2.0 and 0.2.1 (rebuild it with a current SDK)"},
		{"no allocator", `{"module":"` + noMalloc + `"}`, "module: " + noMalloc + ": the module exports neither proxy_on_memory_allocate nor malloc; the host needs one to hand it buffers"},
		{"no start callbacks", `{"module":"` + noStart + `"}`, "module: " + noStart + ": the module exports neither proxy_on_vm_start nor proxy_on_configure"},
		{"bad callback signature", `{"module":"` + badSig + `"}`, "module: " + badSig + ": the module's proxy_on_request_body has signature (i32, i32) -> (i32); the ABI wants (i32, i32, i32) -> (i32)"},
		{"unknown import", `{"module":"` + unknownImport + `"}`, "module: " + unknownImport + ": the module imports env.proxy_teleport, which this host does not provide (see the wasm plugin's README for the supported functions)"},
		{"import signature", `{"module":"` + badImport + `"}`, "module: " + badImport + ": the module imports env.proxy_log as (i32, i32) -> (i32); the host provides (i32, i32, i32) -> (i32)"},
		{"foreign import", `{"module":"` + otherModule + `"}`, "module: " + otherModule + ": the module imports fs.open; only env (Proxy-Wasm) and wasi_snapshot_preview1 (also as wasi_unstable) are provided"},
		{"memory not exported", `{"module":"` + noMemory + `"}`, "module: " + noMemory + `: the module does not export its memory as "memory"`},
		{"memory over the limit", `{"module":"` + bigMemory + `","memory_limit_mb":1}`, "module: " + bigMemory + ": the module needs 2 MiB of memory at start, more than memory_limit_mb (1); raise memory_limit_mb"},
		{"guest refuses config", `{"module":"` + refuses + `"}`, "starting the module: the guest refused its configuration: proxy_on_configure returned false (see its log lines)"},
		{"guest refuses vm", `{"module":"` + vmRefuses + `"}`, "starting the module: the guest's proxy_on_vm_start returned false (see its log lines)"},
		{"command module", `{"module":"` + command + `"}`, "starting the module: the module exited from _start (exit code 0); build it as a reactor (Go: -buildmode=c-shared, Rust: crate-type cdylib)"},
		{"guest traps at start", `{"module":"` + traps + `"}`, "starting the module: wasm: proxy_on_configure: wasm error: unreachable"},

		{"memory limit zero", `{"module":"` + ok + `","memory_limit_mb":0}`, "memory_limit_mb must be between 1 and 4096, got 0; omit it for 64"},
		{"memory limit huge", `{"module":"` + ok + `","memory_limit_mb":5000}`, "memory_limit_mb must be between 1 and 4096, got 5000; omit it for 64"},
		{"memory limit string", `{"module":"` + ok + `","memory_limit_mb":"64"}`, "memory_limit_mb: expected int, got string"},
		{"zero timeout", `{"module":"` + ok + `","timeout":"0s"}`, "timeout must be > 0 and at most 1m0s, got 0s"},
		{"huge timeout", `{"module":"` + ok + `","timeout":"2m"}`, "timeout must be > 0 and at most 1m0s, got 2m0s"},
		{"bad timeout", `{"module":"` + ok + `","timeout":"fast"}`, `timeout: invalid duration "fast": use a number with a unit such as "1s" or "250ms"`},
		{"number timeout", `{"module":"` + ok + `","timeout":20}`, `timeout: a duration must be a string such as "1s" or "250ms", got 20`},
		{"negative pool", `{"module":"` + ok + `","pool_size":-1}`, "pool_size must be between 1 and 1024, got -1; omit it for GOMAXPROCS"},
		{"huge pool", `{"module":"` + ok + `","pool_size":5000}`, "pool_size must be between 1 and 1024, got 5000; omit it for GOMAXPROCS"},
		{"config array", `{"module":"` + ok + `","config":[1,2]}`, "config must be a string or an object (it is passed to the guest's proxy_on_configure), got [1,2]"},
		{"config number", `{"module":"` + ok + `","config":42}`, "config must be a string or an object (it is passed to the guest's proxy_on_configure), got 42"},
		{"every error", `{"timeout":"2m","memory_limit_mb":0,"pool_size":-1,"config":42}`,
			"module is required: set it to the path of a Proxy-Wasm .wasm file\n" +
				"timeout must be > 0 and at most 1m0s, got 2m0s\n" +
				"memory_limit_mb must be between 1 and 4096, got 0; omit it for 64\n" +
				"pool_size must be between 1 and 1024, got -1; omit it for GOMAXPROCS\n" +
				"config must be a string or an object (it is passed to the guest's proxy_on_configure), got 42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := New(build(nil), json.RawMessage(tt.cfg))
			got := ""
			if err != nil {
				got = err.Error()
			} else {
				f.(sdk.Closer).Close()
			}
			switch {
			case tt.err == "" && got != "":
				t.Fatalf("unexpected error: %s", got)
			case tt.err != "" && got == "":
				t.Fatalf("no error, want %q", tt.err)
			case tt.err != "" && !strings.HasPrefix(got, tt.err):
				t.Fatalf("error\n got: %s\nwant: %s", got, tt.err)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	p := writeModule(t, "ok", minimal(nil))
	s, err := validate(&Config{Module: p})
	if err != nil {
		t.Fatal(err)
	}
	if s.timeout != 20*time.Millisecond || s.initTimeout != minInitTimeout {
		t.Errorf("timeouts = %s, %s; want 20ms, %s", s.timeout, s.initTimeout, minInitTimeout)
	}
	if s.memoryPages != 64*16 {
		t.Errorf("memory pages = %d, want %d", s.memoryPages, 64*16)
	}
	if s.poolSize != runtime.GOMAXPROCS(0) {
		t.Errorf("pool size = %d, want GOMAXPROCS", s.poolSize)
	}
	if s.name != "ok" || s.guestConfig != nil {
		t.Errorf("name %q, guest config %q", s.name, s.guestConfig)
	}
}

// TestGuestConfig checks what the guest reads as its configuration.
func TestGuestConfig(t *testing.T) {
	tests := []struct{ raw, want string }{
		{``, ``},
		{`null`, ``},
		{`"plain"`, `plain`},
		{`"with \"quotes\""`, `with "quotes"`},
		{`{ "a" : 1, "b": [ true ] }`, `{"a":1,"b":[true]}`},
		{`{}`, `{}`},
	}
	for _, tt := range tests {
		got, err := guestConfig("config", "proxy_on_configure", json.RawMessage(tt.raw))
		if err != nil || string(got) != tt.want {
			t.Errorf("guestConfig(%s) = %q, %v; want %q", tt.raw, got, err, tt.want)
		}
	}
}

// TestGuestRefusesConfig: the example guest refuses a configuration that
// is not a JSON object, and New reports it.
func TestGuestRefusesConfig(t *testing.T) {
	lb := &logBuf{}
	_, err := New(build(lb), cfg(t, headersWasm, map[string]any{"config": "not json"}))
	want := "starting the module: the guest refused its configuration: proxy_on_configure returned false (see its log lines)"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	if !strings.Contains(lb.String(), "headers: configuration is not a JSON object") {
		t.Errorf("the guest's log line is missing:\n%s", lb)
	}
}

// TestInitTimeout: a guest looping in proxy_on_configure fails New once
// the start-up timeout passes.
func TestInitTimeout(t *testing.T) {
	old := minInitTimeout
	minInitTimeout = 50 * time.Millisecond
	defer func() { minInitTimeout = old }()
	a := &asm{}
	proxyBase(a)
	a.Func("proxy_on_configure", i32x(2), i32x(1), op(opLoop, blockVoid, opBr, 0, opEnd), ci32(1))
	p := writeModule(t, "spin", a.Bytes())
	start := time.Now()
	_, err := New(build(nil), json.RawMessage(`{"module":"`+p+`","timeout":"1ms"}`))
	want := "starting the module: wasm: proxy_on_configure did not finish within the 50ms timeout"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("New took %s to give up", d)
	}
}
