package lua

import (
	glua "github.com/yuin/gopher-lua"
)

// conf (a script's global, a Kong handler's argument) is one table per VM,
// shared by every request the VM serves: a phase that writes into it
// would change what later requests see. It is not made read-only: Lua
// 5.1 has no __len, __pairs or __ipairs, so a read-only view would break
// `#conf.list`, `ipairs(conf.list)`, `pairs(conf)` and table.concat on
// it, which Kong plugins do. Nor is it copied for each call: a copy
// allocates for every table and key of conf on every call.
//
// Instead, after each call the VM checks that conf is as the top level
// left it, without allocating: confGuard keeps every (table, key, value)
// of conf as loaded, and for each table its metatable and its last key
// in iteration order (a key added to a table, array or hash, follows the
// last one). A call that changed conf retires its VM (closed, not pooled;
// the pool prepares a fresh one), so the change reaches no later request;
// weir_lua_conf_changed_total counts it. An unchanged rewrite (`conf.x =
// conf.x or 1` when x is set) is not a change.
//
// The full comparison runs only when a table of conf was written since
// the last check: our gopher-lua flags a table on every write of an entry
// and on setmetatable (LTable.Modified, third_party/gopher-lua/PATCH.md),
// so a call that left conf alone costs one flag test per table of conf.
type confGuard struct {
	tables  []guardedTable
	entries []guardedEntry
}

type guardedTable struct {
	t        *glua.LTable
	last, mt glua.LValue
}

// guardedEntry is one key of a table of conf: an integer key is read
// with RawGetInt, a string key with RawGetString (neither boxes the key),
// others with RawGet.
type guardedEntry struct {
	t    *glua.LTable
	k, v glua.LValue
	ks   string
	ki   int
	kind uint8
}

const (
	keyOther = iota
	keyInt
	keyString
)

// newConfGuard records conf as it is now (the tables it holds too).
func newConfGuard(conf *glua.LTable) *confGuard {
	g := &confGuard{}
	seen := map[*glua.LTable]bool{}
	var walk func(t *glua.LTable)
	walk = func(t *glua.LTable) {
		if seen[t] {
			return
		}
		seen[t] = true
		gt := guardedTable{t: t, last: glua.LNil, mt: t.Metatable}
		for k, v := t.Next(glua.LNil); k != glua.LNil; k, v = t.Next(k) {
			gt.last = k
			e := guardedEntry{t: t, k: k, v: v}
			switch kk := k.(type) {
			case glua.LString:
				e.kind, e.ks = keyString, string(kk)
			case glua.LNumber:
				if i := int(kk); glua.LNumber(i) == kk {
					e.kind, e.ki = keyInt, i
				}
			}
			g.entries = append(g.entries, e)
			if sub, ok := v.(*glua.LTable); ok {
				walk(sub)
			}
		}
		g.tables = append(g.tables, gt)
	}
	walk(conf)
	g.clearModified()
	return g
}

// intact reports whether conf is as newConfGuard recorded it.
func (g *confGuard) intact() bool {
	for i := range g.tables {
		if g.tables[i].t.Modified() {
			if !g.compare() {
				return false
			}
			g.clearModified() // written back as it was
			return true
		}
	}
	return true
}

func (g *confGuard) clearModified() {
	for i := range g.tables {
		g.tables[i].t.ClearModified()
	}
}

// compare reports whether every table, key and value of conf is as
// recorded.
func (g *confGuard) compare() bool {
	for i := range g.tables {
		t := &g.tables[i]
		if t.t.Metatable != t.mt {
			return false
		}
		if k, _ := t.t.Next(t.last); k != glua.LNil {
			return false // a key was added
		}
	}
	for i := range g.entries {
		e := &g.entries[i]
		var got glua.LValue
		switch e.kind {
		case keyString:
			got = e.t.RawGetString(e.ks)
		case keyInt:
			got = e.t.RawGetInt(e.ki)
		default:
			got = e.t.RawGet(e.k)
		}
		if got != e.v {
			return false
		}
	}
	return true
}
