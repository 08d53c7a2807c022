package responsetransformer

import (
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

func usersRoute() *sdk.Build { return &sdk.Build{Route: "users", Params: []string{"id"}} }

func mustNew(t testing.TB, b *sdk.Build, cfg string) *Filter {
	t.Helper()
	return plugintest.New[*Filter](t, New, b, cfg)
}

// upstreamResponse fills rc.Response as the proxy leaves it after
// forwarding: status, headers (name, value pairs), a buffered body.
func upstreamResponse(rc *fasthttp.RequestCtx, status int, body string, headers ...string) {
	rc.Response.SetStatusCode(status)
	for i := 0; i+1 < len(headers); i += 2 {
		rc.Response.Header.Add(headers[i], headers[i+1])
	}
	rc.Response.SetBodyString(body)
}

// respond runs both phases of f on rc, as the proxy does for a request
// that reached the upstream: OnRequest, then the upstream fills the
// response (fill), then OnResponse. params are route parameters.
func respond(t testing.TB, f *Filter, rc *fasthttp.RequestCtx, fill func(), params ...string) error {
	t.Helper()
	c := plugintest.Acquire(rc, params...)
	defer sdk.ReleaseCtx(c)
	if _, err := f.OnRequest(c); err != nil {
		return err
	}
	if fill != nil {
		fill()
	}
	return f.OnResponse(c)
}
