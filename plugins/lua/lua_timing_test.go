package lua

import (
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/weirgw/weir/sdk"
)

// benchAccess measures one OnRequest on a warm pool, reusing one request.
func benchAccess(b *testing.B, src string) {
	benchOnRequest(b, newFilter(b, src, map[string]any{"pool_size": 4}, nil))
}

// benchOnRequest measures f's OnRequest on one reused request, and
// returns it for checks.
func benchOnRequest(b *testing.B, f sdk.Filter) *fasthttp.RequestCtx {
	rc, c := request("GET", "/users/7?x=1", "X-Api-Key: k", "Accept: */*")
	defer sdk.ReleaseCtx(c)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := f.OnRequest(c); err != nil {
			b.Fatal(err)
		}
	}
	return rc
}

// BenchmarkAccessEmpty is the fixed cost of a Lua phase: borrow a state,
// arm the timeout, call an empty function, return the state.
func BenchmarkAccessEmpty(b *testing.B) {
	benchAccess(b, `function access() end`)
}

// BenchmarkAccessSetHeader reads a request header and sets another.
func BenchmarkAccessSetHeader(b *testing.B) {
	benchAccess(b, `function access()
  local k = weir.request.get_header("X-Api-Key")
  weir.request.set_header("X-Seen-Key", "yes")
end`)
}

// BenchmarkAccessSetConstHeader only sets a header (constant arguments).
func BenchmarkAccessSetConstHeader(b *testing.B) {
	benchAccess(b, `function access() weir.request.set_header("X-From", "lua") end`)
}

// BenchmarkAccessExit answers every request with weir.response.exit.
func BenchmarkAccessExit(b *testing.B) {
	benchAccess(b, `function access() weir.response.exit(403, "forbidden") end`)
}

// BenchmarkAccessParallel is the empty access function from all cores,
// contending for the pool.
func BenchmarkAccessParallel(b *testing.B) {
	f := newFilter(b, `function access() end`, nil, nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		_, c := request("GET", "/x")
		for pb.Next() {
			if _, err := f.OnRequest(c); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkNewState is the cost of preparing one pooled state (paid at
// Start for pool_size states, and after a state is discarded).
func BenchmarkNewState(b *testing.B) {
	f := base(newFilter(b, `local t = {} for i = 1, 10 do t[i] = i end
function access() end`, nil, nil))
	b.ReportAllocs()
	for b.Loop() {
		st, err := newState(f)
		if err != nil {
			b.Fatal(err)
		}
		st.close()
	}
}

// BenchmarkAccessLoop is 1000 iterations of a small loop: the cost per VM
// instruction, where the budget is counted.
func BenchmarkAccessLoop(b *testing.B) {
	benchAccess(b, `function access()
  local x = 0
  for i = 1, 1000 do x = x + i end
end`)
}

// BenchmarkAccessGsub1K rewrites a 1 KiB string with string.gsub (64
// matches), as a body_filter would.
func BenchmarkAccessGsub1K(b *testing.B) {
	benchAccess(b, `local body = string.rep("abcdefghijklmno,", 64)
function access()
  local out = body:gsub(",", ";")
end`)
}

// BenchmarkAccessConcat builds a header value with `..`.
func BenchmarkAccessConcat(b *testing.B) {
	benchAccess(b, `function access()
  weir.request.set_header("X-Seen", "key-" .. weir.request.get_header("X-Api-Key") .. "-lua")
end`)
}

// BenchmarkConfGuard is the check after every call that conf is as loaded
// (conf.go), on a small conf (3 keys, a 2-element list, a nested table).
func BenchmarkConfGuard(b *testing.B) {
	f := newFilter(b, `function access() end`, map[string]any{"pool_size": 1, "config": testConf["config"]}, nil)
	st, err := base(f).pool.get()
	if err != nil {
		b.Fatal(err)
	}
	defer base(f).pool.put(st)
	b.ReportAllocs()
	for b.Loop() {
		if !st.conf.intact() {
			b.Fatal("conf reported changed")
		}
	}
}

// BenchmarkBodyFilter1K is the weir+lua_body scenario's phase
// (bench/scenarios/61-lua-body.yaml) on its own: body_filter rewriting a
// 1 KiB response body with gsub, the body handed in and the result
// taken back.
func BenchmarkBodyFilter1K(b *testing.B) {
	benchBodyFilter(b, `function body_filter(body)
  return (body:gsub("a", "A"))
end`, strings.Repeat("abcdefgh", 128), 'A')
}

// benchBodyFilter runs script's body_filter over body, whose first and
// last bytes the script must turn into want.
func benchBodyFilter(b *testing.B, script, body string, want byte) {
	f := newFilter(b, script, map[string]any{"pool_size": 4}, nil).(sdk.ResponseFilter)
	rc, c := request("GET", "/static/1k")
	defer sdk.ReleaseCtx(c)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rc.Response.SetBodyString(body)
		if err := f.OnResponse(c); err != nil {
			b.Fatal(err)
		}
	}
	if got := rc.Response.Body(); len(got) != len(body) || got[0] != want {
		b.Fatalf("body not rewritten: %.16q", got)
	}
}

// BenchmarkBodyFilter1KEveryByte is the bench's lua_body row in-process:
// a 1 KiB body of one byte, every byte rewritten (1,024 matches).
func BenchmarkBodyFilter1KEveryByte(b *testing.B) {
	benchBodyFilter(b, `function body_filter(body)
  return (body:gsub("x", "y"))
end`, strings.Repeat("x", 1024), 'y')
}
