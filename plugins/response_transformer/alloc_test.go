package responsetransformer

import (
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

type allocCase struct {
	name  string
	cfg   string
	reset func(resp *fasthttp.Response)
	done  func(resp *fasthttp.Response) bool
}

const jsonBody = `{"id":7,"name":"Ada Lovelace","email":"ada@example.com","password":"hunter2","roles":["admin","dev"],"meta":{"created":"2024-01-01T00:00:00Z"}}`
const jsonWant = `{"id":7,"name":"Ada Lovelace","email":"ada@example.com","roles":["admin","dev"],"meta":{"created":"2024-01-01T00:00:00Z","source":"weir"}}`

var allocCases = []allocCase{
	{name: "header-only", cfg: `{"add":{"headers":{"X-From":"weir"}},"set":{"headers":{"X-Env":"prod"}},"remove":{"headers":["Server"]},"rename":{"headers":{"X-Old":"X-New"}}}`,
		reset: func(resp *fasthttp.Response) {
			resp.Header.Set("Server", "nginx")
			resp.Header.Set("X-Old", "o")
			resp.Header.Del("X-From")
		},
		done: func(resp *fasthttp.Response) bool {
			return string(resp.Header.Peek("X-From")) == "weir" && string(resp.Header.Peek("X-New")) == "o" &&
				len(resp.Header.Peek("Server")) == 0 && string(resp.Header.Peek("X-Env")) == "prod"
		}},
	{name: "json", cfg: `{"json":{"set":{"meta.source":"weir"},"remove":["password"]}}`,
		reset: func(resp *fasthttp.Response) {
			resp.SetBodyString(jsonBody)
		},
		done: func(resp *fasthttp.Response) bool {
			return string(resp.Body()) == jsonWant && resp.Header.ContentLength() == len(jsonWant)
		}},
}

// TestOnResponseZeroAllocs: header operations and the JSON edit run
// without allocating once the pools are warm.
func TestOnResponseZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under -race")
	}
	for _, ac := range allocCases {
		t.Run(ac.name, func(t *testing.T) {
			f := mustNew(t, usersRoute(), ac.cfg)
			var rc fasthttp.RequestCtx
			rc.Response.Header.SetContentType("application/json")
			c := sdk.AcquireCtx(&rc)
			defer sdk.ReleaseCtx(c)
			step := func() {
				ac.reset(&rc.Response)
				if err := f.OnResponse(c); err != nil {
					t.Fatal(err)
				}
			}
			plugintest.AllocsAtMost(t, step, nil)
			if !ac.done(&rc.Response) {
				t.Fatalf("the response was not transformed:\n%s", rc.Response.String())
			}
		})
	}
}
