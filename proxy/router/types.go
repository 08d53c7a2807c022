package router

import (
	"fmt"

	"github.com/weirgw/weir/sdk"
)

// Spec is one route's matching conditions, as written in the config.
type Spec struct {
	// Hosts: "api.example.com" exact (case-insensitive), "*.example.org"
	// any subdomain; empty means any host.
	Hosts []string
	// Paths: "/users" prefix, "=/users" exact, "/users/{id}" parameter,
	// "~^/v[0-9]+/" regex; empty means ["/"].
	Paths []string
	// Methods: empty means any method.
	Methods []string
	// Headers all have to match: name case-insensitive, value exact.
	Headers map[string]string
	// StripPath says the caller uses Match.StripLen for this route. Only
	// regex paths care: without it (and without named groups) a regex is
	// matched with regexp.Match, which does not allocate; with it the
	// match span is needed, which costs one allocation.
	StripPath bool
}

// RouteError is one problem found by Compile.
type RouteError struct {
	Route int    // index into the specs given to Compile
	Field string // "paths[1]", "hosts[0]", `headers["X-Version"]`, "methods[2]"
	Msg   string // what is wrong and how to fix it
}

// Error renders the error with its place, for example
// `routes[2].paths[0]: "users" must start with "/", "=/" or "~"`.
func (e RouteError) Error() string {
	return fmt.Sprintf("routes[%d].%s: %s", e.Route, e.Field, e.Msg)
}

// Headers is the request headers as the router reads them.
// *fasthttp.RequestHeader satisfies it. Peek returns nil or an empty slice
// for an absent header. Match remembers what Peek returned until it
// returns (it compares one value against many routes), so a returned
// slice must not change when Peek is called for another name; Match keeps
// nothing afterwards.
type Headers interface {
	Peek(key string) []byte
}

// Param is one captured path parameter. It has the same fields as
// sdk.Param, so sdk.Param(p) converts it.
type Param struct {
	Name  string
	Value []byte // a view into the path given to Match; do not keep
}

// Result is what Match found.
type Result uint8

const (
	// NotFound: no route matches the host and path (404).
	NotFound Result = iota
	// Found: Match.Route is the route to use.
	Found
	// MethodNotAllowed: routes match the host, path and headers but not the
	// method (405); Match.Allow lists the methods they accept.
	MethodNotAllowed
)

func (r Result) String() string {
	switch r {
	case NotFound:
		return "NotFound"
	case Found:
		return "Found"
	case MethodNotAllowed:
		return "MethodNotAllowed"
	}
	return fmt.Sprintf("Result(%d)", uint8(r))
}

// allowBufSize bounds the Allow value Match builds in place when the
// methods of several candidates have to be merged. Compile knows the
// longest possible Allow; only a config whose distinct methods, joined,
// exceed this (dozens of custom methods) makes such a merge allocate.
const allowBufSize = 256

// Match receives the result of Router.Match. It is caller-owned and meant
// to be reused (the proxy keeps one per pooled request context): Match
// overwrites every field it reports. It must not be copied while Allow or
// Params are in use, because Allow may point into the Match itself and
// Params point into the request path.
type Match struct {
	// Route is the index of the matched spec (Found); -1 otherwise.
	Route int
	// Path is the index of the matched pattern in the spec's Paths (Found);
	// 0 for a spec without paths; -1 when not Found.
	Path int
	// Params are the captured path parameters, Params[:NParams]; their
	// values are views into the path given to Match and are only valid
	// while it is.
	Params  [sdk.MaxParams]Param
	NParams int
	// StripLen is how many leading bytes of the path the pattern consumed:
	// with strip_path the upstream path is path[StripLen:], "/" if empty.
	// For a regex path it is only computed when the spec has StripPath
	// (0 otherwise); see the package doc for each kind.
	StripLen int
	// Allow is the comma-separated, sorted list of methods for a 405
	// answer (MethodNotAllowed), e.g. "GET, HEAD, POST"; nil otherwise.
	// It is shared with the Router or with m: do not modify it.
	Allow []byte

	allow [allowBufSize]byte
	state matchState
}
