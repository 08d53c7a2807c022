package lua

import (
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"github.com/weirgw/weir/sdk"
	glua "github.com/yuin/gopher-lua"
)

var testConf = map[string]any{"config": map[string]any{
	"header": "X-Tenant", "list": []any{"a", "b"}, "nested": map[string]any{"k": 1.0, "deep": []any{1.0}},
}}

// TestConfDoesNotLeak: what a request writes into conf (a new key, a
// changed value, an element appended or removed, a nested table changed,
// a metatable set) never reaches the next request on the same VM, and an
// unchanged rewrite keeps the VM.
func TestConfDoesNotLeak(t *testing.T) {
	changed := metrics.GetOrCreateCounter(`weir_lua_conf_changed_total{route="r"}`)
	for _, tt := range []struct {
		name, write string
		retire      bool
	}{
		{"new key", `conf.n = 1`, true},
		{"changed value", `conf.header = "X-Other"`, true},
		{"appended", `conf.list[#conf.list + 1] = "c"`, true},
		{"removed", `conf.list[2] = nil`, true},
		{"nested", `conf.nested.deep[1] = 2`, true},
		{"nested new key", `conf.nested.x = true`, true},
		{"metatable", `setmetatable(conf.nested, {})`, true},
		{"table.insert", `table.insert(conf.list, "c")`, true},
		{"table.remove", `table.remove(conf.list, 1)`, true},
		{"table.sort", `table.sort(conf.list, function(a, b) return a > b end)`, true},
		{"rawset", `rawset(conf.nested, "k", 2)`, true},
		{"sorted as it was", `table.sort(conf.list)`, false},
		{"unchanged rewrite", `conf.header = conf.header or "x"; conf.list[1] = "a"`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var lb logBuf
			f := newFilter(t, `
function access()
  local seen = {}
  for k, v in pairs(conf) do seen[#seen + 1] = k end
  table.sort(seen)
  weir.request.set_header("X-Seen", table.concat(seen, ",") .. ";" .. table.concat(conf.list, ",") .. ";" ..
    conf.nested.deep[1] .. ";" .. conf.header .. ";" .. tostring(getmetatable(conf.nested)))
  `+tt.write+`
end`, map[string]any{"pool_size": 1, "config": testConf["config"]}, &lb)
			before := changed.Get()
			for i := 0; i < 3; i++ {
				rc, c := request("GET", "/")
				access(t, f, c)
				sdk.ReleaseCtx(c)
				if got := string(rc.Request.Header.Peek("X-Seen")); got != "header,list,nested;a,b;1;X-Tenant;nil" {
					t.Fatalf("request %d saw conf as %q", i, got)
				}
			}
			want := uint64(0)
			if tt.retire {
				want = 3
			}
			if got := changed.Get() - before; got != want {
				t.Errorf("weir_lua_conf_changed_total +%d, want +%d", got, want)
			}
			if tt.retire && strings.Count(lb.String(), "the script changed conf") != 1 {
				t.Errorf("want one warning, got:\n%s", lb.String())
			}
		})
	}
}

// TestConfGuardAllocs: checking conf after a call allocates nothing.
func TestConfGuardAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	f := newFilter(t, `function access() local h = conf.header end`, map[string]any{"pool_size": 1, "config": testConf["config"]}, nil)
	st, err := base(f).pool.get()
	if err != nil {
		t.Fatal(err)
	}
	defer base(f).pool.put(st)
	if got := testing.AllocsPerRun(100, func() {
		if !st.conf.intact() {
			t.Fatal("conf reported changed")
		}
	}); got != 0 {
		t.Fatalf("%v allocs per check", got)
	}
}

// TestConfGuardAfterRewrite: the full comparison runs when a table of
// conf was written; an unchanged rewrite passes it and clears the write
// flags, and a change after that is still caught.
func TestConfGuardAfterRewrite(t *testing.T) {
	L := glua.NewState()
	defer L.Close()
	run := func(code string) {
		t.Helper()
		if err := L.DoString(code); err != nil {
			t.Fatal(err)
		}
	}
	run(`conf = {a = 1, list = {1, 2}}`)
	conf := L.GetGlobal("conf").(*glua.LTable)
	list := conf.RawGetString("list").(*glua.LTable)
	g := newConfGuard(conf)
	if !g.intact() || conf.Modified() || list.Modified() {
		t.Fatal("a fresh guard reports conf changed, or left a write flag set")
	}
	run(`conf.a = 1; conf.list[2] = 2`)
	if !list.Modified() {
		t.Fatal("a write did not set the table's flag")
	}
	if !g.intact() {
		t.Fatal("an unchanged rewrite reported as a change")
	}
	if conf.Modified() || list.Modified() {
		t.Fatal("the check left a write flag set")
	}
	run(`conf.list[2] = 3`)
	if g.intact() {
		t.Fatal("a change after an unchanged rewrite was not caught")
	}
}
