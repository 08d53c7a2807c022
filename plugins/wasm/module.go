package wasm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Compilation caches are shared by every filter's runtime: a config
// reload that keeps the same module finds its machine code there instead
// of compiling it again (a Go guest takes seconds to compile). With a
// directory (server.wasm_cache_dir) wazero also writes the machine code
// there, keyed by the module's hash and wazero's version, so a restart
// reuses it too. One cache per directory, for the life of the process.
var (
	cachesMu sync.Mutex
	caches   = map[string]wazero.CompilationCache{}
)

// compilationCache returns the cache for dir ("" in memory only). A
// directory that cannot be made falls back to memory, with a warning.
func compilationCache(dir string, log *slog.Logger) wazero.CompilationCache {
	cachesMu.Lock()
	defer cachesMu.Unlock()
	if c := caches[dir]; c != nil {
		return c
	}
	c := wazero.NewCompilationCache()
	if dir != "" {
		dc, err := wazero.NewCompilationCacheWithDir(dir)
		if err == nil {
			c = dc
		} else if log != nil {
			log.Warn("the wasm compilation cache directory cannot be used; compiled modules are kept in memory only", "dir", dir, "error", err)
		}
	}
	caches[dir] = c
	return c
}

// newRuntime builds a runtime for one filter: the compiler where wazero
// supports it, else the interpreter (wazero.NewRuntimeConfig chooses); the
// memory cap. It meters the module (meter.go), which is how the
// per-callback timeout stops a runaway guest, adds the WASI and "env"
// host modules and compiles the module.
func newRuntime(s *settings, cache wazero.CompilationCache) (wazero.Runtime, wazero.CompiledModule, error) {
	ctx := context.Background()
	// No WithCloseOnContextDone: the module meters itself (meter.go).
	rc := wazero.NewRuntimeConfig().
		WithMemoryLimitPages(s.memoryPages).
		WithCompilationCache(cache)
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	fail := func(err error) (wazero.Runtime, wazero.CompiledModule, error) {
		_ = rt.Close(ctx)
		return nil, nil, err
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		return fail(fmt.Errorf("preparing WASI: %w", err))
	}
	// wasi_unstable is the same preview 1 under its older name, which
	// Envoy registers too (AssemblyScript 0.14 guests import it).
	wu := rt.NewHostModuleBuilder("wasi_unstable")
	wasi_snapshot_preview1.NewFunctionExporter().ExportFunctions(wu)
	if _, err := wu.Instantiate(ctx); err != nil {
		return fail(fmt.Errorf("preparing WASI (wasi_unstable): %w", err))
	}
	if err := instantiateHost(ctx, rt); err != nil {
		return fail(fmt.Errorf("preparing the Proxy-Wasm host functions: %w", err))
	}
	if min, ok := memoryMin(s.binary); ok && min > s.memoryPages {
		// wazero refuses it too, in its own words; say what to change.
		return fail(fmt.Errorf("module: %s: the module needs %d MiB of memory at start, more than memory_limit_mb (%d); raise memory_limit_mb",
			s.path, (min+pagesPerMB-1)/pagesPerMB, s.memoryPages/pagesPerMB))
	}
	metered, err := meter(s.binary)
	if err != nil {
		if _, cerr := rt.CompileModule(ctx, s.binary); cerr != nil {
			return fail(fmt.Errorf("module: %s is not a valid WebAssembly module: %s", s.path, firstLine(cerr)))
		}
		return fail(fmt.Errorf("module: %s: the host cannot meter the module (%w); it uses an instruction this host does not know", s.path, err))
	}
	compiled, err := rt.CompileModule(ctx, metered)
	if err != nil {
		return fail(fmt.Errorf("module: %s is not a valid WebAssembly module: %s", s.path, firstLine(err)))
	}
	if err := checkABI(compiled); err != nil {
		_ = compiled.Close(ctx)
		return fail(fmt.Errorf("module: %s: %w", s.path, err))
	}
	return rt, compiled, nil
}

// callback describes an export the host calls: all parameters and
// results are i32 in ABI 0.2.x.
type callback struct {
	params, results int
}

// callbacks are the guest exports this host calls, with their signatures
// (ABI 0.2.1, "Callbacks exposed by the Wasm module").
var callbacks = map[string]callback{
	"proxy_on_memory_allocate":    {1, 1},
	"malloc":                      {1, 1},
	"proxy_on_context_create":     {2, 0},
	"proxy_on_vm_start":           {2, 1},
	"proxy_on_configure":          {2, 1},
	"proxy_on_request_headers":    {3, 1},
	"proxy_on_request_body":       {3, 1},
	"proxy_on_response_headers":   {3, 1},
	"proxy_on_response_body":      {3, 1},
	"proxy_on_done":               {1, 1},
	"proxy_on_log":                {1, 0},
	"proxy_on_delete":             {1, 0},
	"proxy_on_http_call_response": {5, 0},
	"proxy_on_tick":               {1, 0},
	"proxy_on_queue_ready":        {2, 0},
	"_initialize":                 {0, 0},
	"_start":                      {0, 0},
}

// checkABI refuses, with a message naming the problem, a module that is
// not a Proxy-Wasm 0.2.x guest this host can run, before any instance is
// made: one without the ABI marker, the required exports or a memory, with
// callbacks of the wrong shape, or importing host functions that do not
// exist here.
func checkABI(m wazero.CompiledModule) error {
	exports := m.ExportedFunctions()
	switch {
	case exports["proxy_abi_version_0_2_1"] != nil, exports["proxy_abi_version_0_2_0"] != nil:
	case exports["proxy_abi_version_0_1_0"] != nil:
		return errors.New("the module implements Proxy-Wasm ABI 0.1.0; this host runs 0.2.0 and 0.2.1 (rebuild it with a current SDK)")
	default:
		return errors.New("the module does not export proxy_abi_version_0_2_1 (or _0_2_0): it is not a Proxy-Wasm module")
	}
	if exports["proxy_on_memory_allocate"] == nil && exports["malloc"] == nil {
		return errors.New("the module exports neither proxy_on_memory_allocate nor malloc; the host needs one to hand it buffers")
	}
	if exports["proxy_on_context_create"] == nil {
		return errors.New("the module does not export proxy_on_context_create")
	}
	if exports["proxy_on_vm_start"] == nil && exports["proxy_on_configure"] == nil {
		return errors.New("the module exports neither proxy_on_vm_start nor proxy_on_configure")
	}
	if err := checkHTTPFilter(exports); err != nil {
		return err
	}
	names := make([]string, 0, len(callbacks))
	for name := range callbacks {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		def := exports[name]
		if def == nil {
			continue
		}
		want := callbacks[name]
		if !allI32(def.ParamTypes(), want.params) || !allI32(def.ResultTypes(), want.results) {
			return fmt.Errorf("the module's %s has signature %s; the ABI wants %s", name, signature(def.ParamTypes(), def.ResultTypes()), signature(i32s(want.params), i32s(want.results)))
		}
	}
	mems := m.ExportedMemories()
	if len(m.ImportedMemories()) > 0 {
		return errors.New("the module imports its memory; a Proxy-Wasm module defines and exports it")
	}
	mem := mems["memory"]
	if mem == nil {
		return errors.New("the module does not export its memory as \"memory\"")
	}
	for _, imp := range m.ImportedFunctions() {
		mod, name, _ := imp.Import()
		switch mod {
		case "wasi_snapshot_preview1", "wasi_unstable":
			// wazero implements the whole of preview 1; files, environment
			// and arguments are simply empty.
		case "env":
			h := hostFuncByName[name]
			if h == nil {
				return fmt.Errorf("the module imports env.%s, which this host does not provide (see the wasm plugin's README for the supported functions)", name)
			}
			if !slices.Equal(imp.ParamTypes(), h.params) || !slices.Equal(imp.ResultTypes(), resultI32) {
				return fmt.Errorf("the module imports env.%s as %s; the host provides %s", name, signature(imp.ParamTypes(), imp.ResultTypes()), signature(h.params, resultI32))
			}
		default:
			return fmt.Errorf("the module imports %s.%s; only env (Proxy-Wasm) and wasi_snapshot_preview1 (also as wasi_unstable) are provided", mod, name)
		}
	}
	return nil
}

// checkHTTPFilter refuses a network (TCP) filter: one that exports the
// connection callbacks and none of the HTTP ones. Modules built with the
// SDKs export both kinds whatever the filter is, and pass; their filter
// decides which contexts it makes, at run time.
func checkHTTPFilter(exports map[string]api.FunctionDefinition) error {
	for _, name := range []string{"proxy_on_request_headers", "proxy_on_request_body", "proxy_on_response_headers", "proxy_on_response_body"} {
		if exports[name] != nil {
			return nil
		}
	}
	for _, name := range []string{"proxy_on_new_connection", "proxy_on_downstream_data", "proxy_on_upstream_data"} {
		if exports[name] != nil {
			return fmt.Errorf("the module is a network (TCP) filter: it exports %s and no HTTP callback (proxy_on_request_headers, …); Weir runs Proxy-Wasm HTTP filters only", name)
		}
	}
	return nil
}

func allI32(ts []api.ValueType, n int) bool {
	if len(ts) != n {
		return false
	}
	for _, t := range ts {
		if t != api.ValueTypeI32 {
			return false
		}
	}
	return true
}

func signature(params, results []api.ValueType) string {
	var b strings.Builder
	b.WriteByte('(')
	for i, t := range params {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(api.ValueTypeName(t))
	}
	b.WriteString(") -> (")
	for i, t := range results {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(api.ValueTypeName(t))
	}
	b.WriteByte(')')
	return b.String()
}

// memoryMin finds the initial size, in pages, of the memory a module
// defines, by walking its sections
// (https://webassembly.github.io/spec/core/binary/modules.html#memory-section).
// ok is false when there is none or the binary is malformed; the compiler
// reports the latter.
func memoryMin(b []byte) (min uint32, ok bool) {
	if len(b) < 8 {
		return 0, false
	}
	b = b[8:] // magic and version
	for len(b) > 0 {
		id := b[0]
		size, n := readULEB(b[1:])
		if n == 0 || uint64(len(b)-1-n) < size {
			return 0, false
		}
		body := b[1+n : 1+n+int(size)]
		b = b[1+n+int(size):]
		if id != 5 {
			continue
		}
		count, n := readULEB(body)
		if n == 0 || count == 0 || len(body) < n+1 {
			return 0, false
		}
		body = body[n+1:] // the limits' flags byte
		v, n := readULEB(body)
		if n == 0 || v > 1<<16 {
			return 0, false
		}
		return uint32(v), true
	}
	return 0, false
}

// readULEB decodes an unsigned LEB128 of at most 5 bytes (a u32); n is 0
// when b does not start with one.
func readULEB(b []byte) (v uint64, n int) {
	for i := 0; i < len(b) && i < 5; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
	}
	return 0, 0
}
