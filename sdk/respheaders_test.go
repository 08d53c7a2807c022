package sdk

import (
	"bytes"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestApplyResponseHeadersSameAsSetBytesV: the deferred headers reach the
// response exactly as fasthttp's SetBytesV writes them (the name
// normalized), over requests that reuse one Ctx with the same names, other
// names in the same slots, and a name that is a view of a buffer changed
// between requests (the slot's normalized name must follow it).
func TestApplyResponseHeadersSameAsSetBytesV(t *testing.T) {
	c := new(Ctx)
	buf := []byte("x-first-name")
	rounds := []func() []string{
		func() []string { return []string{"RateLimit-Limit", "x-a", "Content-Type"} },
		func() []string { return []string{"RateLimit-Limit", "x-a", "Content-Type"} },
		func() []string { return []string{"x-b", "RateLimit-Limit"} },
		func() []string { return []string{B2S(buf), "x-b", "x-c"} },
		func() []string { copy(buf, "y-other-name"); return []string{B2S(buf)} },
		func() []string { return []string{"RATELIMIT-LIMIT", "x-bad\r\nname"} },
	}
	for i, keys := range rounds {
		names := keys()
		var rc fasthttp.RequestCtx
		c.rc = &rc
		var want fasthttp.ResponseHeader
		for j, k := range names {
			v := []byte{'v', byte('0' + j)}
			c.SetResponseHeader(k, v)
			want.SetBytesV(k, v)
		}
		c.ApplyResponseHeaders()
		if got := rc.Response.Header.Header(); !bytes.Equal(got, want.Header()) {
			t.Fatalf("round %d %q:\ngot  %q\nwant %q", i, names, got, want.Header())
		}
		c.Reset()
	}
}
