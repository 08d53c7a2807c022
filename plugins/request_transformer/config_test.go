package requesttransformer

import (
	"testing"

	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

func TestConfig(t *testing.T) {
	global := &sdk.Build{}
	noParams := &sdk.Build{Route: "plain", Params: []string{}}
	unknownParams := &sdk.Build{Route: "users"} // the proxy did not list the route's parameters
	plugintest.Configs(t, New, usersRoute(), []plugintest.ConfigCase{
		// Good.
		{Name: "SPEC example", Cfg: `{
			"add":    {"headers": {"X-From": "weir"}, "query": {"v": "2"}},
			"set":    {"headers": {"X-Env": "prod"}},
			"remove": {"headers": ["X-Debug"], "query": ["token"]},
			"rename": {"headers": {"X-Old": "X-New"}},
			"path":   "/v2/users/{id}",
			"json":   {"set": {"meta.source": "weir"}, "remove": ["password"]}}`},
		{Name: "numbers and booleans as values", Cfg: `{"set":{"headers":{"X-Version":2,"X-On":true},"query":{"n":1.5}}}`},
		{Name: "template in header and query values", Cfg: `{"set":{"headers":{"X-User":"user-{id}"},"query":{"uid":"{id}"}}}`},
		{Name: "literal braces in a header value", Cfg: `{"set":{"headers":{"X-Json":"{\"a\":1}","X-Lit":"{{id}}"}}}`},
		{Name: "rename target may have a default", Cfg: `{"rename":{"headers":{"X-Old":"X-New"},"query":{"o":"n"}},"add":{"headers":{"X-New":"d"},"query":{"n":"d"}}}`},
		{Name: "literal path on a global instance", Build: global, Cfg: `{"path":"/health"}`},
		{Name: "params unknown to the build are checked per request", Build: unknownParams, Cfg: `{"path":"/v2/{anything}"}`},
		{Name: "only json", Cfg: `{"json":{"remove":["a"]},"max_body_bytes":10}`},
		{Name: "X-Forwarded-For may be removed", Cfg: `{"remove":{"headers":["X-Forwarded-For"]}}`},

		// Decoding.
		{Name: "empty", Cfg: `{}`, Err: "nothing to do; configure at least one of add, set, remove, rename, path or json"},
		{Name: "null", Cfg: `null`, Err: "nothing to do; configure at least one of add, set, remove, rename, path or json"},
		{Name: "unknown key", Cfg: `{"ad":{}}`, Err: `unknown field "ad"`},
		{Name: "unknown nested key", Cfg: `{"add":{"header":{}}}`, Err: `unknown field "add.header"`},
		{Name: "list expected", Cfg: `{"remove":{"headers":"X-Debug"}}`, Err: "remove.headers: expected []string, got string"},
		{Name: "object value", Cfg: `{"set":{"headers":{"X-A":{"b":1}}}}`, Err: "set.headers.X-A: the value must be a string, number or boolean"},
		{Name: "null value", Cfg: `{"add":{"query":{"a":null}}}`, Err: "add.query.a: the value must be a string, number or boolean"},
		{Name: "every wrong key", Cfg: `{"ad":{},"remove":{"headers":"X-Debug"},"max_body_bytes":"big"}`,
			Err: "unknown field \"ad\"\nremove.headers: expected []string, got string\nmax_body_bytes: expected int64, got string"},
		{Name: "every part's error", Cfg: `{"add":{"headers":{"X Bad":"v"}},"max_body_bytes":0}`,
			Err: "add.headers: \"X Bad\" is not a valid header name; use letters, digits and !#$%&'*+-.^_`|~ (RFC 9110 §5.6.2)\n" +
				"max_body_bytes must be between 1 and 67108864 (64 MiB); the default is 1048576 (1 MiB)"},

		// Header names and values.
		{Name: "bad header name", Cfg: `{"add":{"headers":{"X Bad":"v"}}}`,
			Err: "add.headers: \"X Bad\" is not a valid header name; use letters, digits and !#$%&'*+-.^_`|~ (RFC 9110 §5.6.2)"},
		{Name: "header name with colon", Cfg: `{"remove":{"headers":["X-A:"]}}`,
			Err: "remove.headers: \"X-A:\" is not a valid header name; use letters, digits and !#$%&'*+-.^_`|~ (RFC 9110 §5.6.2)"},
		{Name: "empty header name", Cfg: `{"rename":{"headers":{"X-A":""}}}`,
			Err: "rename.headers.X-A: \"\" is not a valid header name; use letters, digits and !#$%&'*+-.^_`|~ (RFC 9110 §5.6.2)"},
		{Name: "CR LF in a value", Cfg: `{"set":{"headers":{"X-A":"a\r\nX-Evil: 1"}}}`,
			Err: "set.headers.X-A: the value contains a control character (such as CR or LF); a header value is one line of text"},
		{Name: "NUL in a value", Cfg: `{"add":{"headers":{"X-A":"a\u0000"}}}`,
			Err: "add.headers.X-A: the value contains a control character (such as CR or LF); a header value is one line of text"},
		{Name: "whitespace around a value", Cfg: `{"set":{"headers":{"X-A":" a"}}}`,
			Err: "set.headers.X-A: the value starts or ends with whitespace, which HTTP strips (RFC 9110 §5.5); remove it"},

		// Headers the gateway owns.
		{Name: "Content-Length", Cfg: `{"set":{"headers":{"content-length":"5"}}}`,
			Err: "set.headers: Content-Length cannot be changed: it is message framing (RFC 9112 §6.2); the gateway computes it from the body"},
		{Name: "Transfer-Encoding", Cfg: `{"remove":{"headers":["Transfer-Encoding"]}}`,
			Err: "remove.headers: Transfer-Encoding cannot be changed: it is message framing (RFC 9112 §6.1), which the gateway writes for each connection"},
		{Name: "Connection", Cfg: `{"add":{"headers":{"Connection":"close"}}}`,
			Err: "add.headers: Connection cannot be changed: it is hop-by-hop (RFC 9110 §7.6.1) and the gateway removes it on both sides"},
		{Name: "Upgrade as rename target", Cfg: `{"rename":{"headers":{"X-Up":"Upgrade"}}}`,
			Err: "rename.headers.X-Up: Upgrade cannot be changed: it is hop-by-hop (RFC 9110 §7.6.1) and the gateway removes it on both sides"},
		{Name: "Host", Cfg: `{"set":{"headers":{"Host":"example.com"}}}`,
			Err: "set.headers: Host cannot be changed: the gateway sends the target's host, or the client's with the route's preserve_host: true"},
		{Name: "X-Consumer-Name", Cfg: `{"set":{"headers":{"X-Consumer-Name":"alice"}}}`,
			Err: "set.headers: X-Consumer-Name cannot be changed: the gateway sets it from the authenticated consumer and removes copies sent by clients"},
		{Name: "X-Request-Id", Cfg: `{"remove":{"headers":["x-request-id"]}}`,
			Err: "remove.headers: X-Request-Id cannot be changed: it is the gateway's request ID (the client's or a generated one), used in logs and echoed on the response"},
		{Name: "X-Forwarded-Host", Cfg: `{"set":{"headers":{"X-Forwarded-Host":"a"}}}`,
			Err: "set.headers: X-Forwarded-Host cannot be changed: the gateway sets it on every forwarded request"},
		{Name: "Cookie rename", Cfg: `{"rename":{"headers":{"Cookie":"X-Cookie"}}}`,
			Err: "rename.headers.Cookie: Cookie and Set-Cookie cannot be renamed (they are kept parsed, not as lines); use remove and set"},

		// Conflicts between operations.
		{Name: "remove and set", Cfg: `{"remove":{"headers":["X-A"]},"set":{"headers":{"x-a":"1"}}}`,
			Err: `set.headers: "x-a" is also in remove.headers; keep one (the operations run in the order remove, rename, set, add)`},
		{Name: "set and add", Cfg: `{"set":{"headers":{"X-A":"1"}},"add":{"headers":{"X-A":"2"}}}`,
			Err: `add.headers: "X-A" is also in set.headers; keep one (the operations run in the order remove, rename, set, add)`},
		{Name: "same header twice", Cfg: `{"set":{"headers":{"X-A":"1","x-a":"2"}}}`,
			Err: `set.headers: "x-a" is listed twice (header names ignore case); keep one`},
		{Name: "rename to itself", Cfg: `{"rename":{"headers":{"X-A":"x-a"}}}`,
			Err: "rename.headers.X-A: the header is renamed to itself; remove the entry"},
		{Name: "two renames to one", Cfg: `{"rename":{"headers":{"X-A":"X-C","X-B":"X-C"}}}`,
			Err: `rename.headers: "X-A" and "X-B" are both renamed to "X-C"; keep one`},
		{Name: "rename chain", Cfg: `{"rename":{"headers":{"X-A":"X-B","X-B":"X-C"}}}`,
			Err: "rename.headers: X-B is renamed, and X-A is renamed to it; rename X-A to X-C directly"},
		{Name: "rename then set target", Cfg: `{"rename":{"headers":{"X-A":"X-B"}},"set":{"headers":{"X-B":"1"}}}`,
			Err: "set.headers: X-B is also the target of rename.headers.X-A, whose value set would replace; keep one"},
		{Name: "rename target removed", Cfg: `{"rename":{"headers":{"X-A":"X-B"}},"remove":{"headers":["X-B"]}}`,
			Err: "rename.headers: the target X-B is also in remove.headers; keep one"},
		{Name: "query remove and set", Cfg: `{"remove":{"query":["a"]},"set":{"query":{"a":"1"}}}`,
			Err: `set.query: "a" is also in remove.query; keep one (the operations run in the order remove, rename, set, add)`},
		{Name: "empty query name", Cfg: `{"add":{"query":{"":"1"}}}`, Err: "add.query: a query argument name must not be empty"},
		{Name: "empty query rename target", Cfg: `{"rename":{"query":{"a":""}}}`, Err: "rename.query.a: the new name must not be empty"},
		{Name: "query rename chain", Cfg: `{"rename":{"query":{"a":"b","b":"c"}}}`,
			Err: `rename.query: "b" is renamed, and "a" is renamed to it; rename "a" to "c" directly`},

		// Templates and route parameters.
		{Name: "unknown parameter in path", Cfg: `{"path":"/v2/users/{uid}"}`, Err: `path: {uid} is not a parameter of route "users" (it has {id})`},
		{Name: "unknown parameter in header", Cfg: `{"set":{"headers":{"X-U":"{user}"}}}`,
			Err: `set.headers.X-U: {user} is not a parameter of route "users" (it has {id})`},
		{Name: "unknown parameter in query", Cfg: `{"add":{"query":{"u":"{user}"}}}`,
			Err: `add.query.u: {user} is not a parameter of route "users" (it has {id})`},
		{Name: "route without parameters", Build: noParams, Cfg: `{"path":"/v2/{id}"}`,
			Err: `path: {id} is not a parameter of route "plain", which has none; write a literal brace as {{`},
		{Name: "parameter on a global instance", Build: global, Cfg: `{"path":"/v2/users/{id}"}`,
			Err: "path: {id} is a route parameter, but a global plugin has no route; configure request_transformer on the route instead"},

		// Path.
		{Name: "relative path", Cfg: `{"path":"v2/users"}`, Err: `path: "v2/users" must start with "/"`},
		{Name: "empty path", Cfg: `{"path":""}`, Err: `path: "" must start with "/"`},
		{Name: "query in path", Cfg: `{"path":"/v2?x=1"}`,
			Err: `path: "/v2?x=1" must not contain "?" or "#"; change query arguments with add.query, set.query, remove.query or rename.query`},
		{Name: "dot segment", Cfg: `{"path":"/v2/../admin"}`, Err: `path: "/v2/../admin" has a "." or ".." segment; write the path the upstream should get`},
		{Name: "control character", Cfg: `{"path":"/v2/\u0001"}`, Err: `path: "/v2/\x01" must not contain control characters or backslashes`},
		{Name: "unbalanced brace", Cfg: `{"path":"/v2/{id"}`,
			Err: `path: "/v2/{id" has an unbalanced "{" or "}"; write a parameter as {name} and a literal brace as {{ or }}`},
		{Name: "bad parameter name", Cfg: `{"path":"/v2/{1d}"}`,
			Err: `path: "/v2/{1d}" has an unbalanced "{" or "}"; write a parameter as {name} and a literal brace as {{ or }}`},

		// JSON and limits.
		{Name: "json overlap", Cfg: `{"json":{"set":{"meta":{}},"remove":["meta.x"]}}`,
			Err: `json: "meta" and "meta.x" overlap; a path may not be equal to or inside another`},
		{Name: "json empty segment", Cfg: `{"json":{"remove":["a..b"]}}`,
			Err: `json.remove[0]: "a..b" has an empty segment; write a dotted path such as meta.source`},
		{Name: "max_body_bytes zero", Cfg: `{"json":{"remove":["a"]},"max_body_bytes":0}`,
			Err: "max_body_bytes must be between 1 and 67108864 (64 MiB); the default is 1048576 (1 MiB)"},
		{Name: "max_body_bytes huge", Cfg: `{"json":{"remove":["a"]},"max_body_bytes":1000000000000}`,
			Err: "max_body_bytes must be between 1 and 67108864 (64 MiB); the default is 1048576 (1 MiB)"},
	})
}

// TestRegistered: the plugin is available by name once the package is
// imported (plugins/all does that for the binary).
func TestRegistered(t *testing.T) {
	plugintest.WantRegistered(t, Name)
}
