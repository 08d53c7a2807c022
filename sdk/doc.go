// Package sdk is the contract between Weir's proxy core and its plugins.
//
// A plugin is a Factory registered under a name. When a config snapshot is
// compiled, the Factory's New builds one Filter per plugin instance: this is
// where configs are validated and everything that can be precomputed is
// (docs/architecture.md, "the one rule"). Per request the proxy runs the filters of the
// matched route in order through OnRequest; a filter that answers the request
// returns Stop. After the upstream answered (or a filter stopped the chain),
// the ResponseFilters among the filters that ran are called in reverse order,
// and finally the LogFilters.
//
// The request body is read through Ctx.BodyBuffered, RequestBody and
// SetRequestBody, never through the fasthttp request directly: the proxy
// decides, before the first filter runs, whether a body is held in memory
// (up to 256 KiB) or streamed to the upstream, and only these say which.
//
// A plugin adds fields to the request's access-log line with
// Ctx.SetLogField (up to MaxLogFields, in any phase before the plain
// LogFilters have run); the proxy's access log writes them after its own
// fields, escaped. The cache and rate_limit plugins fill the log's cache
// and ratelimit fields this way.
//
// Phases instead of next(...) closures: a WASM or Lua guest cannot hold a Go
// continuation, and a flat loop over a slice gives one place for timing,
// panic recovery and per-plugin metrics.
package sdk
