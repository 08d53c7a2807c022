package lua

import (
	"fmt"
	"strings"

	"github.com/weirgw/weir/plugins/lua/internal/luapattern"
	glua "github.com/yuin/gopher-lua"
)

// The library functions that can run long or create much memory in one VM
// instruction, replaced by versions that charge their work and the bytes
// they create to the call's budget (see deadline): string.find, match,
// gmatch and gsub (a backtracking matcher, and a gsub that gopher-lua makes
// quadratic by copying the whole result per match), rep, format, upper,
// lower, reverse, and table.concat. Semantics are those of Lua 5.1 as
// gopher-lua implements them.

// stepsPerPatternStep: one step of the backtracking matcher (a recursive
// call that may allocate) costs about as much as 4 VM instructions.
const stepsPerPatternStep = 4

func installStringLib(L *glua.LState, st *state) {
	str := L.GetGlobal(glua.StringLibName).(*glua.LTable)
	str.RawSetString("dump", glua.LNil)
	L.SetFuncs(str, map[string]glua.LGFunction{
		"find":    st.strFind,
		"match":   st.strMatch,
		"gmatch":  st.strGmatch,
		"gsub":    st.strGsub,
		"rep":     st.strRep,
		"format":  st.strFormat,
		"upper":   st.strMap(strings.ToUpper),
		"lower":   st.strMap(strings.ToLower),
		"reverse": st.strMap(reverse),
	})
	tbl := L.GetGlobal(glua.TabLibName).(*glua.LTable)
	tbl.RawSetString("concat", L.NewFunction(st.tableConcat))
	// insert and remove shift the array part (O(n) in one instruction: a
	// loop of table.insert(t, 1, x) is quadratic); sort is O(n log n).
	// They are charged one step per 16 elements (sort: per element).
	for _, name := range []string{"insert", "remove", "sort"} {
		if orig, ok := tbl.RawGetString(name).(*glua.LFunction); ok && orig.IsG {
			fn := orig.GFunction
			perStep := 4
			if name == "sort" {
				perStep = 0
			}
			tbl.RawSetString(name, L.NewFunction(func(L *glua.LState) int {
				st.dl.charge(L, L.CheckTable(1).Len()>>perStep)
				return fn(L)
			}))
		}
	}
}

// each runs a pattern under the call's budget.
func (st *state) each(L *glua.LState, pat, s string, offset, limit int, fn func(m *luapattern.MatchData) bool) {
	d := st.dl
	b := luapattern.Budget{Steps: max(d.steps, 0) / stepsPerPatternStep}
	start := b.Steps
	err := luapattern.Each(&b, pat, s2b(s), offset, limit, fn)
	d.charge(L, int((start-b.Steps)*stepsPerPatternStep))
	if err != nil {
		if err == luapattern.ErrBudget {
			d.trip(errSteps)
			L.RaiseError("%s", errSteps.Error())
		}
		L.RaiseError("%s", err.Error())
	}
}

// pushCaptures pushes the captures of m (the whole match when it has none
// and whole is set) and returns how many.
func pushCaptures(L *glua.LState, m *luapattern.MatchData, s string, whole bool) int {
	n := m.CaptureLength()
	if n == 2 {
		if !whole {
			return 0
		}
		L.Push(glua.LString(s[m.Capture(0):m.Capture(1)]))
		return 1
	}
	for i := 2; i < n; i += 2 {
		L.Push(capture(m, s, i))
	}
	return n/2 - 1
}

func capture(m *luapattern.MatchData, s string, i int) glua.LValue {
	if m.IsPosCapture(i) {
		return glua.LNumber(m.Capture(i))
	}
	return glua.LString(s[m.Capture(i):m.Capture(i+1)])
}

// startIndex converts a Lua init argument (1-based, negative from the end)
// into a 0-based offset clamped to [0, len].
func startIndex(n, init int) int {
	if init < 0 {
		init = n + init + 1
	}
	return min(max(init-1, 0), n)
}

func (st *state) strFind(L *glua.LState) int {
	s := L.CheckString(1)
	pat := L.CheckString(2)
	init := L.OptInt(3, 1)
	if init > len(s)+1 {
		L.Push(glua.LNil)
		return 1
	}
	off := startIndex(len(s), init)
	if glua.LVAsBool(L.Get(4)) || !strings.ContainsAny(pat, "^$*+?.([%-") {
		st.dl.charge(L, (len(s)-off)>>4)
		i := strings.Index(s[off:], pat)
		if i < 0 {
			L.Push(glua.LNil)
			return 1
		}
		L.Push(glua.LNumber(off + i + 1))
		L.Push(glua.LNumber(off + i + len(pat)))
		return 2
	}
	return st.first(L, pat, s, off, true)
}

func (st *state) strMatch(L *glua.LState) int {
	s := L.CheckString(1)
	pat := L.CheckString(2)
	return st.first(L, pat, s, startIndex(len(s), L.OptInt(3, 1)), false)
}

// first pushes the first match of pat in s from off, as string.find
// (positions, then the captures) or string.match (the captures, or the
// whole match) return it, or nil.
func (st *state) first(L *glua.LState, pat, s string, off int, positions bool) int {
	n := 0
	st.each(L, pat, s, off, 1, func(m *luapattern.MatchData) bool {
		if positions {
			L.Push(glua.LNumber(m.Capture(0) + 1))
			L.Push(glua.LNumber(m.Capture(1)))
			n = 2
		}
		n += pushCaptures(L, m, s, !positions)
		return false
	})
	if n == 0 {
		L.Push(glua.LNil)
		return 1
	}
	return n
}

// strGmatch returns an iterator that finds one match per call, from where
// the previous one ended (gopher-lua's found all matches up front).
func (st *state) strGmatch(L *glua.LState) int {
	s := L.CheckString(1)
	pat := L.CheckString(2)
	pos := 0
	L.Push(L.NewFunction(func(L *glua.LState) int {
		if pos > len(s) {
			return 0
		}
		n := -1
		st.each(L, pat, s, pos, 1, func(m *luapattern.MatchData) bool {
			pos = max(m.Capture(0)+1, m.Capture(1))
			n = pushCaptures(L, m, s, true)
			return false
		})
		if n < 0 {
			pos = len(s) + 1
			return 0
		}
		return n
	}))
	return 1
}

// strGsub builds the result once, in order, in one buffer: linear in the
// input and the output (gopher-lua's copies the whole string per match).
func (st *state) strGsub(L *glua.LState) int {
	s := L.CheckString(1)
	pat := L.CheckString(2)
	L.CheckTypes(3, glua.LTString, glua.LTNumber, glua.LTTable, glua.LTFunction)
	repl := L.Get(3)
	if n, ok := repl.(glua.LNumber); ok {
		repl = glua.LString(n.String())
	}
	limit := L.OptInt(4, -1)
	if r, ok := repl.(glua.LString); ok && luapattern.IsPlain(pat) && strings.IndexByte(string(r), '%') < 0 {
		return st.gsubPlain(L, s, pat, string(r), limit)
	}
	var b strings.Builder
	last, count := 0, 0
	d := st.dl
	add := func(piece string) {
		d.alloc(L, len(piece))
		b.WriteString(piece)
	}
	st.each(L, pat, s, 0, limit, func(m *luapattern.MatchData) bool {
		start, end := m.Capture(0), m.Capture(1)
		if count++; count == 1 && int64(len(s)) <= d.memLimit-d.mem-d.tables {
			// The result is usually about as long as s: one buffer
			// instead of one per doubling (a 1 KiB body: 8).
			b.Grow(len(s))
		}
		var v glua.LValue
		switch r := repl.(type) {
		case glua.LString:
			add(s[last:start])
			last = end
			expand(L, add, string(r), m, s)
			return true
		case *glua.LTable:
			k := capture(m, s, 0)
			if m.CaptureLength() > 2 {
				k = capture(m, s, 2)
			}
			v = L.GetTable(r, k)
		case *glua.LFunction:
			L.Push(r)
			nargs := pushCaptures(L, m, s, true)
			L.Call(nargs, 1)
			v = L.Get(-1)
			L.Pop(1)
		}
		add(s[last:start])
		last = end
		switch v := v.(type) {
		case *glua.LNilType:
			add(s[start:end])
		case glua.LBool:
			if !v {
				add(s[start:end])
			} else {
				L.RaiseError("invalid replacement value (a boolean)")
			}
		case glua.LString:
			add(string(v))
		case glua.LNumber:
			add(v.String())
		default:
			L.RaiseError("invalid replacement value (a %s)", v.Type())
		}
		return true
	})
	if count == 0 {
		L.Push(glua.LString(s))
		L.Push(glua.LNumber(0))
		return 2
	}
	add(s[last:])
	L.Push(glua.LString(b.String()))
	L.Push(glua.LNumber(count))
	return 2
}

// gsubPlain is gsub of a literal pattern by a literal replacement (no %),
// the usual body rewrite: the occurrences of pat, non-overlapping from
// the left and at most limit of them unless limit < 0, replaced in one
// buffer of the result's size, counted before it is built. It gives what
// the general path gives at a fraction of its cost (per match, that one
// calls back with the match and writes two pieces, each counted); a
// replacement as long as the pattern is written over a copy of s.
func (st *state) gsubPlain(L *glua.LState, s, pat, repl string, limit int) int {
	if limit < 0 {
		limit = len(s) // more than s can hold
	}
	i := strings.Index(s, pat)
	if i < 0 || limit == 0 {
		st.dl.charge(L, len(s)>>4+1) // the scan, as eachPlain charges it
		L.Push(glua.LString(s))
		L.Push(lvInt(0))
		return 2
	}
	var out string
	n := 0
	if len(repl) == len(pat) {
		st.dl.alloc(L, len(s))
		b := []byte(s)
		if len(pat) == 1 {
			// One byte for another: eight bytes at a time. Looking each
			// one up (IndexByte per match) costs ~15 ns a match when they
			// are dense, as in a body rewritten byte for byte.
			n = replaceByte(b[i:], pat[0], repl[0], limit)
		} else {
			for i >= 0 && n < limit {
				copy(b[i:], repl)
				n++
				i = indexFrom(s, pat, i+len(pat))
			}
		}
		out = b2s(b)
	} else {
		n = min(strings.Count(s[i:], pat), limit)
		size := len(s) + n*(len(repl)-len(pat))
		st.dl.alloc(L, size)
		var b strings.Builder
		b.Grow(size)
		last := 0
		if len(pat) == 1 {
			// A byte for a string: one pass, as above.
			b.WriteString(s[:i])
			last = i
			for k := 0; k < n; i++ {
				if s[i] == pat[0] {
					b.WriteString(repl)
					k++
				} else {
					b.WriteByte(s[i])
				}
				last = i + 1
			}
		} else {
			for k := 0; k < n; k++ {
				b.WriteString(s[last:i])
				b.WriteString(repl)
				last = i + len(pat)
				i = indexFrom(s, pat, last)
			}
		}
		b.WriteString(s[last:])
		out = b.String()
	}
	st.dl.charge(L, len(s)>>4+n+1) // the scan, as eachPlain charges it
	L.Push(glua.LString(out))
	L.Push(lvInt(n))
	return 2
}

// indexFrom is the index of the first pat in s at or after from, or -1.
func indexFrom(s, pat string, from int) int {
	var i int
	if len(pat) == 1 {
		i = strings.IndexByte(s[from:], pat[0])
	} else {
		i = strings.Index(s[from:], pat)
	}
	if i < 0 {
		return -1
	}
	return from + i
}

// expand appends a string replacement, with %0..%9 and %% expanded.
func expand(L *glua.LState, add func(string), r string, m *luapattern.MatchData, s string) {
	for {
		i := strings.IndexByte(r, '%')
		if i < 0 || i == len(r)-1 {
			add(r)
			return
		}
		add(r[:i])
		c := r[i+1]
		r = r[i+2:]
		switch {
		case c == '0' || (c == '1' && m.CaptureLength() == 2):
			add(s[m.Capture(0):m.Capture(1)])
		case c >= '1' && c <= '9':
			idx := 2 * int(c-'0')
			if idx >= m.CaptureLength() {
				L.RaiseError("invalid capture index %%%c", c)
			}
			add(capture(m, s, idx).String())
		default:
			add(string(c))
		}
	}
}

// strRep is string.rep with the result counted against the memory limit
// (and never above maxRepBytes).
func (st *state) strRep(L *glua.LState) int {
	s := L.CheckString(1)
	n := L.CheckInt(2)
	if n <= 0 || s == "" {
		L.Push(lvEmpty)
		return 1
	}
	if n > maxRepBytes/len(s) {
		L.RaiseError("string.rep: the result would exceed %d bytes", maxRepBytes)
	}
	st.dl.alloc(L, n*len(s))
	L.Push(glua.LString(strings.Repeat(s, n)))
	return 1
}

// strFormat is gopher-lua's string.format with widths and precisions of
// at most two digits, as in Lua 5.1 ("%99999d" would make a 100 KB
// string per call), and the result counted.
func (st *state) strFormat(L *glua.LState) int {
	f := L.CheckString(1)
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		j := i + 1
		for j < len(f) && strings.IndexByte("-+ #0", f[j]) >= 0 {
			j++
		}
		digits := 0
		for j < len(f) && f[j] >= '0' && f[j] <= '9' {
			j++
			digits++
		}
		if j < len(f) && f[j] == '.' {
			j++
			p := 0
			for j < len(f) && f[j] >= '0' && f[j] <= '9' {
				j++
				p++
			}
			digits = max(digits, p)
		}
		if digits > 2 {
			L.RaiseError("invalid format (width or precision too long)")
		}
		if j < len(f) && f[j] == '%' {
			i = j
		}
	}
	top := L.GetTop()
	args := make([]any, top-1)
	for i := 2; i <= top; i++ {
		args[i-2] = L.Get(i)
	}
	npat := strings.Count(f, "%") - 2*strings.Count(f, "%%")
	out := fmt.Sprintf(f, args[:min(max(npat, 0), len(args))]...)
	st.dl.alloc(L, len(out))
	L.Push(glua.LString(out))
	return 1
}

func (st *state) strMap(fn func(string) string) glua.LGFunction {
	return func(L *glua.LState) int {
		s := L.CheckString(1)
		st.dl.alloc(L, len(s))
		L.Push(glua.LString(fn(s)))
		return 1
	}
}

func reverse(s string) string {
	b := make([]byte, len(s))
	for i := range len(s) {
		b[len(s)-1-i] = s[i]
	}
	return string(b)
}

// tableConcat is table.concat with the result's size counted before it is
// built (gopher-lua's pushes every element on the value stack first).
func (st *state) tableConcat(L *glua.LState) int {
	t := L.CheckTable(1)
	sep := L.OptString(2, "")
	i := L.OptInt(3, 1)
	j := L.OptInt(4, t.Len())
	if i > j {
		L.Push(lvEmpty)
		return 1
	}
	size := 0
	for k := i; k <= j; k++ {
		v := t.RawGetInt(k)
		switch v := v.(type) {
		case glua.LString:
			size += len(v)
		case glua.LNumber:
			size += 24
		default:
			L.RaiseError("invalid value (at index %d) in table for 'concat'", k)
		}
		if k < j {
			size += len(sep)
		}
		if size > int(st.dl.memLimit) {
			break
		}
	}
	st.dl.alloc(L, size)
	var b strings.Builder
	b.Grow(size)
	for k := i; k <= j; k++ {
		b.WriteString(t.RawGetInt(k).String())
		if k < j {
			b.WriteString(sep)
		}
	}
	L.Push(glua.LString(b.String()))
	return 1
}
