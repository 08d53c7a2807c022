package requesttransformer

import (
	"strconv"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

// TestConcurrentRequests: one instance serves many requests at once (the
// proxy shares it across a snapshot); under -race this checks that the
// compiled program is only read and the pooled scratch is never shared.
func TestConcurrentRequests(t *testing.T) {
	f := mustNew(t, usersRoute(), specConfig)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				id := strconv.Itoa(g*1000 + i)
				var rc fasthttp.RequestCtx
				rc.Request.SetRequestURI("/users/" + id + "?token=t&q=" + id)
				rc.Request.Header.SetContentType("application/json")
				rc.Request.Header.Set("X-Old", id)
				rc.Request.SetBodyString(`{"password":"p","n":` + id + `}`)
				c := plugintest.Acquire(&rc, "id", id)
				_, err := f.OnRequest(c)
				up := string(c.UpstreamPath())
				sdk.ReleaseCtx(c)
				want := `{"n":` + id + `,"meta":{"source":"weir"}}`
				if err != nil || up != "/v2/users/"+id || string(rc.Request.Body()) != want ||
					string(rc.Request.URI().QueryString()) != "q="+id+"&v=2" || string(rc.Request.Header.Peek("X-New")) != id {
					errs <- rc.Request.String()
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("wrong request:\n%s", e)
	}
}
