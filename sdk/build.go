package sdk

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	json "github.com/goccy/go-json"
	"github.com/redis/rueidis"
	"github.com/valyala/fasthttp"
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
	// Upstream finds a service of the running config by name, for a
	// plugin that calls services itself (the wasm plugin's HTTP
	// callouts). It looks in the config running when it is called, so a
	// filter kept across reloads sees the current services. It returns
	// nil for an unknown name; Upstream itself is nil under `weir
	// validate` and outside the proxy.
	Upstream func(service string) Upstream
	// WasmCacheDir is where compiled wasm modules are cached on disk
	// (server.wasm_cache_dir resolved), "" for in memory only.
	WasmCacheDir string
}

// Upstream is a service a plugin can send requests to.
type Upstream interface {
	// Do sends req to one of the service's targets as a forwarded
	// request goes: chosen by the service's balancer among the healthy
	// ones, on its connection pool, counted by its passive health
	// checks, under the service's timeout or timeout, whichever is
	// shorter (timeout <= 0: the service's). An empty Host becomes the
	// target's. The answer is read whole into resp (at most 8 MiB).
	Do(req *fasthttp.Request, resp *fasthttp.Response, timeout time.Duration) error
}

// DecodeConfig decodes a plugin's raw JSON config into v, refusing unknown
// keys so that a typo is an error rather than a silently ignored setting.
// An empty or null raw leaves v untouched (defaults stay).
//
// When v is a pointer to a struct, every wrong key is reported, not just
// the first: the error joins (errors.Join) one error per unknown key or
// value of the wrong type, in the order of the keys, so that an operator
// fixes a plugin's config in one run. Plugins should likewise check every
// key and join their errors.
func DecodeConfig(raw []byte, v any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	err := decodeStrict(raw, v)
	if err == nil {
		return nil
	}
	// The decoder stops at the first problem; go over the keys one by
	// one to find them all.
	if errs, ok := decodeEach(raw, reflect.ValueOf(v), ""); ok {
		return errors.Join(errs...)
	}
	return cleanJSONError("", err)
}

func decodeStrict(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

var unmarshalerType = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()

// decodeEach decodes the JSON object raw into the struct ptr points to key
// by key, descending into nested structs, and returns an error for each
// wrong key, prefixed with the path of keys ("hybrid.batch: ..."). ok is
// false when it cannot go key by key (not an object, not a plain struct):
// the caller then reports the decoder's own error.
func decodeEach(raw []byte, ptr reflect.Value, prefix string) (errs []error, ok bool) {
	if ptr.Kind() != reflect.Pointer || ptr.IsNil() || ptr.Elem().Kind() != reflect.Struct || ptr.Type().Implements(unmarshalerType) {
		return nil, false
	}
	st := ptr.Elem()
	fields := map[string][]int{}
	for _, f := range reflect.VisibleFields(st.Type()) {
		if !f.IsExported() || f.Anonymous && f.Type.Kind() == reflect.Struct {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if len(f.Index) > 1 && !embeddedByValue(st.Type(), f.Index) {
			return nil, false
		}
		fields[name] = f.Index
	}
	keys, vals, err := objectMembers(raw)
	if err != nil {
		return nil, false
	}
	for i, k := range keys {
		idx, found := fields[k]
		if !found {
			// The decoder matches keys without regard to case too.
			for name, fi := range fields {
				if strings.EqualFold(name, k) {
					idx, found = fi, true
					break
				}
			}
		}
		if !found {
			errs = append(errs, fmt.Errorf("unknown field %q", prefix+k))
			continue
		}
		fv := st.FieldByIndex(idx)
		nv := reflect.New(fv.Type())
		if err := decodeStrict(vals[i], nv.Interface()); err != nil {
			if sub, ok := decodeNested(vals[i], fv.Type(), prefix+k+"."); ok {
				errs = append(errs, sub...)
			} else {
				errs = append(errs, cleanJSONError(prefix+k, err))
			}
			continue
		}
		fv.Set(nv.Elem())
	}
	return errs, true
}

// decodeNested goes key by key into a value of type t that is a struct or
// a pointer to one.
func decodeNested(raw []byte, t reflect.Type, prefix string) ([]error, bool) {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil, false
	}
	return decodeEach(raw, reflect.New(t), prefix)
}

// embeddedByValue reports whether the promoted field at index is reached
// through embedded structs only, not pointers (which may be nil).
func embeddedByValue(t reflect.Type, index []int) bool {
	for _, i := range index[:len(index)-1] {
		f := t.Field(i)
		if f.Type.Kind() != reflect.Struct {
			return false
		}
		t = f.Type
	}
	return true
}

// objectMembers splits a JSON object into its keys and raw values, in
// order.
func objectMembers(raw []byte) ([]string, []json.RawMessage, error) {
	var m orderedObject
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, nil, err
	}
	return m.keys, m.vals, nil
}

// orderedObject is a JSON object decoded with its keys in order.
type orderedObject struct {
	keys []string
	vals []json.RawMessage
}

func (o *orderedObject) UnmarshalJSON(b []byte) error {
	dec := stdjson.NewDecoder(bytes.NewReader(b))
	t, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := t.(stdjson.Delim); !ok || d != '{' {
		return errors.New("not an object")
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		k, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return err
		}
		o.keys = append(o.keys, k)
		o.vals = append(o.vals, v)
	}
	return nil
}

// listIndices writes the decoder's "limits.0.rate" as the config's own
// notation, "limits[0].rate".
func listIndices(path string) string {
	parts := strings.Split(path, ".")
	var b strings.Builder
	for i, p := range parts {
		if _, err := strconv.Atoi(p); err == nil && i > 0 {
			b.WriteString("[" + p + "]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

// cleanJSONError rephrases a decoder error for an operator; key, when not
// empty, is the key whose value it is about.
func cleanJSONError(key string, err error) error {
	// go-json phrases unknown fields as `json: unknown field "x"`.
	msg := strings.TrimPrefix(err.Error(), "json: ")
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := key
		if te.Field != "" {
			if field != "" {
				field += "."
			}
			field += te.Field
		}
		if field != "" {
			return fmt.Errorf("%s: expected %s, got %s", listIndices(field), te.Type.String(), te.Value)
		}
	}
	// A type's own UnmarshalJSON may name its key already.
	if key != "" && !strings.HasPrefix(msg, key+":") {
		return fmt.Errorf("%s: %s", key, msg)
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
