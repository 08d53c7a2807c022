package requesttransformer

import (
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

// usersRoute is the Build of a route "users" with paths "/users/{id}".
func usersRoute() *sdk.Build { return &sdk.Build{Route: "users", Params: []string{"id"}} }

func mustNew(t testing.TB, b *sdk.Build, cfg string) *Filter {
	t.Helper()
	return plugintest.New[*Filter](t, New, b, cfg)
}

// serve runs f on a route named route, paths "/", behind the real proxy
// server (plugintest.Serve). Request bodies are tested this way: only the
// server hands a filter a body as a client sent it.
func serve(t testing.TB, route string, f *Filter) *plugintest.Gateway {
	t.Helper()
	return plugintest.Serve(t, plugintest.Route{Name: route}, f)
}

// request builds a client request without a body: URI and headers (name,
// value pairs).
func request(uri string, headers ...string) *fasthttp.RequestCtx {
	rc := new(fasthttp.RequestCtx)
	rc.Request.SetRequestURI(uri)
	for i := 0; i+1 < len(headers); i += 2 {
		rc.Request.Header.Add(headers[i], headers[i+1])
	}
	return rc
}

// run calls OnRequest the way the proxy does (normalized path and route
// parameters, as name, value pairs, set first) and returns the status and
// the upstream path; the Ctx is released before returning, so the rest is
// read from rc.
func run(t testing.TB, f *Filter, rc *fasthttp.RequestCtx, params ...string) (sdk.Status, string, error) {
	t.Helper()
	c := plugintest.Acquire(rc, params...)
	defer sdk.ReleaseCtx(c)
	st, err := f.OnRequest(c)
	return st, string(c.UpstreamPath()), err
}
