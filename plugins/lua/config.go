package lua

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/weirgw/weir/plugins/internal/confval"
	glua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

const (
	defaultTimeout = 50 * time.Millisecond
	maxTimeout     = time.Minute
	maxPoolSize    = 4096
	// defaultMemoryLimitMB and maxMemoryLimitMB bound memory_limit_mb.
	defaultMemoryLimitMB = 32
	maxMemoryLimitMB     = 1024
	// maxScriptBytes bounds what is read from `file` or taken from
	// `source`: a gateway script is a few hundred lines, and a config typo
	// pointing at a multi-gigabyte file should fail fast rather than parse.
	maxScriptBytes = 1 << 20
	// maxPluginBytes bounds the .lua files of a kong_plugin folder.
	maxPluginBytes = 4 << 20
	// maxNameBytes bounds `name`.
	maxNameBytes = 128
	// minInitTimeout bounds the script's top level (run once per pooled
	// state): it may build lookup tables, so it gets at least a second even
	// when the per-phase timeout is a few milliseconds.
	minInitTimeout = time.Second
)

// Config is the plugin's `config` object.
type Config struct {
	// File is a path to the script; relative paths are relative to the
	// working directory of the gateway process.
	File string `json:"file"`
	// Source is the script inline. Exactly one of File, Source and
	// KongPlugin is set.
	Source string `json:"source"`
	// KongPlugin is a Kong plugin's folder (handler.lua, schema.lua and
	// its other modules), run through the kong PDK shim (kong.lua).
	KongPlugin string `json:"kong_plugin"`
	// Name is the instance's name: a route's lua instance replaces the
	// global one of the same name (chain.go, instanceName). Default: the
	// Kong plugin's folder name, or the script's file.
	Name string `json:"name"`
	// Timeout bounds one phase call (access, header_filter, body_filter or
	// log). Default 50ms.
	Timeout confval.Duration `json:"timeout"`
	// Config is an object handed to the script as the global table `conf`.
	Config json.RawMessage `json:"config"`
	// PoolSize is how many prepared Lua states are kept. Default
	// GOMAXPROCS*2.
	PoolSize int `json:"pool_size"`
	// MemoryLimitMB bounds the memory one phase call may create in
	// strings (library calls and concatenation). Default 32.
	MemoryLimitMB int `json:"memory_limit_mb"`
}

// settings is a validated Config.
type settings struct {
	chunkName string
	proto     *glua.FunctionProto
	timeout   time.Duration
	conf      map[string]any // decoded `config`, converted to a Lua table per state
	poolSize  int
	memLimit  int64 // bytes
	// kongName is the Kong plugin's name (its folder's name) and modules
	// its compiled modules by require name (kong.plugins.NAME.handler...),
	// when kong_plugin is set.
	kongName string
	modules  map[string]*glua.FunctionProto
}

// validate checks cfg and compiles the script.
func validate(cfg *Config) (*settings, error) {
	s := &settings{timeout: defaultTimeout, poolSize: cfg.PoolSize}
	// The settings are each checked and the errors joined, so that one run
	// shows them all; the script is compiled once they are right.
	var errs []error
	bad := func(err error) { errs = append(errs, err) }
	set := 0
	for _, v := range []string{cfg.File, cfg.Source, cfg.KongPlugin} {
		if v != "" {
			set++
		}
	}
	switch {
	case set > 1:
		bad(errors.New("set one of file, source and kong_plugin, not several"))
	case set == 0:
		bad(errors.New("no script: set file (a path to a .lua file), source (the script inline) or kong_plugin (a Kong plugin's folder)"))
	}
	if len(cfg.Name) > maxNameBytes {
		bad(fmt.Errorf("name is %d bytes, more than the %d allowed", len(cfg.Name), maxNameBytes))
	}
	if err := cfg.Timeout.Check("timeout", defaultTimeout); err != nil {
		bad(err)
	} else if s.timeout = cfg.Timeout.D(); s.timeout <= 0 || s.timeout > maxTimeout {
		bad(fmt.Errorf("timeout must be > 0 and at most %s, got %s", maxTimeout, s.timeout))
	}
	switch {
	case s.poolSize == 0:
		s.poolSize = 2 * runtime.GOMAXPROCS(0)
	case s.poolSize < 0 || s.poolSize > maxPoolSize:
		bad(fmt.Errorf("pool_size must be between 1 and %d, got %d; omit it for GOMAXPROCS*2", maxPoolSize, s.poolSize))
	}
	switch {
	case cfg.MemoryLimitMB == 0:
		s.memLimit = defaultMemoryLimitMB << 20
	case cfg.MemoryLimitMB < 0 || cfg.MemoryLimitMB > maxMemoryLimitMB:
		bad(fmt.Errorf("memory_limit_mb must be between 1 and %d, got %d; omit it for %d", maxMemoryLimitMB, cfg.MemoryLimitMB, defaultMemoryLimitMB))
	default:
		s.memLimit = int64(cfg.MemoryLimitMB) << 20
	}
	if raw := bytes.TrimSpace(cfg.Config); len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		if raw[0] != '{' {
			bad(fmt.Errorf("config must be an object (it becomes the Lua table conf), got %s", abbreviate(raw)))
		} else if err := json.Unmarshal(raw, &s.conf); err != nil {
			bad(fmt.Errorf("config: %w", err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	if cfg.KongPlugin != "" {
		if err := loadKongPlugin(s, cfg.KongPlugin); err != nil {
			return nil, err
		}
		return s, nil
	}
	src := cfg.Source
	s.chunkName = "source"
	if cfg.File != "" {
		s.chunkName = cfg.File
		b, err := readScript(cfg.File)
		if err != nil {
			return nil, err
		}
		src = b
	} else if len(src) > maxScriptBytes {
		return nil, fmt.Errorf("source is %d bytes, more than the %d allowed; move the script to a file or shorten it", len(src), maxScriptBytes)
	}
	proto, err := compile(src, s.chunkName)
	if err != nil {
		return nil, err
	}
	s.proto = proto
	return s, nil
}

func readScript(path string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("file: cannot read the script: %w", err)
	}
	defer fh.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(fh, maxScriptBytes+1)); err != nil {
		return "", fmt.Errorf("file: cannot read the script: %w", err)
	}
	if buf.Len() > maxScriptBytes {
		return "", fmt.Errorf("file: %s is more than %d bytes; a gateway script should be far smaller", path, maxScriptBytes)
	}
	return buf.String(), nil
}

// compile parses and compiles src once; every pooled state shares the
// resulting prototype (it is read-only after compilation). Errors read like
// Lua's own: "script.lua:3: syntax error near 'x'".
func compile(src, name string) (*glua.FunctionProto, error) {
	chunk, err := parse.Parse(strings.NewReader(src), name)
	if err != nil {
		var pe *parse.Error
		if errors.As(err, &pe) {
			msg := pe.Message
			if msg == "parse error" {
				msg = "syntax error"
			}
			if pe.Pos.Line == parse.EOF {
				// The lexer reports the end of input without a line; the
				// last line is where the operator should look.
				return nil, fmt.Errorf("%s:%d: %s at end of file (unclosed block, string or bracket?)", name, strings.Count(src, "\n")+1, msg)
			}
			return nil, fmt.Errorf("%s:%d: %s near '%s'", name, pe.Pos.Line, msg, pe.Token)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	rewriteConcat(chunk)
	proto, err := glua.Compile(chunk, name)
	if err != nil {
		var ce *glua.CompileError
		if errors.As(err, &ce) {
			return nil, fmt.Errorf("%s:%d: %s", name, ce.Line, ce.Message)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return proto, nil
}

func abbreviate(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

// loadKongPlugin compiles the modules of a Kong plugin folder: every .lua
// file under dir is the module kong.plugins.NAME.<path with dots>, NAME
// being the folder's name. handler.lua must be there.
func loadKongPlugin(s *settings, dir string) error {
	proto, err := compiledPrelude()
	if err != nil {
		return fmt.Errorf("kong.lua: %w", err)
	}
	s.proto = proto
	s.kongName = filepath.Base(filepath.Clean(dir))
	s.chunkName = dir
	s.modules = map[string]*glua.FunctionProto{}
	total := 0
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".lua") {
			return nil
		}
		src, err := readScript(path)
		if err != nil {
			return err
		}
		if total += len(src); total > maxPluginBytes {
			return fmt.Errorf("the plugin's .lua files are more than %d bytes together", maxPluginBytes)
		}
		rel, _ := filepath.Rel(dir, path)
		mod := "kong.plugins." + s.kongName + "." + strings.ReplaceAll(strings.TrimSuffix(rel, ".lua"), string(filepath.Separator), ".")
		p, err := compile(src, filepath.Join(s.kongName, rel))
		if err != nil {
			return err
		}
		s.modules[mod] = p
		return nil
	})
	if err != nil {
		return fmt.Errorf("kong_plugin: %w", err)
	}
	if s.modules["kong.plugins."+s.kongName+".handler"] == nil {
		return fmt.Errorf("kong_plugin: %s has no handler.lua; point kong_plugin at the folder holding the plugin's handler.lua and schema.lua", dir)
	}
	return nil
}
