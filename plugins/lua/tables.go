package lua

import (
	glua "github.com/yuin/gopher-lua"
)

// Tables count against memory_limit_mb too. gopher-lua has no allocator
// hook and grows a table one instruction at a time (t[i] = v, a
// constructor), so there is no single library call to charge, as there is
// for strings. Instead the instruction counter (deadline.Done) samples
// the size of the tables the running call can reach, every sampleEvery
// instructions at first and then at most once per as many instructions as
// the last sample visited entries, so that sampling costs at most about
// one entry visited per instruction run, however large the tables. A call
// whose strings created plus tables held go over the limit is cut as for
// strings ("went over its memory limit").
//
// What is reached: the locals and the function (its upvalues, its
// environment) of every frame of the call stack, and from there every
// table, metatable and function, once each. That covers what a script
// keeps: its locals, the top-level locals its functions close over (a
// per-VM cache counts against every call of that VM), the globals and the
// per-request PDK tables (weir.ctx.shared, kong.ctx). Strings in them are
// not counted again (they were counted when created).
//
// The size is an estimate of gopher-lua's layout on 64-bit: an integer
// key (the array part, usually) 24 bytes with its boxed value, another key
// 64 bytes (the hash map, its key list and index), a table 128 bytes, a
// function 64 bytes and 16 per upvalue.
const (
	sampleEvery  = 1 << 16
	arrayEntry   = 24
	hashEntry    = 64
	tableBytes   = 128
	closureBytes = 64
	upvalueBytes = 16
)

// tableSizer walks the tables a running call reaches (see above).
type tableSizer struct {
	L       *glua.LState
	seenT   map[*glua.LTable]struct{}
	seenF   map[*glua.LFunction]struct{}
	work    []glua.LValue
	bytes   int64
	limit   int64
	visited int
}

// reachable returns an estimate of the bytes held in the tables and
// functions the running call reaches, stopping once over limit, and how
// many entries it visited.
func reachable(L *glua.LState, limit int64) (int64, int) {
	s := &tableSizer{L: L, seenT: map[*glua.LTable]struct{}{}, seenF: map[*glua.LFunction]struct{}{}, limit: limit}
	for level := 0; ; level++ {
		dbg, ok := L.GetStack(level)
		if !ok {
			break
		}
		if fn, err := L.GetInfo("f", dbg, glua.LNil); err == nil {
			s.push(fn)
		}
		for i := 1; ; i++ {
			name, v := L.GetLocal(dbg, i)
			if name == "" {
				break
			}
			s.push(v)
		}
	}
	s.drain()
	return s.bytes, s.visited
}

// push queues v if it is a table or function not seen yet.
func (s *tableSizer) push(v glua.LValue) {
	switch x := v.(type) {
	case *glua.LTable:
		if _, ok := s.seenT[x]; !ok {
			s.seenT[x] = struct{}{}
			s.work = append(s.work, x)
		}
	case *glua.LFunction:
		if _, ok := s.seenF[x]; !ok {
			s.seenF[x] = struct{}{}
			s.work = append(s.work, x)
		}
	}
}

func (s *tableSizer) drain() {
	for len(s.work) > 0 && s.bytes <= s.limit {
		v := s.work[len(s.work)-1]
		s.work = s.work[:len(s.work)-1]
		switch x := v.(type) {
		case *glua.LTable:
			s.table(x)
		case *glua.LFunction:
			s.bytes += closureBytes + upvalueBytes*int64(len(x.Upvalues))
			if x.Env != nil {
				s.push(x.Env)
			}
			for _, uv := range x.Upvalues {
				s.push(uv.Value())
			}
		}
	}
}

// table counts t's entries: the array part by index (RawGetInt boxes
// nothing), the rest by Next from the end of the array part (its keys are
// stored boxed already).
func (s *tableSizer) table(t *glua.LTable) {
	s.bytes += tableBytes
	s.push(t.Metatable)
	n := t.Len()
	for i := 1; i <= n; i++ {
		s.push(t.RawGetInt(i))
	}
	s.visited += n
	s.bytes += int64(n) * arrayEntry
	var k glua.LValue = glua.LNil
	if n > 0 {
		k = glua.LNumber(n)
	}
	for {
		var v glua.LValue
		k, v = t.Next(k)
		if k == glua.LNil {
			return
		}
		s.visited++
		s.bytes += hashEntry
		s.push(k)
		s.push(v)
		if s.visited&1023 == 0 && s.bytes > s.limit {
			return
		}
	}
}
