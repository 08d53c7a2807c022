package wasm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/weirgw/weir/plugins/internal/confval"
)

// minInitTimeout bounds the guest's start-up callbacks (_initialize,
// proxy_on_vm_start, proxy_on_configure), run once per instance: a Go or
// Rust runtime initialises itself there and a filter may parse a large
// configuration, so it gets at least this long even when the per-request
// timeout is a few milliseconds. A variable for tests.
var minInitTimeout = 5 * time.Second

const (
	defaultTimeout = 20 * time.Millisecond
	maxTimeout     = time.Minute

	defaultMemoryLimitMB = 64
	// maxMemoryLimitMB is the whole 32-bit address space of a wasm32
	// module (65536 pages of 64 KiB).
	maxMemoryLimitMB = 4096
	pagesPerMB       = 16

	maxPoolSize = 1024
	// maxModuleBytes bounds what is read from `module`. Guests built with
	// the standard Go toolchain are a few MiB; Rust and TinyGo ones far
	// less. A config pointing at a huge file should fail fast.
	maxModuleBytes = 64 << 20
)

// Config is the plugin's `config` object.
type Config struct {
	// Module is the path of the .wasm file; relative paths are relative to
	// the working directory of the gateway process.
	Module string `json:"module"`
	// Config is handed to the guest as its plugin configuration
	// (proxy_on_configure / PLUGIN_CONFIGURATION): a string as its bytes,
	// an object as compact JSON.
	Config json.RawMessage `json:"config"`
	// MemoryLimitMB caps the linear memory of each module instance.
	// Default 64.
	MemoryLimitMB *int `json:"memory_limit_mb"`
	// Timeout bounds one guest callback. Default 20ms.
	Timeout confval.Duration `json:"timeout"`
	// PoolSize is how many module instances serve requests (each one runs
	// one callback at a time). Default GOMAXPROCS.
	PoolSize int `json:"pool_size"`
	// RootID is Envoy's root_id: the plugin_root_id property, which SDKs
	// that host several filters in one module (AssemblyScript's
	// proxy-runtime) use to choose the filter. Default "".
	RootID string `json:"root_id"`
	// VMConfig is handed to the guest as its VM configuration
	// (proxy_on_vm_start / VM_CONFIGURATION), as Envoy's
	// vm_config.configuration: a string as its bytes, an object as
	// compact JSON.
	VMConfig json.RawMessage `json:"vm_config"`
	// VMID is Envoy's vm_id: the plugin_vm_id property and the namespace
	// of the shared queues the plugin registers. Default "".
	VMID string `json:"vm_id"`
	// LogLevel is the least severe guest log level that is logged
	// (trace, debug, info, warn, error, critical), as Envoy's
	// --component-log-level wasm:LEVEL; proxy_get_log_level reports it so
	// that SDKs that ask skip the rest. Default: the gateway's level.
	LogLevel string `json:"log_level"`
}

// logLevels are the Proxy-Wasm log levels by name, in order.
var logLevels = []string{"trace", "debug", "info", "warn", "error", "critical"}

// maxRootID bounds root_id.
const maxRootID = 256

// settings is a validated Config.
type settings struct {
	path        string
	absPath     string // identifies the module for shared data
	name        string // the module's file name without .wasm: the plugin_name property
	binary      []byte
	guestConfig []byte
	rootID      []byte // the plugin_root_id property
	vmConfig    []byte
	vmID        []byte // the plugin_vm_id property, the shared queues' namespace
	memoryPages uint32
	timeout     time.Duration
	initTimeout time.Duration
	poolSize    int
	// logLevel is the least severe guest level logged (logTrace when
	// log_level is not set: the gateway's logger decides alone).
	logLevel uint32
}

// validate checks cfg and reads the module file.
func validate(cfg *Config) (*settings, error) {
	s := &settings{timeout: defaultTimeout, poolSize: cfg.PoolSize}
	// The settings are each checked and the errors joined, so that one run
	// shows them all; the module is read once they are right.
	var errs []error
	bad := func(err error) { errs = append(errs, err) }
	if cfg.Module == "" {
		bad(errors.New("module is required: set it to the path of a Proxy-Wasm .wasm file"))
	}
	if err := cfg.Timeout.Check("timeout", defaultTimeout); err != nil {
		bad(err)
	} else if s.timeout = cfg.Timeout.D(); s.timeout <= 0 || s.timeout > maxTimeout {
		bad(fmt.Errorf("timeout must be > 0 and at most %s, got %s", maxTimeout, s.timeout))
	}
	s.initTimeout = max(s.timeout, minInitTimeout)
	mb := defaultMemoryLimitMB
	if cfg.MemoryLimitMB != nil {
		mb = *cfg.MemoryLimitMB
	}
	if mb < 1 || mb > maxMemoryLimitMB {
		bad(fmt.Errorf("memory_limit_mb must be between 1 and %d, got %d; omit it for %d", maxMemoryLimitMB, mb, defaultMemoryLimitMB))
	}
	s.memoryPages = uint32(mb * pagesPerMB)
	switch {
	case s.poolSize == 0:
		s.poolSize = runtime.GOMAXPROCS(0)
	case s.poolSize < 0 || s.poolSize > maxPoolSize:
		bad(fmt.Errorf("pool_size must be between 1 and %d, got %d; omit it for GOMAXPROCS", maxPoolSize, s.poolSize))
	}
	gc, err := guestConfig("config", "proxy_on_configure", cfg.Config)
	if err != nil {
		bad(err)
	}
	if s.vmConfig, err = guestConfig("vm_config", "proxy_on_vm_start", cfg.VMConfig); err != nil {
		bad(err)
	}
	s.guestConfig = gc
	if len(cfg.RootID) > maxRootID || !printable(cfg.RootID) {
		bad(fmt.Errorf("root_id must be at most %d printable ASCII characters, got %q; it must match the root ID the module registers its filter under", maxRootID, cfg.RootID))
	}
	s.rootID = []byte(cfg.RootID)
	if len(cfg.VMID) > maxRootID || !printable(cfg.VMID) {
		bad(fmt.Errorf("vm_id must be at most %d printable ASCII characters, got %q; it names the VM whose shared queues the plugin registers", maxRootID, cfg.VMID))
	}
	s.vmID = []byte(cfg.VMID)
	if cfg.LogLevel != "" {
		i := slices.Index(logLevels, cfg.LogLevel)
		if i < 0 {
			bad(fmt.Errorf("log_level must be one of %s, got %q; omit it for the gateway's level", strings.Join(logLevels, ", "), cfg.LogLevel))
		}
		s.logLevel = uint32(max(i, 0))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	s.path = cfg.Module
	s.name = strings.TrimSuffix(filepath.Base(cfg.Module), ".wasm")
	if s.absPath, err = filepath.Abs(cfg.Module); err != nil {
		s.absPath = filepath.Clean(cfg.Module)
	}
	if s.binary, err = readModule(cfg.Module); err != nil {
		return nil, err
	}
	return s, nil
}

// guestConfig turns `config` into the bytes the guest reads: a JSON string
// becomes its contents, an object its compact JSON encoding.
func guestConfig(key, callback string, raw json.RawMessage) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		return []byte(s), nil
	case '{':
		var b bytes.Buffer
		if err := json.Compact(&b, raw); err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		return b.Bytes(), nil
	}
	return nil, fmt.Errorf("%s must be a string or an object (it is passed to the guest's %s), got %s", key, callback, abbreviate(raw))
}

// wasmMagic starts every WebAssembly binary module
// (https://webassembly.github.io/spec/core/binary/modules.html#binary-module).
var wasmMagic = []byte{0x00, 'a', 's', 'm'}

func readModule(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("module: cannot read the module: %w", err)
	}
	defer fh.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(fh, maxModuleBytes+1)); err != nil {
		return nil, fmt.Errorf("module: cannot read the module: %w", err)
	}
	if buf.Len() > maxModuleBytes {
		return nil, fmt.Errorf("module: %s is more than %d bytes", path, maxModuleBytes)
	}
	b := buf.Bytes()
	if !bytes.HasPrefix(b, wasmMagic) {
		if bytes.HasPrefix(bytes.TrimSpace(b), []byte("(module")) {
			return nil, fmt.Errorf("module: %s is WebAssembly text (WAT); compile it to a binary .wasm first (wat2wasm)", path)
		}
		return nil, fmt.Errorf("module: %s is not a WebAssembly binary (it does not start with \\0asm)", path)
	}
	return b, nil
}

func abbreviate(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
