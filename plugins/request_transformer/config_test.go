package requesttransformer

import (
	"encoding/json"
	"testing"

	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

func TestConfig(t *testing.T) {
	global := &sdk.Build{}
	noParams := &sdk.Build{Route: "plain", Params: []string{}}
	unknownParams := &sdk.Build{Route: "users"} // the proxy did not list the route's parameters
	tests := []struct {
		name string
		b    *sdk.Build
		cfg  string
		err  string // "" when valid
	}{
		// Good.
		{name: "SPEC example", cfg: `{
			"add":    {"headers": {"X-From": "weir"}, "query": {"v": "2"}},
			"set":    {"headers": {"X-Env": "prod"}},
			"remove": {"headers": ["X-Debug"], "query": ["token"]},
			"rename": {"headers": {"X-Old": "X-New"}},
			"path":   "/v2/users/{id}",
			"json":   {"set": {"meta.source": "weir"}, "remove": ["password"]}}`},
		{name: "numbers and booleans as values", cfg: `{"set":{"headers":{"X-Version":2,"X-On":true},"query":{"n":1.5}}}`},
		{name: "template in header and query values", cfg: `{"set":{"headers":{"X-User":"user-{id}"},"query":{"uid":"{id}"}}}`},
		{name: "literal braces in a header value", cfg: `{"set":{"headers":{"X-Json":"{\"a\":1}","X-Lit":"{{id}}"}}}`},
		{name: "rename target may have a default", cfg: `{"rename":{"headers":{"X-Old":"X-New"},"query":{"o":"n"}},"add":{"headers":{"X-New":"d"},"query":{"n":"d"}}}`},
		{name: "literal path on a global instance", b: global, cfg: `{"path":"/health"}`},
		{name: "params unknown to the build are checked per request", b: unknownParams, cfg: `{"path":"/v2/{anything}"}`},
		{name: "only json", cfg: `{"json":{"remove":["a"]},"max_body_bytes":10}`},
		{name: "X-Forwarded-For may be removed", cfg: `{"remove":{"headers":["X-Forwarded-For"]}}`},

		// Decoding.
		{name: "empty", cfg: `{}`, err: "nothing to do; configure at least one of add, set, remove, rename, path or json"},
		{name: "null", cfg: `null`, err: "nothing to do; configure at least one of add, set, remove, rename, path or json"},
		{name: "unknown key", cfg: `{"ad":{}}`, err: `unknown field "ad"`},
		{name: "unknown nested key", cfg: `{"add":{"header":{}}}`, err: `unknown field "header"`},
		{name: "list expected", cfg: `{"remove":{"headers":"X-Debug"}}`, err: "remove.headers: expected []string, got string"},
		{name: "object value", cfg: `{"set":{"headers":{"X-A":{"b":1}}}}`, err: "set.headers.X-A: the value must be a string, number or boolean"},
		{name: "null value", cfg: `{"add":{"query":{"a":null}}}`, err: "add.query.a: the value must be a string, number or boolean"},

		// Header names and values.
		{name: "bad header name", cfg: `{"add":{"headers":{"X Bad":"v"}}}`,
			err: "add.headers: \"X Bad\" is not a valid header name; use letters, digits and !#$%&'*+-.^_`|~ (RFC 9110 §5.6.2)"},
		{name: "header name with colon", cfg: `{"remove":{"headers":["X-A:"]}}`,
			err: "remove.headers: \"X-A:\" is not a valid header name; use letters, digits and !#$%&'*+-.^_`|~ (RFC 9110 §5.6.2)"},
		{name: "empty header name", cfg: `{"rename":{"headers":{"X-A":""}}}`,
			err: "rename.headers.X-A: \"\" is not a valid header name; use letters, digits and !#$%&'*+-.^_`|~ (RFC 9110 §5.6.2)"},
		{name: "CR LF in a value", cfg: `{"set":{"headers":{"X-A":"a\r\nX-Evil: 1"}}}`,
			err: "set.headers.X-A: the value contains a control character (such as CR or LF); a header value is one line of text"},
		{name: "NUL in a value", cfg: `{"add":{"headers":{"X-A":"a\u0000"}}}`,
			err: "add.headers.X-A: the value contains a control character (such as CR or LF); a header value is one line of text"},
		{name: "whitespace around a value", cfg: `{"set":{"headers":{"X-A":" a"}}}`,
			err: "set.headers.X-A: the value starts or ends with whitespace, which HTTP strips (RFC 9110 §5.5); remove it"},

		// Headers the gateway owns.
		{name: "Content-Length", cfg: `{"set":{"headers":{"content-length":"5"}}}`,
			err: "set.headers: Content-Length cannot be changed: it is message framing (RFC 9112 §6.2); the gateway computes it from the body"},
		{name: "Transfer-Encoding", cfg: `{"remove":{"headers":["Transfer-Encoding"]}}`,
			err: "remove.headers: Transfer-Encoding cannot be changed: it is message framing (RFC 9112 §6.1), which the gateway writes for each connection"},
		{name: "Connection", cfg: `{"add":{"headers":{"Connection":"close"}}}`,
			err: "add.headers: Connection cannot be changed: it is hop-by-hop (RFC 9110 §7.6.1) and the gateway removes it on both sides"},
		{name: "Upgrade as rename target", cfg: `{"rename":{"headers":{"X-Up":"Upgrade"}}}`,
			err: "rename.headers.X-Up: Upgrade cannot be changed: it is hop-by-hop (RFC 9110 §7.6.1) and the gateway removes it on both sides"},
		{name: "Host", cfg: `{"set":{"headers":{"Host":"example.com"}}}`,
			err: "set.headers: Host cannot be changed: the gateway sends the target's host, or the client's with the route's preserve_host: true"},
		{name: "X-Consumer-Name", cfg: `{"set":{"headers":{"X-Consumer-Name":"alice"}}}`,
			err: "set.headers: X-Consumer-Name cannot be changed: the gateway sets it from the authenticated consumer and removes copies sent by clients"},
		{name: "X-Request-Id", cfg: `{"remove":{"headers":["x-request-id"]}}`,
			err: "remove.headers: X-Request-Id cannot be changed: it is the gateway's request ID (the client's or a generated one), used in logs and echoed on the response"},
		{name: "X-Forwarded-Host", cfg: `{"set":{"headers":{"X-Forwarded-Host":"a"}}}`,
			err: "set.headers: X-Forwarded-Host cannot be changed: the gateway sets it on every forwarded request"},
		{name: "Cookie rename", cfg: `{"rename":{"headers":{"Cookie":"X-Cookie"}}}`,
			err: "rename.headers.Cookie: Cookie and Set-Cookie cannot be renamed (they are kept parsed, not as lines); use remove and set"},

		// Conflicts between operations.
		{name: "remove and set", cfg: `{"remove":{"headers":["X-A"]},"set":{"headers":{"x-a":"1"}}}`,
			err: `set.headers: "x-a" is also in remove.headers; keep one (the operations run in the order remove, rename, set, add)`},
		{name: "set and add", cfg: `{"set":{"headers":{"X-A":"1"}},"add":{"headers":{"X-A":"2"}}}`,
			err: `add.headers: "X-A" is also in set.headers; keep one (the operations run in the order remove, rename, set, add)`},
		{name: "same header twice", cfg: `{"set":{"headers":{"X-A":"1","x-a":"2"}}}`,
			err: `set.headers: "x-a" is listed twice (header names ignore case); keep one`},
		{name: "rename to itself", cfg: `{"rename":{"headers":{"X-A":"x-a"}}}`,
			err: "rename.headers.X-A: the header is renamed to itself; remove the entry"},
		{name: "two renames to one", cfg: `{"rename":{"headers":{"X-A":"X-C","X-B":"X-C"}}}`,
			err: `rename.headers: "X-A" and "X-B" are both renamed to "X-C"; keep one`},
		{name: "rename chain", cfg: `{"rename":{"headers":{"X-A":"X-B","X-B":"X-C"}}}`,
			err: "rename.headers: X-B is renamed, and X-A is renamed to it; rename X-A to X-C directly"},
		{name: "rename then set target", cfg: `{"rename":{"headers":{"X-A":"X-B"}},"set":{"headers":{"X-B":"1"}}}`,
			err: "set.headers: X-B is also the target of rename.headers.X-A, whose value set would replace; keep one"},
		{name: "rename target removed", cfg: `{"rename":{"headers":{"X-A":"X-B"}},"remove":{"headers":["X-B"]}}`,
			err: "rename.headers: the target X-B is also in remove.headers; keep one"},
		{name: "query remove and set", cfg: `{"remove":{"query":["a"]},"set":{"query":{"a":"1"}}}`,
			err: `set.query: "a" is also in remove.query; keep one (the operations run in the order remove, rename, set, add)`},
		{name: "empty query name", cfg: `{"add":{"query":{"":"1"}}}`, err: "add.query: a query argument name must not be empty"},
		{name: "empty query rename target", cfg: `{"rename":{"query":{"a":""}}}`, err: "rename.query.a: the new name must not be empty"},
		{name: "query rename chain", cfg: `{"rename":{"query":{"a":"b","b":"c"}}}`,
			err: `rename.query: "b" is renamed, and "a" is renamed to it; rename "a" to "c" directly`},

		// Templates and route parameters.
		{name: "unknown parameter in path", cfg: `{"path":"/v2/users/{uid}"}`, err: `path: {uid} is not a parameter of route "users" (it has {id})`},
		{name: "unknown parameter in header", cfg: `{"set":{"headers":{"X-U":"{user}"}}}`,
			err: `set.headers.X-U: {user} is not a parameter of route "users" (it has {id})`},
		{name: "unknown parameter in query", cfg: `{"add":{"query":{"u":"{user}"}}}`,
			err: `add.query.u: {user} is not a parameter of route "users" (it has {id})`},
		{name: "route without parameters", b: noParams, cfg: `{"path":"/v2/{id}"}`,
			err: `path: {id} is not a parameter of route "plain", which has none; write a literal brace as {{`},
		{name: "parameter on a global instance", b: global, cfg: `{"path":"/v2/users/{id}"}`,
			err: "path: {id} is a route parameter, but a global plugin has no route; configure request_transformer on the route instead"},

		// Path.
		{name: "relative path", cfg: `{"path":"v2/users"}`, err: `path: "v2/users" must start with "/"`},
		{name: "empty path", cfg: `{"path":""}`, err: `path: "" must start with "/"`},
		{name: "query in path", cfg: `{"path":"/v2?x=1"}`,
			err: `path: "/v2?x=1" must not contain "?" or "#"; change query arguments with add.query, set.query, remove.query or rename.query`},
		{name: "dot segment", cfg: `{"path":"/v2/../admin"}`, err: `path: "/v2/../admin" has a "." or ".." segment; write the path the upstream should get`},
		{name: "control character", cfg: `{"path":"/v2/\u0001"}`, err: `path: "/v2/\x01" must not contain control characters or backslashes`},
		{name: "unbalanced brace", cfg: `{"path":"/v2/{id"}`,
			err: `path: "/v2/{id" has an unbalanced "{" or "}"; write a parameter as {name} and a literal brace as {{ or }}`},
		{name: "bad parameter name", cfg: `{"path":"/v2/{1d}"}`,
			err: `path: "/v2/{1d}" has an unbalanced "{" or "}"; write a parameter as {name} and a literal brace as {{ or }}`},

		// JSON and limits.
		{name: "json overlap", cfg: `{"json":{"set":{"meta":{}},"remove":["meta.x"]}}`,
			err: `json: "meta" and "meta.x" overlap; a path may not be equal to or inside another`},
		{name: "json empty segment", cfg: `{"json":{"remove":["a..b"]}}`,
			err: `json.remove[0]: "a..b" has an empty segment; write a dotted path such as meta.source`},
		{name: "max_body_bytes zero", cfg: `{"json":{"remove":["a"]},"max_body_bytes":0}`,
			err: "max_body_bytes must be between 1 and 67108864 (64 MiB); the default is 1048576 (1 MiB)"},
		{name: "max_body_bytes huge", cfg: `{"json":{"remove":["a"]},"max_body_bytes":1000000000000}`,
			err: "max_body_bytes must be between 1 and 67108864 (64 MiB); the default is 1048576 (1 MiB)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.b
			if b == nil {
				b = usersRoute()
			}
			_, err := New(b, json.RawMessage(tt.cfg))
			plugintest.WantErr(t, err, tt.err)
		})
	}
}

// TestRegistered: the plugin is available by name once the package is
// imported (plugins/all does that for the binary).
func TestRegistered(t *testing.T) {
	plugintest.WantRegistered(t, Name)
}
