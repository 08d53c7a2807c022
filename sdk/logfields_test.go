package sdk

import (
	"fmt"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestSetLogField(t *testing.T) {
	var rc fasthttp.RequestCtx
	c := AcquireCtx(&rc)
	c.SetLogField("tenant", []byte("blue"))
	c.SetLogField("cache", []byte("miss"))
	c.SetLogField("tenant", []byte("green-longer")) // replaced, in place of the first
	c.SetLogField("cache", []byte("hit"))           // shorter: rewritten where it was
	if got := string(c.LogField("tenant")); got != "green-longer" {
		t.Errorf("tenant = %q", got)
	}
	if got := string(c.LogField("cache")); got != "hit" {
		t.Errorf("cache = %q", got)
	}
	if n := c.NumLogFields(); n != 2 {
		t.Fatalf("%d fields, want 2", n)
	}
	if name, v := c.LogFieldAt(0); name != "tenant" || string(v) != "green-longer" {
		t.Errorf("field 0: %s=%s", name, v)
	}
	for i := 0; i < 2*MaxLogFields; i++ {
		c.SetLogField(fmt.Sprint("f", i), []byte("x"))
	}
	if n := c.NumLogFields(); n != MaxLogFields {
		t.Errorf("%d fields, want the cap %d", n, MaxLogFields)
	}
	// A deferred log phase's copy has them too.
	var rc2 fasthttp.RequestCtx
	d := AcquireCtx(&rc2)
	c.CopyForLog(d)
	if got := string(d.LogField("tenant")); got != "green-longer" || d.NumLogFields() != MaxLogFields {
		t.Errorf("copy: tenant = %q, %d fields", got, d.NumLogFields())
	}
	ReleaseCtx(c)
	c = AcquireCtx(&rc)
	if c.NumLogFields() != 0 || c.LogField("tenant") != nil {
		t.Error("a reused Ctx kept the last request's fields")
	}
	allocs := testing.AllocsPerRun(100, func() {
		c.Reset()
		c.SetLogField("cache", []byte("hit"))
		c.SetLogField("ratelimit", []byte("allowed"))
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per request, want 0", allocs)
	}
}
