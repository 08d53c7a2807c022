package config

import (
	"bytes"
	"io"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// A reload that changes one route of ten thousand read the whole YAML
// file again: yaml.v3 took two thirds of the reload's CPU (issue 17). A
// Reader keeps the tree of each route as its text read the last time,
// and reads again only the routes whose text changed.
//
// This works on the text, so it only takes documents whose routes can
// be cut out of it without reading YAML: a top-level `routes:` line
// followed by a block list, each item starting with "- " at one
// indentation, no anchors or aliases, no line that might continue a
// quoted or flow value onto the next, one document. Anything else, and
// any error in the document, is read whole, the careful way, so that
// what is accepted and every error message are exactly those of a whole
// read (TestRouteMemoSameTree, FuzzRouteMemo).

// routeMemo maps the text of a route item to what reading it gave: its
// tree, as yamlChunk read it and the schema walk left it, and, once a
// document holding it passed every check, the route decoded with its
// defaults and its hash (RouteHash). A tree the walk changed cannot be
// reused: only items without "$" (nothing to expand) are kept, and only
// from documents that had no error at all.
type routeMemo struct {
	trees map[string]*memoRoute
	// next holds the items of the document being read, which become
	// trees once it has proven free of errors (commit); order has the
	// document's item of each route index, nil for one not kept.
	next  map[string]*memoRoute
	order []*memoRoute
	// lastCut is the last YAML document cut and its cut, so that the
	// next is cut only where it differs (yamlCut.cut).
	lastCut *lastCut
}

// memoRoute is one route item's entry in a routeMemo.
type memoRoute struct {
	text string
	tree *node // until route is set
	// route is nil until a document with this item passed every check:
	// a copy of its Route with defaults applied. Copies of it share its
	// slices and pointers, which nothing writes once a config is read
	// (ApplyDefaults finds every default set already).
	route *Route
	hash  RouteSum
}

// commit keeps the items of the document just read, which c is, with
// their decoded routes.
// The hashes of the new routes go into c's facts too, for the compile.
func (m *routeMemo) commit(c *Config) {
	if len(m.order) == len(c.Routes) && len(c.Routes) > 0 {
		f := c.routeFacts()
		if f == nil {
			f = &routeFacts{first: &c.Routes[0], known: make([]bool, len(c.Routes)), hash: make([]RouteSum, len(c.Routes))}
			c.facts = f
		}
		for i, mr := range m.order {
			if mr != nil && mr.route == nil {
				r := c.Routes[i]
				mr.route = &r
				// Nothing reads the tree again: the route is neither
				// walked nor decoded from now on (known).
				mr.tree = nil
				mr.hash = c.RouteHash(i)
				f.hash[i] = mr.hash
			}
		}
	}
	m.trees, m.next, m.order = m.next, nil, nil
}

// known hides from root the routes whose decoded Route the memo has, so
// that the schema walk and the decoder see only the new ones; restore
// puts them back, and fill makes the full list from the decoded new
// routes. ok is false when there is nothing to hide.
func (m *routeMemo) known(root *node) (restore func(), fill func(c *Config), ok bool) {
	at := -1
	for i, k := range root.keys {
		if k == "routes" {
			at = i
		}
	}
	if at < 0 || len(m.order) != len(root.items[at].items) {
		return nil, nil, false
	}
	full := root.items[at]
	fresh := &node{kind: kList}
	for i, mr := range m.order {
		if mr == nil || mr.route == nil {
			fresh.items = append(fresh.items, full.items[i])
		}
	}
	if len(fresh.items) == len(full.items) {
		return nil, nil, false
	}
	root.items[at] = fresh
	restore = func() { root.items[at] = full }
	fill = func(c *Config) {
		routes := make([]Route, len(m.order))
		f := &routeFacts{first: &routes[0], known: make([]bool, len(routes)), hash: make([]RouteSum, len(routes))}
		j := 0
		for i, mr := range m.order {
			if mr != nil && mr.route != nil {
				routes[i] = *mr.route
				f.known[i] = true
				f.hash[i] = mr.hash
				continue
			}
			if j < len(c.Routes) {
				routes[i] = c.Routes[j]
			}
			j++
		}
		c.Routes = routes
		c.facts = f
	}
	return restore, fill, true
}

// Reader reads successive versions of one config file (the reloads of
// `weir run`), reusing what an unchanged YAML route gave the last
// time. It is not safe for concurrent use.
type Reader struct{ memo routeMemo }

// CheckAdjusted is the package's CheckAdjusted through r.
func (r *Reader) CheckAdjusted(file string, data []byte, lookup LookupFunc, adjust func(*Config), check CheckFunc) (*Config, error) {
	r.memo.next, r.memo.order = nil, nil
	c, err, _ := checkAdjusted(file, data, lookup, adjust, check, true, &r.memo)
	if err == nil {
		r.memo.commit(c)
		return c, nil
	}
	// Every error as a whole read reports it, in file order with its
	// line; the memo keeps what the last valid document gave.
	r.memo.next, r.memo.order = nil, nil
	c, err, _ = checkAdjusted(file, data, lookup, adjust, check, false, nil)
	return c, err
}

// LoadCheckAdjusted is the package's LoadCheckAdjusted through r.
func (r *Reader) LoadCheckAdjusted(path string, adjust func(*Config), check CheckFunc) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return r.CheckAdjusted(path, data, os.LookupEnv, adjust, check)
}

// readRoutes reads a YAML document (a JSON one when asJSON) with its
// routes read item by item through memo; ok is false when the document is
// not one it takes (read it whole then). When most routes are not in memo
// (the first read), parsing them one by one costs more than reading the
// whole document, which it then does, keeping its routes' trees for the
// next read. direct is readJSON's, for the document's consumers.
func readRoutes(data []byte, memo *routeMemo, e *errs, asJSON, direct bool) (root *node, ok bool) {
	limit := maxMemoBytes
	if asJSON {
		limit = maxMemoJSONBytes
	}
	if len(data) > limit {
		return nil, false
	}
	var head []byte
	var items [][]byte
	if asJSON {
		var found bool
		if head, items, found = cutJSONRoutes(data); !found {
			return nil, false
		}
	} else {
		var c yamlCut
		if !c.cut(data, memo.lastCut) {
			return nil, false
		}
		head, items = c.pieces(data)
		// A cache of cut, valid whatever the document turns out to say.
		memo.lastCut = &lastCut{text: bytes.Clone(data), c: c}
	}
	misses := 0
	order := make([]*memoRoute, len(items))
	for i, it := range items {
		order[i] = memo.trees[string(it)]
		if order[i] == nil || order[i].route == nil {
			misses++
		}
	}
	if misses > len(items)/4 {
		return readWhole(data, items, memo, e, asJSON, direct), true
	}
	e = &errs{}
	if asJSON {
		root = readJSON(head, e, direct)
	} else {
		root = readYAML(head, e)
	}
	if root == nil || len(e.list) > 0 || root.kind != kMap {
		return nil, false
	}
	at := -1
	for i, k := range root.keys {
		if k == "routes" {
			// The emptied list: null in YAML, [] in JSON.
			if n := root.items[i]; at >= 0 || n.kind != kNull && (n.kind != kList || len(n.items) > 0) {
				return nil, false
			}
			at = i
		}
	}
	if at < 0 {
		return nil, false
	}
	list := &node{kind: kList, items: make([]*node, len(items))}
	next := make(map[string]*memoRoute, len(items))
	for i, it := range items {
		mr := order[i]
		if mr == nil {
			var n *node
			if asJSON {
				n = jsonItem(it)
			} else {
				n = yamlItem(it)
			}
			if n == nil {
				return nil, false
			}
			mr = &memoRoute{text: string(it), tree: n}
		}
		if _, dup := next[mr.text]; dup {
			// Two routes with the same text (a duplicate name, which
			// Validate refuses): one tree must not serve both walks.
			return nil, false
		}
		next[mr.text] = mr
		list.items[i] = mr.tree
		if mr.tree == nil {
			list.items[i] = nullNode // a kept route, hidden by known
		}
		order[i] = mr
	}
	keepExpansionFree(next, order)
	root.items[at] = list
	memo.next, memo.order = next, order
	return root, true
}

// keepExpansionFree drops the items with "$" from next and order:
// expansion changes the tree as it walks it.
func keepExpansionFree(next map[string]*memoRoute, order []*memoRoute) {
	for i, mr := range order {
		if strings.IndexByte(mr.text, '$') >= 0 {
			delete(next, mr.text)
			order[i] = nil
		}
	}
}

// readWhole reads data whole, errors into e, and keeps the tree of each
// route item in memo when the routes list has one per item and the
// document no anchor or alias (which could tie an item to the rest).
func readWhole(data []byte, items [][]byte, memo *routeMemo, e *errs, asJSON, direct bool) *node {
	var anchors bool
	var root *node
	if asJSON {
		root = readJSON(data, e, direct)
	} else {
		root = readYAMLAnchors(data, e, &anchors)
	}
	if root == nil || anchors || len(e.list) > 0 || root.kind != kMap {
		return root
	}
	var list *node
	for i, k := range root.keys {
		if k == "routes" {
			if list != nil {
				return root
			}
			list = root.items[i]
		}
	}
	if list == nil || list.kind != kList || len(list.items) != len(items) {
		return root
	}
	next := make(map[string]*memoRoute, len(items))
	order := make([]*memoRoute, len(items))
	for i, it := range items {
		if _, dup := next[string(it)]; dup {
			return root
		}
		mr := &memoRoute{text: string(it), tree: list.items[i]}
		next[mr.text] = mr
		order[i] = mr
	}
	keepExpansionFree(next, order)
	memo.next, memo.order = next, order
	return root
}

// maxMemoBytes bounds the documents read through a Reader's memo: the
// tree limits (maxTreeNodes, maxTreeBytes) are checked on a whole read,
// and a document this size cannot reach them.
const maxMemoBytes = 64 << 20

// maxMemoJSONBytes is maxMemoBytes for JSON, where a value can take two
// bytes: a document this size holds fewer than maxTreeNodes values.
const maxMemoJSONBytes = 16 << 20

// jsonItem reads the text of one element of a JSON routes array, nil when
// it has an error. Not direct: a "consumers" key in it is no config's.
func jsonItem(text []byte) *node {
	e := &errs{}
	n := readJSON(text, e, false)
	if len(e.list) > 0 {
		return nil
	}
	return n
}

// yamlItem reads the text of one route item ("- name: ..." and the lines
// under it) as a one-item list, nil when it does not read alone or has
// anchors or aliases (which could tie it to the rest of the document).
func yamlItem(text []byte) *node {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(text))
	if safeDecode(dec, &doc) != nil {
		return nil
	}
	var extra yaml.Node
	if safeDecode(dec, &extra) != io.EOF {
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil
	}
	seq := doc.Content[0]
	if seq.Kind != yaml.SequenceNode || len(seq.Content) != 1 || seq.ShortTag() != "!!seq" || anchored(seq) {
		return nil
	}
	e := &errs{}
	r := &yamlReader{e: e, active: map[*yaml.Node]bool{}}
	n, ok := r.convert(seq.Content[0], "", 1)
	if !ok || len(e.list) > 0 {
		return nil
	}
	return n
}

// anchored reports whether y or anything under it has an anchor or is an
// alias.
func anchored(y *yaml.Node) bool {
	if y.Anchor != "" || y.Kind == yaml.AliasNode {
		return true
	}
	for _, c := range y.Content {
		if anchored(c) {
			return true
		}
	}
	return false
}

// cutRoutes finds the top-level `routes:` block list of a YAML document
// by its lines: head is the document with the list's items left out
// (`routes:` then reads as null) and items are the text of each item. It
// refuses (found false) what it cannot cut for sure: no `routes:` line
// or two, tabs, directives or document markers, a line in the list at
// the items' indentation that starts no item, or a line whose quotes or
// brackets do not close on it (a value that might go on to a line that
// looks like an item or like `routes:`).
func cutRoutes(data []byte) (head []byte, items [][]byte, found bool) {
	var c yamlCut
	if !c.cut(data, nil) {
		return nil, nil, false
	}
	head, items = c.pieces(data)
	return head, items, true
}

// yamlCut is the state of cutRoutes's scan, line by line, and at its end
// the cut: the list's lines are data[start:end], cuts the offset of each
// item's first line. Offsets are -1 until set.
type yamlCut struct {
	start, end, indent int
	cuts               []int
}

// cut scans data whole, or, given last (the cut of the last document
// cut, the text last.text), only from the line where data starts to
// differ from it to the line from which the rest of data is last's and
// the scan is in the state it was in there: a reload that edits one
// route of ten thousand scans that route's lines, not the file.
func (c *yamlCut) cut(data []byte, last *lastCut) bool {
	if bytes.IndexByte(data, '\t') >= 0 || bytes.Contains(data, []byte("\r")) {
		return false
	}
	*c = yamlCut{start: -1, end: -1, indent: -1}
	from, stop := 0, -1
	if last != nil {
		p, sfx := commonEnds(data, last.text)
		from = bytes.LastIndexByte(data[:p], '\n') + 1
		*c = last.at(from)
		stop = len(data) - sfx // lines that start after this byte are last's
	}
	delta := len(data) - len(last.textOrEmpty())
	for off := from; off < len(data); {
		if stop >= 0 && off > stop && off > from {
			if old := off - delta; last.at(old).same(c) {
				c.join(last, old, delta)
				break
			}
		}
		nl := bytes.IndexByte(data[off:], '\n')
		next := len(data)
		if nl >= 0 {
			next = off + nl + 1
		}
		if !c.line(data, off, next) {
			return false
		}
		off = next
	}
	if c.start < 0 || len(c.cuts) == 0 {
		return false
	}
	return true
}

// line scans the line data[off:next].
func (c *yamlCut) line(data []byte, off, next int) bool {
	text := bytes.TrimRight(data[off:next], " \n")
	lead := len(text) - len(bytes.TrimLeft(text, " "))
	blank := len(text) == 0 || text[lead] == '#'
	switch {
	case lead == 0 && !blank && (text[0] == '%' || bytes.HasPrefix(text, []byte("---")) || bytes.HasPrefix(text, []byte("..."))):
		return false
	case c.start < 0 && lead == 0 && bytes.HasPrefix(text, []byte("routes:")):
		if string(text) != "routes:" || c.end >= 0 {
			return false
		}
		c.start = next
	case c.start >= 0 && c.end < 0 && !blank:
		isItem := bytes.HasPrefix(text[lead:], []byte("- ")) || string(text[lead:]) == "-"
		switch {
		case c.indent < 0 && isItem:
			c.indent = lead
		case c.indent < 0:
			return false // `routes:` with something else under it
		}
		switch {
		case lead == c.indent && isItem:
			c.cuts = append(c.cuts, off)
		case lead > c.indent:
		case lead == 0:
			c.end = off // the next top-level key
		default:
			return false
		}
	case c.end >= 0 && !blank && lead == 0 && bytes.HasPrefix(text, []byte("routes:")):
		return false // a second routes key
	}
	return blank || closes(text)
}

// same reports whether the scan goes on from c as from d: what line
// reads of the state is whether start and end are set, and indent.
func (c yamlCut) same(d *yamlCut) bool {
	return (c.start >= 0) == (d.start >= 0) && (c.end >= 0) == (d.end >= 0) && c.indent == d.indent
}

// join completes c, a scan of data up to the line that is last's line
// at old, with what last's scan found from there on, shifted by delta.
func (c *yamlCut) join(last *lastCut, old, delta int) {
	for _, k := range last.c.cuts {
		if k >= old {
			c.cuts = append(c.cuts, k+delta)
		}
	}
	if c.indent < 0 {
		c.indent = last.c.indent // set by last's first item, if it has one after old
	}
	if c.start < 0 && last.c.start >= 0 {
		c.start = last.c.start + delta
	}
	if c.end < 0 && last.c.end >= 0 {
		c.end = last.c.end + delta
	}
}

// pieces is the head and the items of data cut at c.
func (c *yamlCut) pieces(data []byte) (head []byte, items [][]byte) {
	end := c.end
	if end < 0 {
		end = len(data)
	}
	items = make([][]byte, len(c.cuts))
	for i, k := range c.cuts {
		to := end
		if i+1 < len(c.cuts) {
			to = c.cuts[i+1]
		}
		items[i] = data[k:to]
	}
	head = make([]byte, 0, len(data)-(end-c.start))
	head = append(append(head, data[:c.start]...), data[end:]...)
	return head, items
}

// lastCut is the text of the last document a Reader cut and its cut.
type lastCut struct {
	text []byte
	c    yamlCut
}

func (l *lastCut) textOrEmpty() []byte {
	if l == nil {
		return nil
	}
	return l.text
}

// at is the state of l's scan before the line at offset x of l.text.
func (l *lastCut) at(x int) yamlCut {
	c := yamlCut{start: -1, end: -1, indent: -1}
	if l.c.start >= 0 && l.c.start <= x {
		c.start = l.c.start
	}
	n, _ := slices.BinarySearch(l.c.cuts, x)
	c.cuts = append(make([]int, 0, len(l.c.cuts)+16), l.c.cuts[:n]...)
	if n > 0 {
		c.indent = l.c.indent
	}
	if l.c.end >= 0 && l.c.end < x {
		c.end = l.c.end
	}
	return c
}

// commonEnds returns the length of the longest common prefix of a and b
// and of their longest common suffix that does not overlap it in either.
func commonEnds(a, b []byte) (prefix, suffix int) {
	n := min(len(a), len(b))
	const chunk = 4096
	for prefix+chunk <= n && bytes.Equal(a[prefix:prefix+chunk], b[prefix:prefix+chunk]) {
		prefix += chunk
	}
	for prefix < n && a[prefix] == b[prefix] {
		prefix++
	}
	m := n - prefix
	for suffix+chunk <= m && bytes.Equal(a[len(a)-suffix-chunk:len(a)-suffix], b[len(b)-suffix-chunk:len(b)-suffix]) {
		suffix += chunk
	}
	for suffix < m && a[len(a)-1-suffix] == b[len(b)-1-suffix] {
		suffix++
	}
	return prefix, suffix
}

// closes reports whether every quote and bracket opened on line closes on
// it, reading quotes as YAML does (” in single quotes, \" in double
// quotes); a '#' after a space ends the line. It errs on the side of
// false: an apostrophe in a plain word ("it's") makes the document read
// whole.
func closes(line []byte) bool {
	depth := 0
	for i := 0; i < len(line); i++ {
		j := bytes.IndexAny(line[i:], "\"'[]{}#")
		if j < 0 {
			break
		}
		i += j
		switch c := line[i]; c {
		case '"':
			for i++; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' {
					i++
				}
			}
			if i >= len(line) {
				return false
			}
		case '\'':
			for i++; ; i++ {
				if i >= len(line) {
					return false
				}
				if line[i] == '\'' {
					if i+1 < len(line) && line[i+1] == '\'' {
						i++
						continue
					}
					break
				}
			}
		case '[', '{':
			depth++
		case ']', '}':
			depth--
		case '#':
			if i > 0 && line[i-1] == ' ' {
				return depth == 0
			}
		}
		// A block scalar ('|', '>') needs no case: its lines are
		// indented deeper than its key, so never at an item's
		// indentation, and they stay in the item.
	}
	return depth == 0
}
