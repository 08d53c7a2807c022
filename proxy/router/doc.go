// Package router matches a request's host, method, path and headers to one
// of the routes of a config snapshot.
//
// Compile validates every route (reporting every error, with the fix) and
// builds an immutable Router; Match is then called once per request and
// does not allocate (the one exception is a regex path with named groups or
// StripPath, see below). A Router is safe for concurrent use.
//
// # Patterns
//
// Hosts are exact names ("api.example.com", case-insensitive, without port)
// or a leading wildcard ("*.example.org") that matches any subdomain at any
// depth ("a.example.org", "a.b.example.org"), never "example.org" itself.
// IPv6 literals are written in brackets ("[::1]"). No hosts means any host.
//
// Paths come in four kinds:
//
//	"/users"        prefix, segment-aware: "/users", "/users/", "/users/7"; never "/usersx"
//	"/api/"         prefix ending in "/": "/api/" and below, not "/api"
//	"/"             prefix of every path
//	"=/users"       exact: only "/users"
//	"/users/{id}"   parameter: exactly two segments, the second non-empty and captured as "id"
//	"~^/v[0-9]+/"   Go regular expression (RE2), anchored only as written; named
//	                groups (?P<id>...) are captured as parameters
//
// No paths means "/". Patterns are written in the normalized form the proxy
// matches against (percent-decoded, no dot segments, no "//"), so patterns
// that could never match such a path are refused.
//
// Methods are tokens (RFC 9110 §9.1); lowercase is accepted and uppercased.
// HEAD is not implied by GET: list it when the route should answer it. No
// methods means any method. Headers all have to be present with exactly the
// given value; names are case-insensitive (RFC 9110 §5.1).
//
// # Precedence
//
// Candidates are tried in this order, and the first whose path, methods and
// headers all match wins:
//
//  1. Host groups: routes naming the exact request host, then routes with a
//     wildcard host, the longest wildcard suffix first ("*.a.example.org"
//     before "*.example.org"), then routes without hosts.
//  2. Within one host group, by path kind: exact paths, then parameter
//     paths (more literal segments first), then prefixes (longest first;
//     "/api/" is longer than "/api"), then regexes.
//  3. Ties keep config order (route index, then the path's index in the
//     route).
//
// A route whose headers do not match is skipped as if its path did not
// match. When no candidate matches fully but at least one matched path and
// headers with another method, Match returns MethodNotAllowed and Allow
// lists the sorted union of those candidates' methods; otherwise NotFound.
//
// # Strip length
//
// Match.StripLen is how many leading bytes of the path the pattern
// consumed, so that strip_path sends path[StripLen:] ("/" when empty):
// the prefix itself without a trailing "/" ("/users" on "/users/7" → "/7",
// "/api/" on "/api/v1" → "/v1", "/" → the path unchanged); the whole path
// for exact and parameter paths; for a regex, the end of the match when it
// starts at offset 0 (one byte less when the match ends in "/", so the
// upstream path keeps its leading slash), else 0.
//
// # Costs
//
// Exact paths and hosts are map lookups; prefixes and parameter paths are
// segment tries walked once per path; wildcard hosts cost one map lookup per
// label of the request host (only suffixes no longer than the longest
// wildcard). Routes that share a path and differ only in their headers are
// checked one after another, with each header peeked once per Match.
//
// Regexes are indexed by the literal after a leading "^" ("^/v1/(.*)" →
// "/v1/"): a radix tree of these literals, walked once along the path,
// yields only the regexes whose literal starts the path, plus those
// without one (unanchored, case-folded, or starting with a class or an
// alternation), merged in config order. So a table of regexes that differ
// in their literal prefix costs about as much as one regex. Regexes that
// share their literal prefix are tried one after another; before running
// one, Match checks the longest literal every match must contain, so a
// table of them that differ in a later literal costs a fast substring
// search per regex.
// regexp.Match does not allocate (regexp pools its matchers, which are
// rebuilt after a GC empties the pool), but capturing groups needs
// FindSubmatchIndex, which allocates its result: a regex with named groups,
// or with Spec.StripPath set, costs one allocation of 2×(groups+1) ints
// when it wins. The standard library has no way to pass that slice in.
package router
