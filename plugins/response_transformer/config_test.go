package responsetransformer

import (
	"encoding/json"
	"testing"

	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

// The shared engine is tested in depth by request_transformer's config
// tests; these cover what differs on the response side.
func TestConfig(t *testing.T) {
	tests := []struct {
		name string
		b    *sdk.Build
		cfg  string
		err  string
	}{
		{name: "SPEC example without path and query", cfg: `{
			"add":    {"headers": {"X-From": "weir"}},
			"set":    {"headers": {"X-Env": "prod"}},
			"remove": {"headers": ["X-Debug"]},
			"rename": {"headers": {"X-Old": "X-New"}},
			"json":   {"set": {"meta.source": "weir"}, "remove": ["password"]}}`},
		{name: "consumer headers are the gateway's only upstream", cfg: `{"set":{"headers":{"X-Consumer-Name":"x"}}}`},
		{name: "Set-Cookie may be removed", cfg: `{"remove":{"headers":["Set-Cookie"]}}`},
		{name: "template from a route parameter", cfg: `{"set":{"headers":{"Location":"/v2/users/{id}"}}}`},

		{name: "empty", cfg: `{}`, err: "nothing to do; configure at least one of add, set, remove, rename or json"},
		{name: "unknown key", cfg: `{"sett":{}}`, err: `unknown field "sett"`},
		{name: "path", cfg: `{"path":"/v2"}`, err: "path: response_transformer cannot rewrite the path; use request_transformer"},
		{name: "add.query", cfg: `{"add":{"query":{"v":"2"}}}`, err: "add.query: a response has no query arguments; use request_transformer"},
		{name: "remove.query", cfg: `{"remove":{"query":["token"]}}`, err: "remove.query: a response has no query arguments; use request_transformer"},
		{name: "rename.query", cfg: `{"rename":{"query":{"a":"b"}}}`, err: "rename.query: a response has no query arguments; use request_transformer"},
		{name: "bad header name", cfg: `{"set":{"headers":{"X(A)":"1"}}}`,
			err: "set.headers: \"X(A)\" is not a valid header name; use letters, digits and !#$%&'*+-.^_`|~ (RFC 9110 §5.6.2)"},
		{name: "CR LF in a value", cfg: `{"add":{"headers":{"X-A":"1\nSet-Cookie: a=b"}}}`,
			err: "add.headers.X-A: the value contains a control character (such as CR or LF); a header value is one line of text"},
		{name: "Content-Length", cfg: `{"remove":{"headers":["Content-Length"]}}`,
			err: "remove.headers: Content-Length cannot be changed: it is message framing (RFC 9112 §6.2); the gateway computes it from the body"},
		{name: "Transfer-Encoding", cfg: `{"set":{"headers":{"Transfer-Encoding":"chunked"}}}`,
			err: "set.headers: Transfer-Encoding cannot be changed: it is message framing (RFC 9112 §6.1), which the gateway writes for each connection"},
		{name: "Connection", cfg: `{"remove":{"headers":["connection"]}}`,
			err: "remove.headers: Connection cannot be changed: it is hop-by-hop (RFC 9110 §7.6.1) and the gateway removes it on both sides"},
		{name: "X-Request-Id", cfg: `{"set":{"headers":{"X-Request-Id":"1"}}}`,
			err: "set.headers: X-Request-Id cannot be changed: it is the gateway's request ID (the client's or a generated one), used in logs and echoed on the response"},
		{name: "Set-Cookie rename", cfg: `{"rename":{"headers":{"Set-Cookie":"X-Cookie"}}}`,
			err: "rename.headers.Set-Cookie: Cookie and Set-Cookie cannot be renamed (they are kept parsed, not as lines); use remove and set"},
		{name: "unknown parameter", cfg: `{"set":{"headers":{"Location":"/v2/{uid}"}}}`,
			err: `set.headers.Location: {uid} is not a parameter of route "users" (it has {id})`},
		{name: "parameter on a global instance", b: &sdk.Build{}, cfg: `{"set":{"headers":{"Location":"/v2/{id}"}}}`,
			err: "set.headers.Location: {id} is a route parameter, but a global plugin has no route; configure response_transformer on the route instead"},
		{name: "json overlap", cfg: `{"json":{"remove":["a","a.b"]}}`,
			err: `json: "a" and "a.b" overlap; a path may not be equal to or inside another`},
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

func TestRegistered(t *testing.T) {
	plugintest.WantRegistered(t, Name)
}
