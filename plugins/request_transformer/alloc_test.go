package requesttransformer

import (
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

// allocCase is one request shape; reset restores what OnRequest changed so
// every run does the full work.
type allocCase struct {
	name   string
	cfg    string
	reset  func(req *fasthttp.Request)
	params []string
	// done reports whether the request shows the transformation, so the
	// zero-allocation claim is about requests that were really edited.
	done func(req *fasthttp.Request, upstreamPath string) bool
}

const specConfig = `{
	"add":    {"headers": {"X-From": "weir"}, "query": {"v": "2"}},
	"set":    {"headers": {"X-Env": "prod"}},
	"remove": {"headers": ["X-Debug"], "query": ["token"]},
	"rename": {"headers": {"X-Old": "X-New"}},
	"path":   "/v2/users/{id}",
	"json":   {"set": {"meta.source": "weir"}, "remove": ["password"]}}`

const jsonBody = `{"id":7,"name":"Ada Lovelace","email":"ada@example.com","password":"hunter2","roles":["admin","dev"],"meta":{"created":"2024-01-01T00:00:00Z"}}`

var allocCases = []allocCase{
	{name: "header-only", cfg: `{"add":{"headers":{"X-From":"weir"}},"set":{"headers":{"X-Env":"prod"}},"remove":{"headers":["X-Debug"]}}`,
		reset: func(req *fasthttp.Request) {
			req.Header.Set("X-Debug", "1")
			req.Header.Del("X-From")
		},
		done: func(req *fasthttp.Request, _ string) bool {
			return string(req.Header.Peek("X-From")) == "weir" && len(req.Header.Peek("X-Debug")) == 0
		}},
	{name: "header rename", cfg: `{"rename":{"headers":{"X-Old":"X-New"}}}`,
		reset: func(req *fasthttp.Request) { req.Header.Set("X-Old", "o") },
		done: func(req *fasthttp.Request, _ string) bool {
			return string(req.Header.Peek("X-New")) == "o" && len(req.Header.Peek("X-Old")) == 0
		}},
	{name: "header template", cfg: `{"set":{"headers":{"X-User":"user-{id}"}}}`, params: []string{"id", "42"},
		reset: func(req *fasthttp.Request) { req.Header.Del("X-User") },
		done:  func(req *fasthttp.Request, _ string) bool { return string(req.Header.Peek("X-User")) == "user-42" }},
	{name: "query", cfg: `{"add":{"query":{"v":"2"}},"remove":{"query":["token"]}}`,
		reset: func(req *fasthttp.Request) { req.URI().SetQueryString("token=abc&q=1") },
		done:  func(req *fasthttp.Request, _ string) bool { return string(req.URI().QueryString()) == "q=1&v=2" }},
	{name: "path template", cfg: `{"path":"/v2/users/{id}"}`, params: []string{"id", "42"},
		reset: func(req *fasthttp.Request) {},
		done:  func(_ *fasthttp.Request, up string) bool { return up == "/v2/users/42" }},
	{name: "json", cfg: `{"json":{"set":{"meta.source":"weir"},"remove":["password"]}}`,
		reset: func(req *fasthttp.Request) { req.SetBodyString(jsonBody) },
		done:  jsonDone},
	{name: "SPEC example", cfg: specConfig, params: []string{"id", "42"},
		reset: func(req *fasthttp.Request) {
			req.Header.Set("X-Debug", "1")
			req.Header.Set("X-Old", "o")
			req.Header.Del("X-From")
			req.URI().SetQueryString("token=abc&q=1")
			req.SetBodyString(jsonBody)
		},
		done: func(req *fasthttp.Request, up string) bool {
			return jsonDone(req, up) && up == "/v2/users/42" && string(req.URI().QueryString()) == "q=1&v=2" &&
				string(req.Header.Peek("X-New")) == "o" && string(req.Header.Peek("X-Env")) == "prod"
		}},
}

func jsonDone(req *fasthttp.Request, _ string) bool {
	const want = `{"id":7,"name":"Ada Lovelace","email":"ada@example.com","roles":["admin","dev"],"meta":{"created":"2024-01-01T00:00:00Z","source":"weir"}}`
	return string(req.Body()) == want && req.Header.ContentLength() == len(want)
}

// TestOnRequestZeroAllocs: every operation, including the JSON edit, runs
// without allocating once the pools are warm.
func TestOnRequestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under -race")
	}
	for _, ac := range allocCases {
		t.Run(ac.name, func(t *testing.T) {
			f := mustNew(t, usersRoute(), ac.cfg)
			var rc fasthttp.RequestCtx
			rc.Request.SetRequestURI("/users/42")
			rc.Request.Header.SetContentType("application/json")
			c := plugintest.Acquire(&rc, ac.params...)
			defer sdk.ReleaseCtx(c)
			step := func() {
				ac.reset(&rc.Request)
				if _, err := f.OnRequest(c); err != nil {
					t.Fatal(err)
				}
			}
			plugintest.AllocsAtMost(t, step, nil)
			if !ac.done(&rc.Request, string(c.UpstreamPath())) {
				t.Fatalf("the request was not transformed: %s", rc.Request.String())
			}
		})
	}
}
