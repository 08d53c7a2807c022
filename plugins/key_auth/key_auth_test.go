package keyauth

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

// consumer builds a consumer whose key_auth credentials are the given JSON
// objects.
func consumer(name string, creds ...string) *sdk.Consumer {
	c := &sdk.Consumer{Name: name, Groups: []string{name + "-group"}, Credentials: sdk.Credentials{}}
	if len(creds) > 0 {
		l := sdk.CredentialList{Plugin: "key_auth"}
		for _, cr := range creds {
			l.List = append(l.List, json.RawMessage(cr))
		}
		c.Credentials = sdk.Credentials{l}
	}
	return c
}

func testConsumers() *sdk.Consumers {
	return sdk.NewConsumers([]*sdk.Consumer{
		consumer("alice", `{"key":"alice-key-1"}`, `{"key":"alice-key-2","id":"alice-ci"}`),
		consumer("bob", `{"key":"bob-key"}`),
		consumer("guest"),
	})
}

func mustNew(t testing.TB, route, cfg string) *filter {
	t.Helper()
	return plugintest.New[*filter](t, New, &sdk.Build{Route: route, Consumers: testConsumers()}, cfg)
}

func TestConfig(t *testing.T) {
	plugintest.Configs(t, New, &sdk.Build{Route: "r", Consumers: testConsumers()}, []plugintest.ConfigCase{
		{Name: "defaults", Cfg: ``},
		{Name: "header", Cfg: `{"header":"Authorization"}`},
		{Name: "header only", Cfg: `{"query":""}`},
		{Name: "query only", Cfg: `{"header":"","query":"key"}`},
		{Name: "lists", Cfg: `{"header_names":["X-Key","X-Api-Token"],"query_names":["k","key"]}`},
		{Name: "anonymous", Cfg: `{"anonymous":"guest","hide_credentials":true}`},
		{Name: "unknown key", Cfg: `{"headers":["X"]}`, Err: `unknown field "headers"`},
		{Name: "wrong type", Cfg: `{"hide_credentials":"yes"}`, Err: "hide_credentials: expected bool, got string"},
		{Name: "header and list", Cfg: `{"header":"X","header_names":["Y"]}`, Err: "set header or header_names, not both"},
		{Name: "query and list", Cfg: `{"query":"x","query_names":["y"]}`, Err: "set query or query_names, not both"},
		{Name: "no sources", Cfg: `{"header":"","query":""}`, Err: "no place to read the key from: set header or query"},
		{Name: "empty lists", Cfg: `{"header_names":[],"query_names":[]}`, Err: "no place to read the key from: set header or query"},
		{Name: "bad header", Cfg: `{"header":"X Key"}`, Err: `header: "X Key" is not a valid header name`},
		{Name: "bad header in list", Cfg: `{"header_names":["X-Key","X:Key"]}`, Err: `header_names[1]: "X:Key" is not a valid header name`},
		{Name: "empty name in list", Cfg: `{"query_names":["k",""]}`, Err: "query_names[1]: empty name; remove it"},
		{Name: "duplicate name", Cfg: `{"header_names":["X-Key","X-Key"]}`, Err: `header_names[1]: "X-Key" is listed twice`},
		{Name: "unknown anonymous", Cfg: `{"anonymous":"nobody"}`, Err: `anonymous: no consumer named "nobody"; add it under consumers or fix the name`},
		{Name: "every error", Cfg: `{"header":"X Key","query_names":["k",""],"anonymous":"nobody"}`,
			Err: `header: "X Key" is not a valid header name` + "\n" + "query_names[1]: empty name; remove it\n" +
				`anonymous: no consumer named "nobody"; add it under consumers or fix the name`},
	})
}

func TestCredentials(t *testing.T) {
	tests := []struct {
		name      string
		consumers []*sdk.Consumer
		err       string
	}{
		{"none", nil, ""},
		{"good", []*sdk.Consumer{consumer("a", `{"key":"k1"}`, `{"key":"k2","id":"a2"}`), consumer("b", `{"key":"k3"}`)}, ""},
		{"empty key", []*sdk.Consumer{consumer("a", `{"key":""}`)}, `consumer "a": key_auth[0]: key must be set`},
		{"no key", []*sdk.Consumer{consumer("a", `{"id":"x"}`)}, `consumer "a": key_auth[0]: key must be set`},
		{"unknown field", []*sdk.Consumer{consumer("a", `{"key":"k","secret":"s"}`)}, `consumer "a": key_auth[0]: unknown field "secret"`},
		{"not an object", []*sdk.Consumer{consumer("a", `"k"`)}, `consumer "a": key_auth[0]: a credential is an object like {key: "..."}`},
		{"same key twice", []*sdk.Consumer{consumer("a", `{"key":"k"}`, `{"key":"k"}`)}, `consumer "a": key_auth[1] repeats the key of key_auth[0]; remove one`},
		{"shared key", []*sdk.Consumer{consumer("alice", `{"key":"k"}`), consumer("bob", `{"key":"x"}`, `{"key":"k"}`)}, `consumers "alice" and "bob" share an API key; every key must be unique`},
		{"duplicate id", []*sdk.Consumer{consumer("a", `{"key":"k1","id":"x"}`), consumer("b", `{"key":"k2","id":"x"}`)}, `consumer "b": key_auth[0]: id "x" is already used by consumer "a"; ids must be unique`},
		// An id written as another credential's default one collides
		// with it, whichever comes first; one naming a credential that has
		// its own id, or none, does not.
		{"id is a default id", []*sdk.Consumer{consumer("a", `{"key":"k1"}`), consumer("b", `{"key":"k2","id":"a#0"}`)}, `consumer "b": key_auth[0]: id "a#0" is already used by consumer "a"; ids must be unique`},
		{"id is a later default id", []*sdk.Consumer{consumer("b", `{"key":"k2","id":"a#1"}`), consumer("a", `{"key":"k1"}`, `{"key":"k3"}`)}, `consumer "b": key_auth[0]: id "a#1" is already used by consumer "a"; ids must be unique`},
		{"id like a default id", []*sdk.Consumer{consumer("a", `{"key":"k1","id":"z"}`), consumer("b", `{"key":"k2","id":"a#0"}`, `{"key":"k3","id":"a#1"}`, `{"key":"k4","id":"a#00"}`)}, ""},
		{"every bad credential", []*sdk.Consumer{consumer("a", `{"key":""}`, `{"key":1,"secret":"s"}`), consumer("b", `"k"`)},
			`consumer "a": key_auth[0]: key must be set` + "\n" +
				`consumer "a": key_auth[1]: key: expected string, got number` + "\n" +
				`consumer "a": key_auth[1]: unknown field "secret"` + "\n" +
				`consumer "b": key_auth[0]: a credential is an object like {key: "..."}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(&sdk.Build{Route: "r", Consumers: sdk.NewConsumers(tt.consumers)}, nil)
			plugintest.WantErr(t, err, tt.err)
		})
	}
}

type request struct {
	uri     string
	headers map[string]string
	// consumer already set by an earlier auth plugin
	before *sdk.Consumer
}

func run(t *testing.T, f *filter, r request) (*fasthttp.RequestCtx, *sdk.Ctx, sdk.Status) {
	t.Helper()
	return plugintest.Do(t, f, plugintest.Request{URI: r.uri, Headers: r.headers, RequestID: "req-1", Consumer: r.before, Credential: "earlier"})
}

// anonymousOf is a placeholder for "the filter's anonymous consumer".
var anonymousOf = &sdk.Consumer{Name: "placeholder"}

func TestOnRequest(t *testing.T) {
	cs := testConsumers()
	tests := []struct {
		name     string
		cfg      string
		req      request
		consumer string // "" with status 0: no consumer set
		credID   string
		status   int // 0: continue
		errMsg   string
	}{
		{"header key", ``, request{uri: "/x", headers: map[string]string{"X-API-Key": "alice-key-1"}}, "alice", "alice#0", 0, ""},
		{"header case-insensitive", ``, request{uri: "/x", headers: map[string]string{"x-api-key": "bob-key"}}, "bob", "bob#0", 0, ""},
		{"explicit id", ``, request{uri: "/x", headers: map[string]string{"X-API-Key": "alice-key-2"}}, "alice", "alice-ci", 0, ""},
		{"query key", ``, request{uri: "/x?a=1&apikey=bob-key"}, "bob", "bob#0", 0, ""},
		{"percent-encoded query key", ``, request{uri: "/x?apikey=alice%2Dkey%2D1"}, "alice", "alice#0", 0, ""},
		{"header before query", ``, request{uri: "/x?apikey=bob-key", headers: map[string]string{"X-API-Key": "alice-key-1"}}, "alice", "alice#0", 0, ""},
		{"empty header falls back to query", ``, request{uri: "/x?apikey=bob-key", headers: map[string]string{"X-API-Key": ""}}, "bob", "bob#0", 0, ""},
		{"missing", ``, request{uri: "/x"}, "", "", 401, "missing API key"},
		{"empty query", ``, request{uri: "/x?apikey="}, "", "", 401, "missing API key"},
		{"wrong key", ``, request{uri: "/x", headers: map[string]string{"X-API-Key": "alice-key-3"}}, "", "", 401, "invalid API key"},
		{"prefix of a key", ``, request{uri: "/x", headers: map[string]string{"X-API-Key": "alice-key-"}}, "", "", 401, "invalid API key"},
		{"key with padding", ``, request{uri: "/x?apikey=%20bob-key"}, "", "", 401, "invalid API key"},
		{"wrong key in query", ``, request{uri: "/x?apikey=nope"}, "", "", 401, "invalid API key"},
		{"custom header", `{"header":"Authorization"}`, request{uri: "/x", headers: map[string]string{"Authorization": "bob-key"}}, "bob", "bob#0", 0, ""},
		{"default header off with custom", `{"header":"Authorization"}`, request{uri: "/x", headers: map[string]string{"X-API-Key": "bob-key"}}, "", "", 401, "missing API key"},
		{"query disabled", `{"query":""}`, request{uri: "/x?apikey=bob-key"}, "", "", 401, "missing API key"},
		{"header disabled", `{"header":""}`, request{uri: "/x", headers: map[string]string{"X-API-Key": "bob-key"}}, "", "", 401, "missing API key"},
		{"second header name", `{"header_names":["X-Key","X-Token"]}`, request{uri: "/x", headers: map[string]string{"X-Token": "bob-key"}}, "bob", "bob#0", 0, ""},
		{"second query name", `{"query_names":["k","key"]}`, request{uri: "/x?key=bob-key"}, "bob", "bob#0", 0, ""},
		{"anonymous when missing", `{"anonymous":"guest"}`, request{uri: "/x"}, "guest", "anonymous", 0, ""},
		{"anonymous when invalid", `{"anonymous":"guest"}`, request{uri: "/x?apikey=nope"}, "guest", "anonymous", 0, ""},
		{"anonymous with valid key", `{"anonymous":"guest"}`, request{uri: "/x?apikey=bob-key"}, "bob", "bob#0", 0, ""},
		{"anonymous keeps earlier consumer", `{"anonymous":"guest"}`, request{uri: "/x", before: cs.Get("alice")}, "alice", "earlier", 0, ""},
		{"anonymous earlier is replaced", `{"anonymous":"guest"}`, request{uri: "/x?apikey=bob-key", before: anonymousOf}, "bob", "bob#0", 0, ""},
		{"without anonymous an earlier consumer is not enough", ``, request{uri: "/x", before: cs.Get("alice")}, "", "", 401, "missing API key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustNew(t, "r", tt.cfg)
			if tt.req.before == anonymousOf {
				tt.req.before = f.anon // the filter's own anonymous consumer
			}
			rc, c, st := run(t, f, tt.req)
			if tt.status != 0 {
				if st != sdk.Stop || rc.Response.StatusCode() != tt.status {
					t.Fatalf("got %v %d, want Stop %d", st, rc.Response.StatusCode(), tt.status)
				}
				want := `{"status":401,"error":"` + tt.errMsg + `","request_id":"req-1"}`
				if body := string(rc.Response.Body()); body != want {
					t.Fatalf("body = %s, want %s", body, want)
				}
				if got := string(rc.Response.Header.Peek("WWW-Authenticate")); got != `Key realm="weir"` {
					t.Fatalf("WWW-Authenticate = %q", got)
				}
				return
			}
			if st != sdk.Continue {
				t.Fatalf("Stop %d %s, want Continue", rc.Response.StatusCode(), rc.Response.Body())
			}
			if got := c.Consumer(); got == nil || got.Name != tt.consumer {
				t.Fatalf("consumer = %v, want %s", got, tt.consumer)
			}
			if c.Credential() != tt.credID {
				t.Fatalf("credential = %q, want %q", c.Credential(), tt.credID)
			}
		})
	}
}

func TestHideCredentials(t *testing.T) {
	tests := []struct {
		name, cfg string
		req       request
		wantURI   string
		wantQuery string
		keptHdrs  []string
		goneHdrs  []string
	}{
		{"header removed", `{"hide_credentials":true}`,
			request{uri: "/x?a=1", headers: map[string]string{"X-API-Key": "bob-key", "X-Other": "o"}},
			"/x?a=1", "a=1", []string{"X-Other"}, []string{"X-API-Key"}},
		{"query removed", `{"hide_credentials":true}`,
			request{uri: "/x?a=1&apikey=bob-key&b=2"}, "/x?a=1&b=2", "a=1&b=2", nil, nil},
		{"only query arg removed", `{"hide_credentials":true}`,
			request{uri: "/x?apikey=bob-key"}, "/x", "", nil, nil},
		{"unused sources stripped too", `{"hide_credentials":true}`,
			request{uri: "/x?apikey=other&z=1", headers: map[string]string{"X-API-Key": "bob-key"}},
			"/x?z=1", "z=1", nil, []string{"X-API-Key"}},
		{"every listed source", `{"hide_credentials":true,"header_names":["X-A","X-B"],"query_names":["k1","k2"]}`,
			request{uri: "/x?k1=a&k2=zzz&k1=c", headers: map[string]string{"X-A": "bob-key", "X-B": "zzz"}},
			"/x", "", nil, []string{"X-A", "X-B"}},
		{"anonymous stripped", `{"hide_credentials":true,"anonymous":"guest"}`,
			request{uri: "/x?apikey=bad", headers: map[string]string{"X-API-Key": "bad"}},
			"/x", "", nil, []string{"X-API-Key"}},
		{"kept without hide", ``,
			request{uri: "/x?apikey=bob-key", headers: map[string]string{"X-API-Key": "bob-key"}},
			"/x?apikey=bob-key", "apikey=bob-key", []string{"X-API-Key"}, nil},
		{"other args untouched", `{"hide_credentials":true}`,
			request{uri: "/x?q=a%20b&apikey=bob-key&r=%2B+"}, "/x?q=a%20b&r=%2B+", "q=a%20b&r=%2B+", nil, nil},
		{"encoded name stripped", `{"hide_credentials":true}`,
			request{uri: "/x?a=1&api%6Bey=bob-key"}, "/x?a=1", "a=1", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustNew(t, "r", tt.cfg)
			rc, _, st := run(t, f, tt.req)
			if st != sdk.Continue {
				t.Fatalf("Stop %d %s", rc.Response.StatusCode(), rc.Response.Body())
			}
			if got := string(rc.Request.RequestURI()); got != tt.wantURI {
				t.Errorf("RequestURI = %q, want %q", got, tt.wantURI)
			}
			if got := string(rc.Request.URI().QueryString()); got != tt.wantQuery {
				t.Errorf("QueryString = %q, want %q", got, tt.wantQuery)
			}
			for _, h := range tt.keptHdrs {
				if len(rc.Request.Header.Peek(h)) == 0 {
					t.Errorf("header %s was removed", h)
				}
			}
			for _, h := range tt.goneHdrs {
				if len(rc.Request.Header.Peek(h)) != 0 {
					t.Errorf("header %s still present", h)
				}
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	f := mustNew(t, "", ``)
	get := func(reason string) uint64 {
		return metrics.GetOrCreateCounter(`weir_auth_failures_total{plugin="key_auth",route="_global",reason="` + reason + `"}`).Get()
	}
	m0, i0 := get("missing"), get("invalid")
	run(t, f, request{uri: "/x"})
	run(t, f, request{uri: "/x?apikey=bad"})
	run(t, f, request{uri: "/x?apikey=bad"})
	run(t, f, request{uri: "/x?apikey=bob-key"})
	if d := get("missing") - m0; d != 1 {
		t.Errorf("missing moved by %d, want 1", d)
	}
	if d := get("invalid") - i0; d != 2 {
		t.Errorf("invalid moved by %d, want 2", d)
	}

	fa := mustNew(t, "anon-route", `{"anonymous":"guest"}`)
	anon := metrics.GetOrCreateCounter(`weir_auth_anonymous_total{plugin="key_auth",route="anon-route"}`)
	a0 := anon.Get()
	run(t, fa, request{uri: "/x"})
	if d := anon.Get() - a0; d != 1 {
		t.Errorf("anonymous moved by %d, want 1", d)
	}
}

// TestIndexShared checks that routes built from the same consumers share one
// index and that new consumers are re-indexed.
func TestIndexShared(t *testing.T) {
	cs := testConsumers()
	f1, _ := New(&sdk.Build{Route: "a", Consumers: cs}, nil)
	f2, _ := New(&sdk.Build{Route: "b", Consumers: cs}, nil)
	k1, k2 := f1.(*filter).keys, f2.(*filter).keys
	if k1.keys.Len() != 3 || k1 != k2 {
		t.Fatalf("index sizes %d %d, want 3, one index shared", k1.keys.Len(), k2.keys.Len())
	}
	other := sdk.NewConsumers([]*sdk.Consumer{consumer("zed", `{"key":"zed-key"}`)})
	f3, err := New(&sdk.Build{Route: "c", Consumers: other}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f3.(*filter).keys.keys.Len() != 1 {
		t.Fatalf("new consumers not re-indexed")
	}
}

func TestRegistered(t *testing.T) { plugintest.WantRegistered(t, "key_auth") }

func TestOnRequestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	for _, tc := range []struct {
		name, cfg, uri, header string
		want                   sdk.Status
	}{
		{"header", ``, "/x", "alice-key-1", sdk.Continue},
		{"query", ``, "/x?a=1&apikey=bob-key", "", sdk.Continue},
		{"anonymous", `{"anonymous":"guest"}`, "/x", "", sdk.Continue},
		{"hide header and query", `{"hide_credentials":true}`, "/x?a=1&apikey=bob-key", "alice-key-1", sdk.Continue},
		{"missing", ``, "/x", "", sdk.Stop},
		{"invalid", ``, "/x", "wrong", sdk.Stop},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := mustNew(t, "r", tc.cfg)
			var rc fasthttp.RequestCtx
			// Each run is a new request: a fresh Ctx from the pool and what
			// hide_credentials removes restored, as on a reused connection.
			reset := func() {
				rc.Request.SetRequestURI(tc.uri)
				if tc.header != "" {
					rc.Request.Header.Set("X-API-Key", tc.header)
				}
			}
			once := func() {
				reset()
				c := sdk.AcquireCtx(&rc)
				if st, _ := f.OnRequest(c); st != tc.want {
					t.Fatalf("status %v, want %v", st, tc.want)
				}
				sdk.ReleaseCtx(c)
			}
			// A refusal may cost what sdk.Ctx.Fail's JSON body costs.
			var fail func()
			if tc.want == sdk.Stop {
				fail = func() {
					reset()
					c := sdk.AcquireCtx(&rc)
					c.Fail(401, "missing API key")
					sdk.ReleaseCtx(c)
				}
			}
			plugintest.AllocsAtMost(t, once, fail)
		})
	}
}

func TestErrorBodyEscapesNothingFromClient(t *testing.T) {
	// The error text is fixed: nothing the client sent is echoed back.
	f := mustNew(t, "r", ``)
	rc, _, _ := run(t, f, request{uri: "/x", headers: map[string]string{"X-API-Key": `<script>"`}})
	if strings.Contains(string(rc.Response.Body()), "script") {
		t.Fatalf("client bytes echoed: %s", rc.Response.Body())
	}
}

// TestHeaderNameAnyCase: the configured header name and the one on the
// wire match whatever their case (header names are case-insensitive),
// with the request parsed from bytes as the server parses it.
func TestHeaderNameAnyCase(t *testing.T) {
	for _, cfg := range []string{`{"header":"x-api-TOKEN"}`, `{"header_names":["X-Other","X-API-TOKEN"]}`} {
		f := mustNew(t, "r", cfg)
		for _, wire := range []string{"x-api-token", "X-Api-Token", "X-API-TOKEN"} {
			var rc fasthttp.RequestCtx
			raw := "GET /x HTTP/1.1\r\nHost: h\r\n" + wire + ": alice-key-1\r\n\r\n"
			if err := rc.Request.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
				t.Fatal(err)
			}
			c := sdk.AcquireCtx(&rc)
			st, err := f.OnRequest(c)
			if err != nil || st != sdk.Continue || c.Consumer() == nil || c.Consumer().Name != "alice" {
				t.Fatalf("config %s, header %q: status %v, consumer %v, %s", cfg, wire, st, c.Consumer(), rc.Response.Body())
			}
			sdk.ReleaseCtx(c)
		}
	}
}
