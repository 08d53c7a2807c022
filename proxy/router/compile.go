package router

import (
	"fmt"
	"maps"
	"net/textproto"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/weirgw/weir/internal/httpsyntax"
)

// Router is a compiled, immutable set of routes. It is safe for concurrent
// use; build a new one with Compile when the config changes.
type Router struct {
	exactHosts map[string]*group // by canonical host
	wildHosts  map[string]*group // by the suffix after "*."
	maxWild    int               // longest key of wildHosts
	anyHost    *group            // routes without hosts
	routes     []route           // by spec index
	methodBit  map[string]uint64 // method → its bit; bits follow the sorted method names
	methodName []string          // by bit index, sorted
	// specs and parsed are what Compile was given and made of each,
	// kept so that CompileFrom parses only the routes that changed.
	specs  []Spec
	parsed []parsed
}

// route is what Match checks once a candidate's path matched.
type route struct {
	methods uint64 // 0: any method
	allow   []byte // the sorted methods, joined for a 405's Allow
	headers []headerCond
	strip   bool
}

type headerCond struct {
	name  string // canonical form (RFC 9110 §5.1: case-insensitive)
	value string
	id    int // one per distinct name in the Router; the first few are cached per Match
}

// group holds the path patterns of the routes that share one host key (or
// have none), each kind indexed so that Match never scans all of them.
type group struct {
	exact     map[string][]cand // by the exact path, in config order
	params    *pnode            // segment trie of parameter paths
	maxPSegs  int               // most segments of a parameter path; 0: none
	prefixes  *xnode            // segment trie of prefixes
	maxXDepth int               // most segments of a prefix
	regexes   []rcand           // in config order
	rindex    *rnode            // regexes by their anchored literal; nil: none
}

// cand names one path of one route.
type cand struct {
	route int32
	path  int32
}

// pnode is a node of the parameter trie: depth d stands for the first d
// segments of the path.
type pnode struct {
	lit     map[string]*pnode
	param   *pnode
	leaves  []*paramCand // patterns ending here, by rank
	minRank int32        // lowest rank in this subtree, to prune the search
}

type paramCand struct {
	cand
	rank   int32 // order among the group's parameter paths
	params []paramAt
}

type paramAt struct {
	name string
	seg  int
}

// xnode is a node of the prefix trie: depth d stands for the first d
// segments. bare holds "/a/b" (matches when the path ends or continues
// with "/"), slash holds "/a/b/" (needs the "/"), each in config order.
type xnode struct {
	children map[string]*xnode
	bare     []cand
	slash    []cand
}

// rnode is a node of the regex index, a radix tree of the regexes'
// anchored literals: the path from the root spells the literal, and cands
// are the regexes (indexes into group.regexes, ascending: config order)
// whose literal ends exactly here. The root holds the regexes without a
// literal, which every path must try. A path walks the tree once and tries
// only the regexes of the nodes it passes, so a table of regexes that
// differ in their literal prefix costs about one regex, not one per route.
type rnode struct {
	label string   // the bytes from the parent to here
	keys  string   // the first byte of each kid's label, in kids order
	kids  []*rnode // labels start with distinct bytes
	cands []int32
}

// insert adds regex ci under the literal key, splitting an edge where key
// leaves it.
func (n *rnode) insert(key string, ci int32) {
	for key != "" {
		i := strings.IndexByte(n.keys, key[0])
		if i < 0 {
			n.keys += key[:1]
			n.kids = append(n.kids, &rnode{label: key, cands: []int32{ci}})
			return
		}
		k := n.kids[i]
		l := 0
		for l < len(k.label) && l < len(key) && k.label[l] == key[l] {
			l++
		}
		if l < len(k.label) {
			mid := &rnode{label: k.label[:l], keys: k.label[l : l+1], kids: []*rnode{k}}
			k.label = k.label[l:]
			n.kids[i] = mid
			k = mid
		}
		n, key = k, key[l:]
	}
	n.cands = append(n.cands, ci)
}

type rcand struct {
	cand
	re      *pattern
	capture bool // FindSubmatchIndex needed: named groups or StripPath
}

// Compile validates specs and builds a Router. It reports every error it
// finds, each with the route, the field and the fix; the Router is nil
// when there are errors. It runs in two phases: parse checks and
// normalizes each route on its own, build indexes them all.
func Compile(specs []Spec) (*Router, []RouteError) {
	ps, methodOrder, errs := parse(specs)
	if len(errs) > 0 {
		return nil, errs
	}
	return build(specs, ps, methodOrder), nil
}

// CompileFrom is Compile for a config that replaces prev's (nil: none):
// a spec equal to one of prev's is not parsed again (its regexes are not
// compiled again), which is most of the cost when one route of ten
// thousand changed. The indexes are built anew, so the Router matches
// exactly as Compile's would; the errors are Compile's too. When every
// spec is prev's, at the same index, prev itself is returned: a Router
// is immutable, and a reload that changed no route's matching (a plugin,
// a service, a timeout) rebuilds no index.
func CompileFrom(specs []Spec, prev *Router) (*Router, []RouteError) {
	if prev == nil {
		return Compile(specs)
	}
	if sameSpecs(specs, prev.specs) {
		return prev, nil
	}
	ps := make([]parsed, len(specs))
	var fresh []Spec // the specs prev has not parsed, in order
	var freshAt []int
	var byKey map[string]int // prev's specs by specKey, made at the first miss
	for i := range specs {
		j := -1
		if i < len(prev.specs) && sameSpec(&specs[i], &prev.specs[i]) {
			j = i
		} else {
			if byKey == nil {
				byKey = make(map[string]int, len(prev.specs))
				for k := range prev.specs {
					byKey[specKey(&prev.specs[k])] = k
				}
			}
			if k, ok := byKey[specKey(&specs[i])]; ok && sameSpec(&specs[i], &prev.specs[k]) {
				j = k
			}
		}
		if j < 0 {
			fresh = append(fresh, specs[i])
			freshAt = append(freshAt, i)
			continue
		}
		ps[i] = prev.parsed[j]
	}
	if len(fresh) > 0 {
		fps, _, errs := parse(fresh)
		if len(errs) > 0 {
			return Compile(specs) // the errors, numbered and ordered as Compile's
		}
		for k, i := range freshAt {
			ps[i] = fps[k]
		}
	}
	// The distinct methods by first use; past 64 only Compile's error
	// message says which method of which route is the one too many.
	var methodOrder []string
	seen := map[string]bool{}
	for i := range ps {
		for _, m := range ps[i].methods {
			if !seen[m] {
				seen[m] = true
				methodOrder = append(methodOrder, m)
			}
		}
	}
	if len(methodOrder) > 64 {
		return Compile(specs)
	}
	return build(specs, ps, methodOrder), nil
}

// sameSpecs reports whether a and b are the same specs in the same
// order, StripPath included (build reads it).
func sameSpecs(a, b []Spec) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].StripPath != b[i].StripPath || !sameSpec(&a[i], &b[i]) {
			return false
		}
	}
	return true
}

// sameSpec reports whether a and b match the same requests as parsed
// (StripPath is read by build, not parse).
func sameSpec(a, b *Spec) bool {
	return slices.Equal(a.Paths, b.Paths) && slices.Equal(a.Hosts, b.Hosts) &&
		slices.Equal(a.Methods, b.Methods) && maps.Equal(a.Headers, b.Headers)
}

// specKey is a lookup key for a spec: equal specs have equal keys (a
// header map's order does not count: its size does, and sameSpec checks
// the rest).
func specKey(s *Spec) string {
	var b strings.Builder
	for _, l := range [][]string{s.Paths, s.Hosts, s.Methods} {
		for _, x := range l {
			b.WriteString(x)
			b.WriteByte(0)
		}
		b.WriteByte(1)
	}
	b.WriteString(strconv.Itoa(len(s.Headers)))
	return b.String()
}

type parsedHost struct {
	name string
	wild bool
}

// parsed is one route's matchers, validated and normalized.
type parsed struct {
	hosts   []parsedHost
	paths   []pattern
	methods []string
	headers []headerCond
}

// parse validates every route's hosts, paths, methods and headers and
// normalizes them (duplicates dropped, methods uppercased, header names
// canonical). methodOrder lists the distinct methods by first use.
func parse(specs []Spec) (ps []parsed, methodOrder []string, errs []RouteError) {
	fail := func(route int, field, msg string) {
		errs = append(errs, RouteError{Route: route, Field: field, Msg: msg})
	}
	ps = make([]parsed, len(specs))
	methodSet := map[string]bool{}
	for ri, s := range specs {
		p := &ps[ri]
		seenHost := map[parsedHost]bool{}
		for i, h := range s.Hosts {
			name, wild, msg := parseHost(h)
			if msg != "" {
				fail(ri, fmt.Sprintf("hosts[%d]", i), msg)
				continue
			}
			ph := parsedHost{name, wild}
			if !seenHost[ph] {
				seenHost[ph] = true
				p.hosts = append(p.hosts, ph)
			}
		}
		paths := s.Paths
		if len(paths) == 0 {
			paths = []string{"/"}
		}
		for i, raw := range paths {
			pat, msg := parsePath(raw)
			if msg != "" {
				fail(ri, fmt.Sprintf("paths[%d]", i), msg)
			}
			p.paths = append(p.paths, pat) // keeps indexes aligned with Spec.Paths
		}
		seenMethod := map[string]bool{}
		for i, m := range s.Methods {
			up, msg := parseMethod(m)
			if msg != "" {
				fail(ri, fmt.Sprintf("methods[%d]", i), msg)
				continue
			}
			if seenMethod[up] {
				continue
			}
			seenMethod[up] = true
			p.methods = append(p.methods, up)
			if !methodSet[up] {
				methodSet[up] = true
				methodOrder = append(methodOrder, up)
				if len(methodOrder) > 64 {
					fail(ri, fmt.Sprintf("methods[%d]", i), fmt.Sprintf("%q is one method too many: all routes together may use at most 64 distinct methods", m))
				}
			}
		}
		names := make([]string, 0, len(s.Headers))
		for name := range s.Headers {
			names = append(names, name)
		}
		sort.Strings(names)
		seenHeader := map[string]string{}
		for _, name := range names {
			field := fmt.Sprintf("headers[%q]", name)
			value := s.Headers[name]
			if msg := checkHeader(name, value); msg != "" {
				fail(ri, field, msg)
				continue
			}
			canon := textproto.CanonicalMIMEHeaderKey(name)
			if prev, dup := seenHeader[canon]; dup {
				fail(ri, field, fmt.Sprintf("%q is the same header as %q (names are case-insensitive); keep one", name, prev))
				continue
			}
			seenHeader[canon] = name
			p.headers = append(p.headers, headerCond{name: canon, value: value})
		}
	}
	return ps, methodOrder, errs
}

// build indexes parsed routes: a method bitmask per route, host groups
// (exact, wildcard, any), and in each group the path matchers.
func build(specs []Spec, ps []parsed, methodOrder []string) *Router {
	r := &Router{
		exactHosts: map[string]*group{},
		wildHosts:  map[string]*group{},
		methodBit:  map[string]uint64{},
		routes:     make([]route, len(specs)),
		specs:      specs,
		parsed:     ps,
	}
	r.methodName = append(r.methodName, methodOrder...)
	sort.Strings(r.methodName)
	for i, m := range r.methodName {
		r.methodBit[m] = 1 << uint(i)
	}
	allowByMask := map[uint64][]byte{}
	headerID := map[string]int{}

	b := map[*group]*groupBuilder{}
	builder := func(g *group) *groupBuilder {
		gb := b[g]
		if gb == nil {
			gb = &groupBuilder{g: g}
			b[g] = gb
		}
		return gb
	}
	for ri, s := range specs {
		p := &ps[ri]
		rt := &r.routes[ri]
		// A copy: the ids are this Router's, and p may be shared with
		// the Router it replaces (CompileFrom).
		rt.headers = slices.Clone(p.headers)
		for i := range rt.headers {
			hc := &rt.headers[i]
			id, ok := headerID[hc.name]
			if !ok {
				id = len(headerID)
				headerID[hc.name] = id
			}
			hc.id = id
		}
		rt.strip = s.StripPath
		for _, m := range p.methods {
			rt.methods |= r.methodBit[m]
		}
		if rt.methods != 0 {
			if allowByMask[rt.methods] == nil {
				allowByMask[rt.methods] = r.appendAllow(nil, rt.methods)
			}
			rt.allow = allowByMask[rt.methods]
		}
		var groups []*group
		if len(p.hosts) == 0 {
			if r.anyHost == nil {
				r.anyHost = &group{}
			}
			groups = append(groups, r.anyHost)
		}
		for _, h := range p.hosts {
			m := r.exactHosts
			if h.wild {
				m = r.wildHosts
				r.maxWild = max(r.maxWild, len(h.name))
			}
			if m[h.name] == nil {
				m[h.name] = &group{}
			}
			groups = append(groups, m[h.name])
		}
		for pi := range p.paths {
			for _, g := range groups {
				builder(g).add(cand{int32(ri), int32(pi)}, &p.paths[pi], s.StripPath)
			}
		}
	}
	for _, gb := range b {
		gb.finish()
	}
	return r
}

// appendAllow appends the names of the methods in mask, sorted and
// comma-separated as in an Allow header (RFC 9110 §10.2.1).
func (r *Router) appendAllow(dst []byte, mask uint64) []byte {
	first := true
	for i, name := range r.methodName {
		if mask&(1<<uint(i)) == 0 {
			continue
		}
		if !first {
			dst = append(dst, ", "...)
		}
		first = false
		dst = append(dst, name...)
	}
	return dst
}

// parseMethod validates a method and returns it uppercased.
func parseMethod(m string) (string, string) {
	q := fmt.Sprintf("%q", m)
	if m == "" {
		return "", `"" is empty; remove it or write a method like "GET"`
	}
	if m == "*" {
		return "", `"*" is not a method; leave methods empty to allow every method`
	}
	for i := 0; i < len(m); i++ {
		if !httpsyntax.IsTchar(m[i]) {
			return "", fmt.Sprintf("%s has the invalid character %q; a method is a token like \"GET\" or \"PURGE\" (RFC 9110 §9.1)", q, m[i])
		}
	}
	return strings.ToUpper(m), ""
}

func checkHeader(name, value string) string {
	if name == "" {
		return "the header name is empty; write a name like \"X-Version\""
	}
	for i := 0; i < len(name); i++ {
		if !httpsyntax.IsTchar(name[i]) {
			return fmt.Sprintf("%q is not a valid header name (invalid character %q); a name is a token like \"X-Version\" (RFC 9110 §5.1)", name, name[i])
		}
	}
	if value == "" {
		return "the value is empty; a header condition needs the exact non-empty value to match"
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return fmt.Sprintf("the value %q contains a control character, which a header value cannot carry (RFC 9110 §5.5)", value)
		}
	}
	return ""
}

// groupBuilder collects one group's patterns before its tries are ranked.
type groupBuilder struct {
	g      *group
	params []*paramCand
	nlit   []int
	segs   [][]pseg
}

func (gb *groupBuilder) add(c cand, p *pattern, strip bool) {
	g := gb.g
	switch p.kind {
	case kindExact:
		if g.exact == nil {
			g.exact = map[string][]cand{}
		}
		g.exact[p.path] = append(g.exact[p.path], c)
	case kindPrefix:
		if g.prefixes == nil {
			g.prefixes = &xnode{}
		}
		n := g.prefixes
		for _, s := range p.segs {
			if n.children == nil {
				n.children = map[string]*xnode{}
			}
			next := n.children[s]
			if next == nil {
				next = &xnode{}
				n.children[s] = next
			}
			n = next
		}
		if p.slash {
			n.slash = append(n.slash, c)
		} else {
			n.bare = append(n.bare, c)
		}
		g.maxXDepth = max(g.maxXDepth, len(p.segs))
	case kindParam:
		pc := &paramCand{cand: c}
		for i, s := range p.psegs {
			if s.param != "" {
				pc.params = append(pc.params, paramAt{name: s.param, seg: i})
			}
		}
		gb.params = append(gb.params, pc)
		gb.nlit = append(gb.nlit, p.nlit)
		gb.segs = append(gb.segs, p.psegs)
		g.maxPSegs = max(g.maxPSegs, len(p.psegs))
	case kindRegex:
		g.regexes = append(g.regexes, rcand{cand: c, re: p, capture: p.named > 0 || strip})
	}
}

// finish indexes the group's regexes and ranks its parameter paths.
func (gb *groupBuilder) finish() {
	if len(gb.g.regexes) > 0 {
		gb.g.rindex = &rnode{}
		for i := range gb.g.regexes {
			gb.g.rindex.insert(gb.g.regexes[i].re.relit, int32(i))
		}
	}
	gb.finishParams()
}

// finishParams ranks the parameter paths (more literal segments first,
// then config order, which is the order they were added in) and builds
// their trie.
func (gb *groupBuilder) finishParams() {
	if len(gb.params) == 0 {
		return
	}
	order := make([]int, len(gb.params))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return gb.nlit[order[a]] > gb.nlit[order[b]] })
	root := &pnode{}
	for rank, i := range order {
		pc := gb.params[i]
		pc.rank = int32(rank)
		n := root
		for _, s := range gb.segs[i] {
			if s.param != "" {
				if n.param == nil {
					n.param = &pnode{}
				}
				n = n.param
				continue
			}
			if n.lit == nil {
				n.lit = map[string]*pnode{}
			}
			next := n.lit[s.lit]
			if next == nil {
				next = &pnode{}
				n.lit[s.lit] = next
			}
			n = next
		}
		n.leaves = append(n.leaves, pc) // ranks ascend: added in rank order
	}
	setMinRank(root)
	gb.g.params = root
}

func setMinRank(n *pnode) int32 {
	m := int32(1<<31 - 1)
	if len(n.leaves) > 0 {
		m = n.leaves[0].rank
	}
	for _, c := range n.lit {
		m = min(m, setMinRank(c))
	}
	if n.param != nil {
		m = min(m, setMinRank(n.param))
	}
	n.minRank = m
	return m
}
