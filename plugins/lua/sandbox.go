package lua

import (
	"strings"

	glua "github.com/yuin/gopher-lua"
)

// maxRepBytes bounds string.rep, the one library call that can ask for an
// arbitrary amount of memory in a single instruction (the timeout is only
// checked between instructions).
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

	// The string table is also the metatable of every string value
	// (("x"):rep(3)), so changing it here changes both.
	str := L.GetGlobal(glua.StringLibName).(*glua.LTable)
	str.RawSetString("dump", glua.LNil)
	str.RawSetString("rep", L.NewFunction(strRep))
}

// freezeGlobals makes assigning a new global an error once the script's top
// level has run. A pooled state lives across many requests, so a global
// written during a request would leak into unrelated later requests served
// by the same state (and differ between states): per-request data belongs
// in locals or weir.ctx.shared. rawset(_G, ...) is still possible for a
// script that really wants per-state memory.
func freezeGlobals(L *glua.LState) {
	mt := L.NewTable()
	mt.RawSetString("__newindex", L.NewFunction(func(L *glua.LState) int {
		L.RaiseError("assignment to global %q: globals are read-only once the script has loaded; use a local, or weir.ctx.shared to keep data between phases", L.CheckAny(2).String())
		return 0
	}))
	L.SetMetatable(L.G.Global, mt)
}

// strRep is string.rep with a ceiling on the result size.
func strRep(L *glua.LState) int {
	s := L.CheckString(1)
	n := L.CheckInt(2)
	if n <= 0 || s == "" {
		L.Push(glua.LString(""))
		return 1
	}
	if n > maxRepBytes/len(s) {
		L.RaiseError("string.rep: the result would exceed %d bytes", maxRepBytes)
	}
	L.Push(glua.LString(strings.Repeat(s, n)))
	return 1
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
