package sdk

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"sync"
)

// Status is what a Filter tells the chain runner after OnRequest.
type Status uint8

const (
	// Continue runs the next filter, then forwards upstream.
	Continue Status = iota
	// Stop means the filter wrote the response itself (401, 429, a cache
	// hit...): no further request filter runs and nothing is forwarded.
	Stop
)

// Filter is the request phase of a plugin instance. Instances are shared by
// all requests of a snapshot, concurrently: OnRequest must be safe for
// concurrent use and must not keep c after it returns.
//
// Returning a non-nil error makes the proxy answer 500 with a JSON error and
// log the error; a filter that wants a specific status uses c.Fail instead.
type Filter interface {
	OnRequest(c *Ctx) (Status, error)
}

// ResponseFilter is an optional second phase: it runs after the upstream
// response is in c.Response() (or after a filter stopped the chain), in the
// reverse order of the filters that ran.
type ResponseFilter interface {
	OnResponse(c *Ctx) error
}

// WholeBodyFilter is a ResponseFilter that reads or replaces the whole
// response body. For a route with one whose WholeResponseBody is true,
// the proxy reads an HTTP/1.1 upstream body it would stream (chunked,
// until close) into memory when it ends within 256 KiB, before the
// response filters run, so that c.Response().IsBodyStream() is false and
// the answer goes out with a Content-Length; a longer one, or one with a
// larger Content-Length, still streams. It costs nothing on other routes.
type WholeBodyFilter interface {
	ResponseFilter
	WholeResponseBody() bool
}

// LogFilter is an optional last phase that runs once the response is
// complete (access logs, metrics). It runs on the request's goroutine,
// before the answer is written: it must not do blocking I/O there. A
// filter that only observes implements DeferredLogFilter instead, and its
// OnLog runs after the answer, off the request's time.
type LogFilter interface {
	OnLog(c *Ctx)
}

// Starter is implemented by filters that run background work (a JWKS
// refresher, a health probe). New must not start goroutines or do I/O,
// because `weir validate` builds every filter without running it; Start is
// called once the snapshot holding the filter is about to serve traffic.
type Starter interface {
	Start() error
}

// Closer is implemented by filters holding resources. Close is called once
// the snapshot holding the filter has been replaced and its in-flight
// requests have finished.
//
// An instance can outlive the snapshot that built it: a reload that leaves
// a route's config (and its service's) unchanged reuses the route's
// instances, and those of the global plugins when they are unchanged, in
// the new snapshot, without calling New or Start again. Close is then
// called once, by the last snapshot that serves with the instance. An
// instance is never reused when what New was given besides its config
// changed (the consumers, the redis client, the config directory).
type Closer interface {
	Close() error
}

// Factory builds filter instances for one plugin name.
type Factory struct {
	// Name is the plugin name used in config files, e.g. "rate_limit".
	Name string
	// New validates raw (the plugin's `config` object as JSON, "null" or
	// empty when absent) and returns a ready filter. Errors are reported to
	// the operator prefixed with the place in the config file, so they should
	// name the offending key and the fix: "rate must be > 0".
	New func(b *Build, raw json.RawMessage) (Filter, error)
	// Instance, when set, lets the plugin appear several times in one
	// plugin list: it returns the name of the instance configured by raw
	// ("" for an unnamed one, which is never the same as another). Two
	// instances of one list may not share a name; a route's instance
	// replaces (or, with enabled: false, removes) the global instance of
	// the same name, and only that one. Without Instance, the plugin's
	// name is the instance's: one per list, and a route's replaces the
	// global one.
	Instance func(raw json.RawMessage) string
	// Group, when set, runs the instances of the plugin that one route
	// ends up with (the global ones it keeps, then its own), when there
	// are two or more, as the one filter it returns, placed where the
	// first of them was in the route's chain. It decides their order (the
	// lua plugin sorts them by Kong's PRIORITY). Group must not start or
	// close them: they stay owned by the config that built them.
	Group func([]Filter) Filter
}

// InstanceName is the identity of a plugin list entry: the plugin's name,
// or for a plugin with Factory.Instance the name and its instance's name.
// ok is false for an unnamed instance, which is the same as no other.
func InstanceName(name string, raw json.RawMessage) (id string, ok bool) {
	f, found := Lookup(name)
	if !found || f.Instance == nil {
		return name, true
	}
	inst := f.Instance(raw)
	if inst == "" {
		return "", false
	}
	return name + " " + strconv.Quote(inst), true
}

var (
	registryMu sync.RWMutex
	registry   = map[string]Factory{}
)

// Register makes a plugin available under f.Name. It is meant to be called
// from init functions; registering a name twice is a programmer bug and
// panics.
func Register(f Factory) {
	if f.Name == "" || f.New == nil {
		panic("sdk: Register needs a Name and a New function")
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[f.Name]; dup {
		panic(fmt.Sprintf("sdk: plugin %q registered twice", f.Name))
	}
	registry[f.Name] = f
}

// Lookup returns the factory registered under name.
func Lookup(name string) (Factory, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	f, ok := registry[name]
	return f, ok
}

// Names lists the registered plugin names, sorted.
func Names() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	out := make([]string, 0, len(registry))
	for n := range registry {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
