package lua

import (
	"strings"

	glua "github.com/yuin/gopher-lua"
)

// errorStepCost is what pcall, xpcall and error cost of the budget, in
// VM instructions.
const errorStepCost = 100

// failedCallStepCost is what a pcall or xpcall that caught an error costs
// in addition: gopher-lua builds a stack trace of up to 200 frames, about
// 100 instructions' worth per frame.
const failedCallStepCost = 20000

// maxRepBytes bounds string.rep whatever the memory limit.
const maxRepBytes = 4 << 20

// removedBase are the base functions a script must not have: everything
// that loads code or files (dofile, loadfile, load, loadstring, require,
// module), changes other functions' environments (getfenv, setfenv), drives
// the garbage collector (collectgarbage), or is a gopher-lua internal
// (newproxy, _printregs). print is replaced by a logger-backed one.
var removedBase = []string{
	"dofile", "loadfile", "load", "loadstring", "require", "module",
	"getfenv", "setfenv", "collectgarbage", "newproxy", "_printregs",
	"_GOPHER_LUA_VERSION",
}

// openSandbox opens only the libraries that cannot reach outside the VM:
// base (trimmed), string, table and math. os, io, package, debug, channel
// and coroutine are never opened (coroutine would also create threads whose
// context.WithCancel, under our own Context type, starts a goroutine).
func openSandbox(L *glua.LState, st *state) {
	for _, lib := range []struct {
		name string
		open glua.LGFunction
	}{
		{glua.BaseLibName, glua.OpenBase},
		{glua.TabLibName, glua.OpenTable},
		{glua.StringLibName, glua.OpenString},
		{glua.MathLibName, glua.OpenMath},
	} {
		L.Push(L.NewFunction(lib.open))
		L.Push(glua.LString(lib.name))
		L.Call(1, 0)
	}
	g := L.G.Global
	for _, name := range removedBase {
		g.RawSetString(name, glua.LNil)
	}
	g.RawSetString("print", L.NewFunction(st.print))
	st.readOnly = map[*glua.LTable]bool{}

	// gopher-lua's setmetatable also accepts strings, numbers, booleans and
	// functions, replacing the metatable shared by every value of that type
	// in the state for all later requests it serves; Lua 5.1 only allows
	// tables from Lua code (the rest needs the debug library).
	if orig, ok := g.RawGetString("setmetatable").(*glua.LFunction); ok && orig.IsG {
		set := orig.GFunction
		g.RawSetString("setmetatable", L.NewFunction(func(L *glua.LState) int {
			L.CheckTable(1)
			return set(L)
		}))
	}

	// rawset would write past the read-only tables (into a proxy, where
	// the value would then shadow the PDK's own).
	if orig, ok := g.RawGetString("rawset").(*glua.LFunction); ok && orig.IsG {
		set := orig.GFunction
		g.RawSetString("rawset", L.NewFunction(func(L *glua.LState) int {
			if st.readOnly[L.CheckTable(1)] {
				L.RaiseError("rawset: this table is read-only")
			}
			return set(L)
		}))
	}
	// pcall, xpcall and error can cost microseconds in one instruction (a
	// failed call builds a stack trace): they are charged to the budget.
	for _, name := range []string{"pcall", "xpcall", "error"} {
		if orig, ok := g.RawGetString(name).(*glua.LFunction); ok && orig.IsG {
			fn := orig.GFunction
			g.RawSetString(name, L.NewFunction(func(L *glua.LState) int {
				st.dl.charge(L, errorStepCost)
				n := fn(L)
				if n > 0 && L.Get(-n) == glua.LFalse {
					// A caught error: building its message and stack
					// trace is the costly part.
					st.dl.charge(L, failedCallStepCost)
				}
				return n
			}))
		}
	}
	installStringLib(L, st)
	g.RawSetString(concatName, L.NewFunction(st.concat))
	// The string table is also the metatable of every string value
	// (("x"):rep(3)): hide it from getmetatable, or a script could change
	// string functions for every later request through it.
	str := L.GetGlobal(glua.StringLibName).(*glua.LTable)
	str.RawSetString("gfind", str.RawGetString("gmatch"))
	str.RawSetString("__metatable", glua.LFalse)
}

// frozenTables are the globals made read-only, with the tables they
// hold, when the globals freeze.
var frozenTables = []string{"string", "table", "math", "weir", "kong", "ngx", "cjson"}

// freezeGlobals makes the globals read-only once the script's top level
// has run: a pooled state lives across many requests, so a global written
// (or replaced: `weir.request.get_header = f`, `print = nil`) during a
// request would leak into unrelated later requests served by the same
// state. _G and the library and PDK tables (string, table, math, weir and
// those under it) are marked read-only (SetReadOnly, a patch of ours to
// gopher-lua: third_party/gopher-lua/PATCH.md): assigning to them raises
// an error, and so do rawset, table.insert/remove/sort on them and
// changing their metatables (which getmetatable does not show). Reads
// stay direct table reads. Per-request data belongs in locals or
// weir.ctx.shared; per-state memory in top-level locals.
func freezeGlobals(L *glua.LState, st *state) {
	g := L.G.Global
	for _, name := range frozenTables {
		if t, ok := g.RawGetString(name).(*glua.LTable); ok && !st.readOnly[t] {
			st.freeze(L, t, name)
		}
	}
	g.Metatable = glua.LNil // one the top level set would decide writes
	guard(L, g, L.NewFunction(func(L *glua.LState) int {
		L.RaiseError("assignment to global %q: globals are read-only once the script has loaded; use a local, or weir.ctx.shared to keep data between phases", L.CheckAny(2).String())
		return 0
	}))
	st.readOnly[g] = true
}

// freeze makes t read-only, and does the same, recursively, for the
// tables t holds (the PDK's sub-tables), except those listed in
// st.mutable (per-request tables such as ngx.arg) or already read-only.
func (st *state) freeze(L *glua.LState, t *glua.LTable, name string) {
	st.readOnly[t] = true // before the walk: a table that holds itself is walked once
	t.ForEach(func(k, v glua.LValue) {
		if ks, ok := k.(glua.LString); ok && strings.HasPrefix(string(ks), "__") {
			return // metamethods (the string table is its own __index)
		}
		if sub, ok := v.(*glua.LTable); ok && !st.readOnly[sub] && !st.mutable[sub] {
			st.freeze(L, sub, name+"."+k.String())
		}
	})
	msg := name + " is read-only"
	if name == "weir.ctx" {
		msg += "; keep request data in weir.ctx.shared"
	}
	guard(L, t, L.NewFunction(func(L *glua.LState) int {
		L.RaiseError("%s", msg)
		return 0
	}))
}

// guard marks t read-only, with deny as the __newindex of its metatable
// (which every assignment to t calls), and hides the metatable from
// getmetatable and setmetatable. An __index the metatable has (weir.ctx's
// computed fields, ngx.ctx) stays.
func guard(L *glua.LState, t *glua.LTable, deny *glua.LFunction) {
	mt, ok := t.Metatable.(*glua.LTable)
	if !ok {
		mt = L.NewTable()
		t.Metatable = mt
	}
	mt.RawSetString("__newindex", deny)
	mt.RawSetString("__metatable", glua.LFalse)
	t.SetReadOnly(true)
}

// print logs its arguments (tostring'ed, tab-separated, as Lua's print
// formats them) at info level instead of writing to stdout.
func (st *state) print(L *glua.LState) int {
	st.f.logf(st, levelInfo, joinArgs(L, "\t"))
	return 0
}

// joinArgs converts the call's arguments with tostring semantics
// (__tostring honoured) and joins them.
func joinArgs(L *glua.LState, sep string) string {
	n := L.GetTop()
	if n == 1 {
		return L.ToStringMeta(L.Get(1)).String()
	}
	var b strings.Builder
	for i := 1; i <= n; i++ {
		if i > 1 {
			b.WriteString(sep)
		}
		b.WriteString(L.ToStringMeta(L.Get(i)).String())
	}
	return b.String()
}
