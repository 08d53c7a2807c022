package lua

import (
	"strings"
	"testing"

	"github.com/weirgw/weir/sdk"
)

// TestTableMemory: tables a call holds count against memory_limit_mb,
// wherever they are kept (a local, a nested table, a closure's upvalue, a
// per-VM top-level cache, weir.ctx.shared); tables under the limit pass.
func TestTableMemory(t *testing.T) {
	for _, tt := range []struct {
		name, top, code, err string
	}{
		{"array in a local", "", `local t = {} for i = 1, 4e6 do t[i] = i end`, "memory limit of 8 MiB"},
		{"hash in a local", "", `local t = {} for i = 1, 4e6 do t[i * 0.5] = true end`, "memory limit of 8 MiB"},
		{"nested tables", "", `local t = {} for i = 1, 1e6 do t[i] = {i} end`, "memory limit of 8 MiB"},
		{"upvalue of a closure", "", `local t = {} local f = function() return t end for i = 1, 4e6 do t[i] = i end`, "memory limit of 8 MiB"},
		{"per-VM cache", "local cache = {}", `for i = 1, 4e6 do cache[#cache + 1] = i end`, "memory limit of 8 MiB"},
		{"weir.ctx.shared", "", `local s = weir.ctx.shared s.t = {} for i = 1, 4e6 do s.t[i] = i end`, "memory limit of 8 MiB"},
		{"under the limit", "", `local t = {} for i = 1, 1e5 do t[i] = i end`, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFilter(t, tt.top+"\nfunction access() "+tt.code+" end", map[string]any{"memory_limit_mb": 8, "timeout": "10s"}, nil)
			_, c := request("GET", "/")
			_, err := f.OnRequest(c)
			sdk.ReleaseCtx(c)
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("error = %v, want it to mention %q", err, tt.err)
			}
		})
	}
}
