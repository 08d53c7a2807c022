package cache

import (
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/sdk"
)

// hitCtx prepares a request context for repeated hits on url.
func hitCtx(f *Filter, url string, hdr ...string) (*fasthttp.RequestCtx, func() sdk.Status) {
	rc := new(fasthttp.RequestCtx)
	rc.Request.SetRequestURI(url)
	for i := 0; i+1 < len(hdr); i += 2 {
		rc.Request.Header.Set(hdr[i], hdr[i+1])
	}
	path := append([]byte(nil), rc.Request.URI().Path()...)
	return rc, func() sdk.Status {
		rc.Response.Reset()
		c := sdk.AcquireCtx(rc)
		c.Route = f.route
		c.SetPath(path)
		st, _ := f.OnRequest(c)
		_ = f.OnResponse(c)
		f.OnLog(c)
		sdk.ReleaseCtx(c)
		return st
	}
}

func TestHitPathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race (sync.Pool drops items)")
	}
	for _, tc := range []struct {
		name string
		hdr  []string
		resp []string
	}{
		{"plain", nil, []string{"Cache-Control: max-age=600", "ETag: \"v1\"", "Content-Type: application/json"}},
		{"vary", []string{"Accept-Encoding", "gzip, br"}, []string{"Cache-Control: max-age=600", "Vary: Accept-Encoding"}},
		{"conditional 304", []string{"If-None-Match", `"v1"`}, []string{"Cache-Control: max-age=600", "ETag: \"v1\""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := newTestFilter(t, `{}`)
			var hdr []string
			for i := 0; i+1 < len(tc.hdr); i += 2 {
				hdr = append(hdr, tc.hdr[i]+": "+tc.hdr[i+1])
			}
			r := do(t, f, req{url: "http://api.example.com/items/1", hdr: hdr}, fixed(200, `{"id":1}`, tc.resp...))
			wantX(t, r, "MISS")
			_, hit := hitCtx(f, "http://api.example.com/items/1", tc.hdr...)
			if st := hit(); st != sdk.Stop {
				t.Fatalf("second request not a hit")
			}
			if n := testing.AllocsPerRun(200, func() { hit() }); n != 0 {
				t.Fatalf("hit path allocates %.1f times per request, want 0", n)
			}
		})
	}
}
