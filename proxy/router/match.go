package router

import "strings"

// matchState is one Match call's bookkeeping. It lives in the caller's
// Match, not on the stack: at ~560 bytes it would make Match the largest
// frame of a request's goroutine, and push it past the 4 KiB stack a busy
// connection otherwise keeps (the Go runtime doubles a goroutine's stack
// when its deepest call does not fit, and keeps the 8 KiB while it is
// busy). What it points at (the router, the request's path and headers)
// stays referenced by m until the next Match: m is pooled request state
// whose references the next request overwrites.
type matchState struct {
	r      *Router
	h      Headers
	method uint64 // the request method's bit, 0 when no route names it
	path   []byte
	// For a 405: the union of the methods of candidates whose path and
	// headers matched, and the first such route (whose precomputed Allow
	// is used when nobody else added a method).
	allowed   uint64
	firstDeny int32
	// Segment starts of the path for parameter paths: seg i is
	// path[segStart[i]+1 : segStart[i+1]]. nseg is -1 until computed and
	// maxSegments+1 when the path has more segments than any pattern.
	nseg     int
	segStart [maxSegments + 1]int32
	// Parameter search: the best (lowest-rank) full match so far.
	best *paramCand
	// Header values already peeked, by headerCond.id: many routes that
	// differ only in a header value then cost one Peek, not one each.
	hv    [cachedHeaders][]byte
	hseen uint8
}

// cachedHeaders is how many distinct header names (the first ones in
// config order) Match remembers; others are peeked for each candidate.
const cachedHeaders = 8

// Match finds the route for a request. host must be normalized with
// NormalizeHost (empty when the request has none); path must be the
// normalized path starting with "/" (anything else finds nothing); h may
// be nil when no route has header conditions. The result is written to m:
// see the Match type for what stays valid for how long. It does not allocate,
// except for a winning regex that needs its match span (see the package
// doc) and for a 405 whose merged Allow is longer than 256 bytes.
func (r *Router) Match(host, method, path []byte, h Headers, m *Match) Result {
	m.NParams = 0
	m.StripLen = 0
	m.Allow = nil
	m.Route, m.Path = -1, -1
	if len(path) == 0 || path[0] != '/' {
		return NotFound
	}
	st := &m.state
	*st = matchState{} // cleared in place: a literal would be built on the stack first
	st.r, st.h, st.path, st.nseg, st.firstDeny = r, h, path, -1, -1
	if len(r.methodName) > 0 {
		st.method = r.methodBit[b2s(method)]
	}
	if len(host) > 0 {
		if g := r.exactHosts[b2s(host)]; g != nil && st.matchGroup(g, m) {
			return Found
		}
		if r.maxWild > 0 && host[0] != '[' {
			// Longest suffix first: each "." starts a shorter one, and
			// suffixes longer than any wildcard need no lookup.
			for i := max(0, len(host)-r.maxWild-1); i < len(host); i++ {
				if host[i] != '.' {
					continue
				}
				if g := r.wildHosts[b2s(host[i+1:])]; g != nil && st.matchGroup(g, m) {
					return Found
				}
			}
		}
	}
	if r.anyHost != nil && st.matchGroup(r.anyHost, m) {
		return Found
	}
	if st.allowed == 0 {
		return NotFound
	}
	if rt := &r.routes[st.firstDeny]; rt.methods == st.allowed {
		m.Allow = rt.allow
	} else {
		// Built in m's own buffer; append allocates only past its size.
		m.Allow = r.appendAllow(m.allow[:0], st.allowed)
	}
	return MethodNotAllowed
}

// accept reports whether route ri takes the request once its path
// matched. A route that only lacks the method records its methods for a
// 405; it checks its headers first, so that a route that would not match
// with any method adds nothing to Allow.
func (st *matchState) accept(ri int32) bool {
	rt := &st.r.routes[ri]
	if rt.methods == 0 || rt.methods&st.method != 0 {
		return st.headersMatch(rt)
	}
	if rt.methods&^st.allowed != 0 && st.headersMatch(rt) {
		if st.allowed == 0 {
			st.firstDeny = ri
		}
		st.allowed |= rt.methods
	}
	return false
}

// methodOK reports whether the route takes the request's method.
func (st *matchState) methodOK(rt *route) bool {
	return rt.methods == 0 || rt.methods&st.method != 0
}

func (st *matchState) headersMatch(rt *route) bool {
	if len(rt.headers) == 0 {
		return true
	}
	if st.h == nil {
		return false
	}
	for i := range rt.headers {
		hc := &rt.headers[i]
		var v []byte
		if hc.id < cachedHeaders {
			bit := uint8(1) << hc.id
			if st.hseen&bit == 0 {
				st.hv[hc.id] = st.h.Peek(hc.name)
				st.hseen |= bit
			}
			v = st.hv[hc.id]
		} else {
			v = st.h.Peek(hc.name)
		}
		if b2s(v) != hc.value {
			return false
		}
	}
	return true
}

// matchGroup tries the group's patterns in precedence order: exact,
// parameter, prefix, regex.
func (st *matchState) matchGroup(g *group, m *Match) bool {
	path := st.path
	if g.exact != nil {
		for _, c := range g.exact[b2s(path)] {
			if st.accept(c.route) {
				m.Route, m.Path, m.StripLen = int(c.route), int(c.path), len(path)
				return true
			}
		}
	}
	if g.params != nil && st.splitSegments() <= g.maxPSegs {
		st.best = nil
		st.searchParams(g.params, 0)
		if pc := st.best; pc != nil {
			m.Route, m.Path, m.StripLen = int(pc.route), int(pc.path), len(path)
			for i, p := range pc.params {
				m.Params[i] = Param{Name: p.name, Value: path[st.segStart[p.seg]+1 : st.segStart[p.seg+1]]}
			}
			m.NParams = len(pc.params)
			return true
		}
	}
	if g.prefixes != nil && st.matchPrefix(g, m) {
		return true
	}
	return g.rindex != nil && st.matchRegexes(g, m)
}

// maxRegexLists is how many nodes of the regex index with regexes one
// path may pass (literals that are prefixes of one another, such as "/a",
// "/a/b", "/a/b/c", plus the regexes without a literal) before Match falls
// back to trying every regex of the group; beyond it the merge below
// would need memory it cannot take from the stack.
const maxRegexLists = 16

// matchRegexes tries, in config order, the regexes whose anchored literal
// starts the path: it walks the regex index along the path and merges the
// candidate lists of the nodes it passes, each already in config order.
func (st *matchState) matchRegexes(g *group, m *Match) bool {
	var lists [maxRegexLists][]int32
	path := st.path
	n, pos, k := g.rindex, 0, 0
	if len(n.cands) > 0 {
		lists[0] = n.cands
		k = 1
	}
	for pos < len(path) {
		i := strings.IndexByte(n.keys, path[pos])
		if i < 0 {
			break
		}
		n = n.kids[i]
		if len(path)-pos < len(n.label) || b2s(path[pos:pos+len(n.label)]) != n.label {
			break
		}
		pos += len(n.label)
		if len(n.cands) == 0 {
			continue
		}
		if k == maxRegexLists {
			for i := range g.regexes {
				if st.matchRegex(&g.regexes[i], m) {
					return true
				}
			}
			return false
		}
		lists[k] = n.cands
		k++
	}
	if k == 1 {
		for _, ci := range lists[0] {
			if st.matchRegex(&g.regexes[ci], m) {
				return true
			}
		}
		return false
	}
	var next [maxRegexLists]int
	for {
		best, bi := int32(-1), 0
		for j := 0; j < k; j++ {
			if next[j] < len(lists[j]) && (best < 0 || lists[j][next[j]] < best) {
				best, bi = lists[j][next[j]], j
			}
		}
		if best < 0 {
			return false
		}
		next[bi]++
		if st.matchRegex(&g.regexes[best], m) {
			return true
		}
	}
}

// splitSegments records where the path's segments start, once per Match,
// and returns their number (maxSegments+1 when there are more: no
// parameter pattern is that long).
func (st *matchState) splitSegments() int {
	if st.nseg >= 0 {
		return st.nseg
	}
	path := st.path
	n := 0
	st.segStart[0] = 0
	for i := 1; i < len(path); i++ {
		if path[i] == '/' {
			n++
			if n >= maxSegments {
				st.nseg = maxSegments + 1
				return st.nseg
			}
			st.segStart[n] = int32(i)
		}
	}
	n++
	st.segStart[n] = int32(len(path))
	st.nseg = n
	return n
}

// searchParams walks the parameter trie depth first and keeps the
// lowest-rank candidate that accepts the request. Subtrees whose best
// rank cannot beat the current one are skipped.
func (st *matchState) searchParams(n *pnode, i int) {
	if st.best != nil && n.minRank >= st.best.rank {
		return
	}
	if i == st.nseg {
		for _, pc := range n.leaves {
			if st.best != nil && pc.rank >= st.best.rank {
				return
			}
			if st.accept(pc.route) {
				st.best = pc
				return
			}
		}
		return
	}
	seg := st.path[st.segStart[i]+1 : st.segStart[i+1]]
	if n.lit != nil {
		if c := n.lit[b2s(seg)]; c != nil {
			st.searchParams(c, i+1)
		}
	}
	if n.param != nil && len(seg) > 0 {
		st.searchParams(n.param, i+1)
	}
}

// prefixStep is one depth of matchPrefix's walk.
type prefixStep struct {
	n   *xnode
	pos int // the path's length at this depth: path[pos] is "/" or the end
}

// shallowPrefix is how many depths of the prefix walk are kept on the
// stack of the common call; a group with deeper prefix patterns walks
// with a frame that holds maxSegments+1 (matchDeepPrefix). One frame of
// that size on the request's path is a kilobyte of the goroutine's stack.
const shallowPrefix = 8

// matchPrefix walks the prefix trie along the path's segments, then tries
// the nodes it passed from the deepest (longest prefix) up; at one depth
// "/a/" is longer than "/a" and goes first.
func (st *matchState) matchPrefix(g *group, m *Match) bool {
	if g.maxXDepth >= shallowPrefix {
		return st.matchDeepPrefix(g, m)
	}
	var stack [shallowPrefix]prefixStep
	return st.walkPrefix(g, m, stack[:])
}

// matchDeepPrefix is matchPrefix for a group with a prefix pattern of
// shallowPrefix segments or more.
//
//go:noinline
func (st *matchState) matchDeepPrefix(g *group, m *Match) bool {
	var stack [maxSegments + 1]prefixStep
	return st.walkPrefix(g, m, stack[:])
}

// walkPrefix is matchPrefix with room for g.maxXDepth+1 steps in stack.
func (st *matchState) walkPrefix(g *group, m *Match, stack []prefixStep) bool {
	path := st.path
	n, pos, depth := g.prefixes, 0, 0
	stack[0] = prefixStep{n, 0}
	for depth < g.maxXDepth && pos < len(path) && n.children != nil {
		end := len(path)
		if j := indexByte(path[pos+1:], '/'); j >= 0 {
			end = pos + 1 + j
		}
		next := n.children[b2s(path[pos+1:end])]
		if next == nil {
			break
		}
		n, pos = next, end
		depth++
		stack[depth] = prefixStep{n, pos}
	}
	for d := depth; d >= 0; d-- {
		s := stack[d]
		if s.pos < len(path) {
			for _, c := range s.n.slash {
				if st.accept(c.route) {
					m.Route, m.Path, m.StripLen = int(c.route), int(c.path), s.pos
					return true
				}
			}
		}
		for _, c := range s.n.bare {
			if st.accept(c.route) {
				m.Route, m.Path, m.StripLen = int(c.route), int(c.path), s.pos
				return true
			}
		}
	}
	return false
}

// matchRegex tries one regex candidate. The cheap checks come first:
// its anchored literal, then whether the route could accept the request
// or add to a 405 at all; only then the regex runs, with regexp.Match
// unless the route needs the match span.
func (st *matchState) matchRegex(c *rcand, m *Match) bool {
	path := st.path
	p := c.re
	if len(path) < len(p.relit) || b2s(path[:len(p.relit)]) != p.relit {
		return false
	}
	if p.reneed != "" && !strings.Contains(b2s(path), p.reneed) {
		return false
	}
	rt := &st.r.routes[c.route]
	if !st.methodOK(rt) {
		if rt.methods&^st.allowed != 0 && st.headersMatch(rt) && p.re.Match(path) {
			if st.allowed == 0 {
				st.firstDeny = c.route
			}
			st.allowed |= rt.methods
		}
		return false
	}
	if !st.headersMatch(rt) {
		return false
	}
	if !c.capture {
		if !p.re.Match(path) {
			return false
		}
		m.Route, m.Path = int(c.route), int(c.path)
		return true
	}
	loc := p.re.FindSubmatchIndex(path)
	if loc == nil {
		return false
	}
	m.Route, m.Path = int(c.route), int(c.path)
	if rt.strip && loc[0] == 0 {
		m.StripLen = loc[1]
		if loc[1] > 1 && path[loc[1]-1] == '/' {
			m.StripLen--
		}
	}
	n := 0
	for gi := 1; gi < len(p.groups); gi++ {
		if p.groups[gi] == "" || loc[2*gi] < 0 {
			continue
		}
		m.Params[n] = Param{Name: p.groups[gi], Value: path[loc[2*gi]:loc[2*gi+1]]}
		n++
	}
	m.NParams = n
	return true
}
