package sdk

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	json "github.com/goccy/go-json"
	"github.com/redis/rueidis"
)

// Build is what a Factory sees when a config snapshot is compiled. It is
// only valid during New; filters copy what they need out of it.
type Build struct {
	// Route is the route name, or "" for a global plugin instance.
	Route string
	// Service is the route's service name ("" for global or aggregate routes).
	Service string
	// Params are the names of the route's path parameters ({id} ...), in the
	// order the router reports them.
	Params []string
	// Consumers are the consumers of the snapshot being built.
	Consumers *Consumers
	// Redis is the shared client when the config has a `redis` section, nil
	// otherwise (plugins then keep their state in process memory). The
	// client outlives snapshots; filters must not close it.
	Redis rueidis.Client
	// RedisConfigured is true when the config has a `redis` section, even
	// under `weir validate` where Redis is nil (nothing is connected).
	RedisConfigured bool
	// ConfigDir is the directory of the config file being compiled ("" for
	// configs from the admin API); relative paths in plugin configs (a Lua
	// script, a WASM module) resolve against it. See ResolvePath.
	ConfigDir string
	// Log is the process logger.
	Log *slog.Logger
	// Validating is true under `weir validate`: New must still check
	// everything, but nothing will be started.
	Validating bool
}

// DecodeConfig decodes a plugin's raw JSON config into v, refusing unknown
// keys so that a typo is an error rather than a silently ignored setting.
// An empty or null raw leaves v untouched (defaults stay).
func DecodeConfig(raw []byte, v any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return cleanJSONError(err)
	}
	return nil
}

func cleanJSONError(err error) error {
	msg := err.Error()
	// go-json phrases unknown fields as `json: unknown field "x"`.
	msg = strings.TrimPrefix(msg, "json: ")
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Errorf("%s: expected %s, got %s", te.Field, te.Type.String(), te.Value)
	}
	return errors.New(msg)
}

// ResolvePath makes a relative path from a plugin config relative to the
// config file's directory, so `file: scripts/auth.lua` means the same
// wherever weir was started from. Absolute paths and "" are unchanged.
func (b *Build) ResolvePath(p string) string {
	if p == "" || filepath.IsAbs(p) || b == nil || b.ConfigDir == "" {
		return p
	}
	return filepath.Join(b.ConfigDir, p)
}
