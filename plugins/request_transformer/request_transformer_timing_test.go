package requesttransformer

import (
	"strconv"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/sdk"
)

// benchmarkCase measures one request: the reset of what the previous run
// changed, a pooled Ctx, OnRequest.
func benchmarkCase(b *testing.B, ac allocCase) {
	f := mustNew(b, usersRoute(), ac.cfg)
	var rc fasthttp.RequestCtx
	rc.Request.SetRequestURI("/users/42")
	rc.Request.Header.SetContentType("application/json")
	var values [][]byte
	for i := 1; i < len(ac.params); i += 2 {
		values = append(values, []byte(ac.params[i]))
	}
	b.ReportAllocs()
	for b.Loop() {
		ac.reset(&rc.Request)
		c := sdk.AcquireCtx(&rc)
		c.SetPath(rc.Request.URI().Path())
		for i := 0; i+1 < len(ac.params); i += 2 {
			c.AddParam(ac.params[i], values[i/2])
		}
		if _, err := f.OnRequest(c); err != nil {
			b.Fatal(err)
		}
		sdk.ReleaseCtx(c)
	}
}

func BenchmarkOnRequest(b *testing.B) {
	for _, ac := range allocCases {
		b.Run(strings.ReplaceAll(ac.name, " ", "_"), func(b *testing.B) { benchmarkCase(b, ac) })
	}
}

// BenchmarkJSONSize shows the JSON edit is linear in the body: every byte
// is validated once and copied once.
func BenchmarkJSONSize(b *testing.B) {
	for _, n := range []int{1 << 10, 16 << 10, 128 << 10} {
		var sb strings.Builder
		sb.WriteString(`{"password":"p","items":[`)
		for i := 0; sb.Len() < n; i++ {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(`{"id":` + strconv.Itoa(i) + `,"name":"item \u00e9 name","price":12.5,"tags":["a","b"]}`)
		}
		sb.WriteString(`]}`)
		body := sb.String()
		b.Run(strconv.Itoa(n>>10)+"KiB", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			benchmarkCase(b, allocCase{
				cfg:   `{"json":{"set":{"meta.source":"weir"},"remove":["password"]},"max_body_bytes":1048576}`,
				reset: func(req *fasthttp.Request) { req.SetBodyString(body) },
			})
		})
	}
}
