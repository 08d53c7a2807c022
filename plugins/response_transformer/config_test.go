package responsetransformer

import (
	"testing"

	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

// The shared engine is tested in depth by request_transformer's config
// tests; these cover what differs on the response side.
func TestConfig(t *testing.T) {
	plugintest.Configs(t, New, usersRoute(), []plugintest.ConfigCase{
		{Name: "SPEC example without path and query", Cfg: `{
			"add":    {"headers": {"X-From": "weir"}},
			"set":    {"headers": {"X-Env": "prod"}},
			"remove": {"headers": ["X-Debug"]},
			"rename": {"headers": {"X-Old": "X-New"}},
			"json":   {"set": {"meta.source": "weir"}, "remove": ["password"]}}`},
		{Name: "consumer headers are the gateway's only upstream", Cfg: `{"set":{"headers":{"X-Consumer-Name":"x"}}}`},
		{Name: "Set-Cookie may be removed", Cfg: `{"remove":{"headers":["Set-Cookie"]}}`},
		{Name: "template from a route parameter", Cfg: `{"set":{"headers":{"Location":"/v2/users/{id}"}}}`},

		{Name: "empty", Cfg: `{}`, Err: "nothing to do; configure at least one of add, set, remove, rename or json"},
		{Name: "unknown key", Cfg: `{"sett":{}}`, Err: `unknown field "sett"`},
		{Name: "path", Cfg: `{"path":"/v2"}`, Err: "path: response_transformer cannot rewrite the path; use request_transformer"},
		{Name: "add.query", Cfg: `{"add":{"query":{"v":"2"}}}`, Err: "add.query: a response has no query arguments; use request_transformer"},
		{Name: "remove.query", Cfg: `{"remove":{"query":["token"]}}`, Err: "remove.query: a response has no query arguments; use request_transformer"},
		{Name: "rename.query", Cfg: `{"rename":{"query":{"a":"b"}}}`, Err: "rename.query: a response has no query arguments; use request_transformer"},
		{Name: "bad header name", Cfg: `{"set":{"headers":{"X(A)":"1"}}}`,
			Err: "set.headers: \"X(A)\" is not a valid header name; use letters, digits and !#$%&'*+-.^_`|~ (RFC 9110 §5.6.2)"},
		{Name: "CR LF in a value", Cfg: `{"add":{"headers":{"X-A":"1\nSet-Cookie: a=b"}}}`,
			Err: "add.headers.X-A: the value contains a control character (such as CR or LF); a header value is one line of text"},
		{Name: "Content-Length", Cfg: `{"remove":{"headers":["Content-Length"]}}`,
			Err: "remove.headers: Content-Length cannot be changed: it is message framing (RFC 9112 §6.2); the gateway computes it from the body"},
		{Name: "Transfer-Encoding", Cfg: `{"set":{"headers":{"Transfer-Encoding":"chunked"}}}`,
			Err: "set.headers: Transfer-Encoding cannot be changed: it is message framing (RFC 9112 §6.1), which the gateway writes for each connection"},
		{Name: "Connection", Cfg: `{"remove":{"headers":["connection"]}}`,
			Err: "remove.headers: Connection cannot be changed: it is hop-by-hop (RFC 9110 §7.6.1) and the gateway removes it on both sides"},
		{Name: "X-Request-Id", Cfg: `{"set":{"headers":{"X-Request-Id":"1"}}}`,
			Err: "set.headers: X-Request-Id cannot be changed: it is the gateway's request ID (the client's or a generated one), used in logs and echoed on the response"},
		{Name: "Set-Cookie rename", Cfg: `{"rename":{"headers":{"Set-Cookie":"X-Cookie"}}}`,
			Err: "rename.headers.Set-Cookie: Cookie and Set-Cookie cannot be renamed (they are kept parsed, not as lines); use remove and set"},
		{Name: "unknown parameter", Cfg: `{"set":{"headers":{"Location":"/v2/{uid}"}}}`,
			Err: `set.headers.Location: {uid} is not a parameter of route "users" (it has {id})`},
		{Name: "parameter on a global instance", Build: &sdk.Build{}, Cfg: `{"set":{"headers":{"Location":"/v2/{id}"}}}`,
			Err: "set.headers.Location: {id} is a route parameter, but a global plugin has no route; configure response_transformer on the route instead"},
		{Name: "json overlap", Cfg: `{"json":{"remove":["a","a.b"]}}`,
			Err: `json: "a" and "a.b" overlap; a path may not be equal to or inside another`},
	})
}

func TestRegistered(t *testing.T) {
	plugintest.WantRegistered(t, Name)
}
