package lua

import (
	"testing"

	"github.com/weirgw/weir/sdk"
)

// TestAllocs pins the allocations of a phase call on a warm pool. The
// plugin itself allocates nothing per call; what remains is gopher-lua
// turning Go strings into Lua values: a header read from the request is a
// new string and its boxing (2), and reading a weir.ctx field boxes the key
// for the __index metamethod (1).
func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	tests := []struct {
		name, src string
		want      float64
	}{
		{"empty access", `function access() end`, 0},
		{"constant header", `function access() weir.request.set_header("X-From", "lua") end`, 0},
		{"deferred response header", `function access() weir.response.set_header("X-From", "lua") end`, 0},
		{"method", `function access() local m = weir.request.get_method() end`, 0},
		{"route", `function access() local r = weir.ctx.route end`, 1},
		{"read a header", `function access() local k = weir.request.get_header("X-Api-Key") end`, 2},
		{"exit", `function access() weir.response.exit(403, "no") end`, 1},
		{"kong.service.request.set_header", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f sdk.Filter
			if tt.src == "" {
				f = kongSetHeaderFilter(t) // a Kong plugin's handler
			} else {
				f = newFilter(t, tt.src, map[string]any{"pool_size": 1}, nil)
			}
			rc, c := request("GET", "/users/7", "X-Api-Key: secret")
			sdk.ReleaseCtx(c)
			run := func() {
				// A Ctx per request, as in the proxy (deferred headers
				// would otherwise pile up).
				c := sdk.AcquireCtx(rc)
				c.Route = "r"
				if _, err := f.OnRequest(c); err != nil {
					t.Fatal(err)
				}
				sdk.ReleaseCtx(c)
			}
			run()
			if got := testing.AllocsPerRun(200, run); got > tt.want {
				t.Fatalf("%v allocs per call, want <= %v", got, tt.want)
			}
		})
	}
}
