package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// readYAML reads one YAML document into the tree.
//
// The document is parsed into yaml.Node (which keeps aliases as pointers,
// so parsing itself is linear in the input) and converted here. Aliases
// are expanded by copying under a budget of values and bytes, which stops
// "billion laughs" documents; yaml.v3's own alias-ratio guard only runs
// when decoding into Go values, not into yaml.Node.
func readYAML(data []byte, e *errs) *node { return readYAMLAnchors(data, e, nil) }

// readYAMLAnchors is readYAML; when anchors is not nil, it tells whether
// the document has an anchor or an alias.
func readYAMLAnchors(data []byte, e *errs, anchors *bool) *node {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := safeDecode(dec, &doc); err != nil {
		if err == io.EOF {
			e.add(TopLevel, "the document is empty; a config needs at least `listen`")
			return nil
		}
		yamlError(e, data, err)
		return nil
	}
	var extra yaml.Node
	switch err := safeDecode(dec, &extra); {
	case err == io.EOF:
	case err != nil:
		yamlError(e, data, err)
		return nil
	default:
		e.add(fmt.Sprintf("line %d", extra.Line), "a second YAML document (after ---); a config file holds one document")
		return nil
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			e.add(TopLevel, "the document is empty; a config needs at least `listen`")
			return nil
		}
		root = root.Content[0]
	}
	// Measure first: an alias bomb is refused in time linear in the
	// document instead of after building half a million values.
	sz := measure(root, map[*yaml.Node]size{}, 0)
	if lit := measureLiteral(root, 0); sz.nodes-lit.nodes > maxAliasNodes || sz.bytes-lit.bytes > maxAliasBytes {
		e.add(TopLevel, "YAML aliases expand the document by more than %d values or %d bytes of text; write the repeated blocks out or remove repetition", maxAliasNodes, maxAliasBytes)
		return nil
	}
	if sz.nodes > maxTreeNodes || sz.bytes > maxTreeBytes {
		(&yamlReader{e: e}).tooBig()
		return nil
	}
	if anchors != nil {
		*anchors = anchored(root)
	}
	r := &yamlReader{e: e, active: map[*yaml.Node]bool{}}
	n, ok := r.convert(root, "", 0)
	if !ok {
		return nil
	}
	return n
}

// safeDecode turns a panic inside the YAML parser into an error: the admin
// API feeds it bytes from the network, and one bad document must not take
// the gateway down.
func safeDecode(dec *yaml.Decoder, v *yaml.Node) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("yaml: the parser failed on this input (%v)", p)
		}
	}()
	return dec.Decode(v)
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError reports a yaml.v3 syntax error at its line.
func yamlError(e *errs, data []byte, err error) {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		if len(data) > maxBisectBytes {
			e.add("line "+m[1], "invalid YAML: %s (at or after this line: the file is too large to find the exact line)", m[2])
			return
		}
		e.add("line "+strconv.Itoa(problemLine(data, m[2], line)), "invalid YAML: %s", m[2])
		return
	}
	e.add(TopLevel, "invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}

// maxBisectBytes bounds the documents whose syntax error is located by
// problemLine: it parses the document about log2(lines) times, a second
// for a megabyte on a loaded machine, and the admin API takes documents
// of up to MaxDocumentBytes from the network. Real configs are far
// smaller.
const maxBisectBytes = 1 << 20

// problemLine finds the line of a YAML syntax error. yaml.v3 reports the
// line where the enclosing construct starts (its "context mark") rather
// than where the problem is, and counts that line from 0 for parser
// errors: a bad indentation deep in a list comes out at the line above
// the list. The library does not expose the problem's own position, so it
// is found from the outside: the line to fix is the first line at which
// the document stops being readable, that is the shortest prefix of whole
// lines that fails with the same problem. The parser stops at the
// problem, so once a prefix fails every longer one does, and a binary
// search finds that line in O(log n) parses. reported is yaml.v3's line,
// kept when no prefix reproduces the problem.
func problemLine(data []byte, problem string, reported int) int {
	// starts[i] is the offset of line i+1; a prefix of l lines is
	// data[:starts[l]].
	starts := []int{0}
	for i, c := range data {
		if c == '\n' && i+1 < len(data) {
			starts = append(starts, i+1)
		}
	}
	starts = append(starts, len(data))
	fails := func(lines int) bool {
		dec := yaml.NewDecoder(bytes.NewReader(data[:starts[lines]]))
		for range 2 { // the document and a second one, as readYAML reads
			var n yaml.Node
			err := safeDecode(dec, &n)
			if err == io.EOF {
				return false
			}
			if err != nil {
				m := yamlLineRE.FindStringSubmatch(err.Error())
				return m != nil && m[2] == problem
			}
		}
		return false
	}
	lo, hi := 1, len(starts)-1
	if !fails(hi) {
		return reported
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// size is what a YAML node expands to: values and bytes of text.
type size struct{ nodes, bytes int }

// measure computes the expanded size of y, following aliases, with each
// anchored node measured once. Sizes saturate just above the limits, so sums cannot
// overflow. Cycles and excessive depth count as small here; convert
// reports them.
func measure(y *yaml.Node, memo map[*yaml.Node]size, depth int) size {
	if y == nil || depth > maxDepth {
		return size{}
	}
	// Only a node with an anchor can be reached twice (through an alias),
	// so only those are memoized: a map entry for each of the millions of
	// values of a large consumer list cost more than the rest of reading.
	anchored := y.Anchor != ""
	if anchored {
		if sz, ok := memo[y]; ok {
			return sz
		}
		memo[y] = size{} // a cycle through y counts as nothing
	}
	var sz size
	if y.Kind == yaml.AliasNode {
		sz = measure(y.Alias, memo, depth+1)
	} else {
		sz = size{1, len(y.Value)}
		for _, c := range y.Content {
			cs := measure(c, memo, depth+1)
			sz.nodes = min(sz.nodes+cs.nodes, maxTreeNodes+1)
			sz.bytes = min(sz.bytes+cs.bytes, maxTreeBytes+1)
		}
	}
	if anchored {
		memo[y] = sz
	}
	return sz
}

// measureLiteral is the size of y as written, each alias counting as one
// value: what the document holds before aliases are expanded.
func measureLiteral(y *yaml.Node, depth int) size {
	if y == nil || depth > maxDepth {
		return size{}
	}
	sz := size{1, len(y.Value)}
	if y.Kind == yaml.AliasNode {
		return sz
	}
	for _, c := range y.Content {
		cs := measureLiteral(c, depth+1)
		sz.nodes += cs.nodes
		sz.bytes += cs.bytes
	}
	return sz
}

type yamlReader struct {
	e *errs
	b budget
	// active holds the anchors being expanded, to refuse an alias inside
	// its own anchor's value (yaml.v3 lets a Node graph have that cycle).
	active map[*yaml.Node]bool
}

func (r *yamlReader) tooBig() (*node, bool) {
	r.e.add(TopLevel, "the document expands to more than %d values or %d bytes of text (YAML aliases?); split it or remove repetition", maxTreeNodes, maxTreeBytes)
	return nil, false
}

func (r *yamlReader) convert(y *yaml.Node, place string, depth int) (*node, bool) {
	if depth > maxDepth {
		r.e.add(place, "nested more than %d levels deep (line %d); flatten the document", maxDepth, y.Line)
		return nil, false
	}
	switch y.Kind {
	case yaml.AliasNode:
		if y.Alias == nil {
			r.e.add(place, "alias *%s at line %d names no anchor", y.Value, y.Line)
			return nil, false
		}
		if r.active[y.Alias] {
			r.e.add(place, "alias *%s at line %d is inside its own anchor; YAML aliases must not be recursive", y.Value, y.Line)
			return nil, false
		}
		r.active[y.Alias] = true
		n, ok := r.convert(y.Alias, place, depth+1)
		delete(r.active, y.Alias)
		return n, ok
	case yaml.ScalarNode:
		n, ok := r.scalar(y, place)
		if !ok {
			return nil, false
		}
		if !r.b.spend(len(n.str)) {
			return r.tooBig()
		}
		return n, true
	case yaml.SequenceNode:
		if t := y.ShortTag(); t != "!!seq" {
			r.e.add(place, "unsupported YAML tag %s at line %d; remove it", t, y.Line)
			return nil, false
		}
		if !r.b.spend(0) {
			return r.tooBig()
		}
		n := &node{kind: kList, items: make([]*node, 0, len(y.Content))}
		for i, c := range y.Content {
			it, ok := r.convert(c, index(place, i), depth+1)
			if !ok {
				return nil, false
			}
			n.items = append(n.items, it)
		}
		return n, true
	case yaml.MappingNode:
		return r.mapping(y, place, depth)
	}
	r.e.add(place, "unexpected YAML node at line %d", y.Line)
	return nil, false
}

// resolveAlias follows aliases to the node they name.
func resolveAlias(y *yaml.Node) *yaml.Node {
	for i := 0; y != nil && y.Kind == yaml.AliasNode && i < 100; i++ {
		y = y.Alias
	}
	return y
}

// mapping converts a YAML mapping, applying merge keys ("<<: *defaults",
// https://yaml.org/type/merge.html): keys written in the mapping win over
// merged ones, and among several merged mappings the first wins.
func (r *yamlReader) mapping(y *yaml.Node, place string, depth int) (*node, bool) {
	if t := y.ShortTag(); t != "!!map" {
		r.e.add(place, "unsupported YAML tag %s at line %d; remove it", t, y.Line)
		return nil, false
	}
	if !r.b.spend(0) {
		return r.tooBig()
	}
	// First pass: the keys written here, to know what merges may not
	// override, and duplicates. A duplicate is reported and dropped (the
	// first value stays) so that the rest of the document is still
	// checked.
	explicit := map[string]bool{}
	keyOf := make([]string, len(y.Content)/2)
	skip := make([]bool, len(y.Content)/2)
	for i := 0; i+1 < len(y.Content); i += 2 {
		k := resolveAlias(y.Content[i])
		if k == nil || k.Kind != yaml.ScalarNode {
			r.e.add(place, "a key at line %d is a list or mapping; keys must be plain strings", y.Content[i].Line)
			skip[i/2] = true
			continue
		}
		if isMerge(k) {
			continue
		}
		keyOf[i/2] = k.Value
		if explicit[k.Value] {
			r.e.add(key(place, k.Value), "key %q appears twice in one mapping (line %d); keep one", k.Value, y.Content[i].Line)
			skip[i/2] = true
			continue
		}
		explicit[k.Value] = true
	}
	n := &node{kind: kMap}
	added := map[string]bool{}
	for i := 0; i+1 < len(y.Content); i += 2 {
		if skip[i/2] {
			continue
		}
		k := resolveAlias(y.Content[i])
		if isMerge(k) {
			if !r.merge(n, y.Content[i+1], place, depth, explicit, added) {
				return nil, false
			}
			continue
		}
		name := keyOf[i/2]
		if !r.b.spend(len(name)) {
			return r.tooBig()
		}
		v, ok := r.convert(y.Content[i+1], key(place, name), depth+1)
		if !ok {
			return nil, false
		}
		added[name] = true
		n.keys = append(n.keys, name)
		n.items = append(n.items, v)
	}
	return n, true
}

func isMerge(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge"
}

// merge adds the keys of the mapping (or list of mappings) v to n.
func (r *yamlReader) merge(n *node, v *yaml.Node, place string, depth int, explicit, added map[string]bool) bool {
	var sources []*yaml.Node
	switch rv := resolveAlias(v); {
	case rv == nil:
	case rv.Kind == yaml.MappingNode:
		sources = []*yaml.Node{v}
	case rv.Kind == yaml.SequenceNode:
		sources = rv.Content
	}
	if len(sources) == 0 {
		r.e.add(place, "the merge key << at line %d needs a mapping or a list of mappings, such as <<: *defaults", v.Line)
		return false
	}
	for _, s := range sources {
		if rs := resolveAlias(s); rs == nil || rs.Kind != yaml.MappingNode {
			r.e.add(place, "the merge key << at line %d needs a mapping or a list of mappings, such as <<: *defaults", s.Line)
			return false
		}
		m, ok := r.convert(s, place, depth+1)
		if !ok {
			return false
		}
		for i, k := range m.keys {
			if explicit[k] || added[k] {
				continue
			}
			added[k] = true
			n.keys = append(n.keys, k)
			n.items = append(n.items, m.items[i])
		}
	}
	return true
}

// scalar converts a YAML scalar by its resolved tag (YAML 1.2 core schema
// as yaml.v3 implements it: only true/false are booleans, "yes" and "on"
// are strings).
func (r *yamlReader) scalar(y *yaml.Node, place string) (*node, bool) {
	plain := y.Style == 0
	switch t := y.ShortTag(); t {
	case "!!str", "!!timestamp", "!!merge":
		// Timestamps stay the text written: the schema has no time
		// values, and plugins parse their own.
		return &node{kind: kString, str: y.Value, plain: plain}, true
	case "!!null":
		return &node{kind: kNull, plain: plain}, true
	case "!!bool", "!!int", "!!float":
		var v any
		if err := y.Decode(&v); err != nil {
			r.e.add(place, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
			return nil, false
		}
		n, err := fromGo(v)
		if err != nil {
			r.e.add(place, "%v", err)
			return nil, false
		}
		n.plain = plain
		return n, true
	case "!!binary":
		r.e.add(place, "!!binary values are not supported; write the value as a string (base64 if need be)")
		return nil, false
	default:
		r.e.add(place, "unsupported YAML tag %s at line %d; remove it", t, y.Line)
		return nil, false
	}
}

// fromGo converts a scalar decoded by yaml.v3 into a tree node.
func fromGo(v any) (*node, error) {
	switch x := v.(type) {
	case nil:
		return &node{kind: kNull}, nil
	case bool:
		return &node{kind: kBool, b: x}, nil
	case int:
		return &node{kind: kNumber, str: strconv.Itoa(x)}, nil
	case int64:
		return &node{kind: kNumber, str: strconv.FormatInt(x, 10)}, nil
	case uint64:
		return &node{kind: kNumber, str: strconv.FormatUint(x, 10)}, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, errors.New("not a finite number; JSON, the canonical form, has no .nan or .inf")
		}
		return &node{kind: kNumber, str: strconv.FormatFloat(x, 'g', -1, 64)}, nil
	case string:
		return &node{kind: kString, str: x}, nil
	}
	return nil, fmt.Errorf("unsupported value %T", v)
}

// resolvePlain reads s as YAML would read an unquoted scalar: a number, a
// boolean, null or a string. It never yields a list or a mapping, so an
// environment variable cannot inject structure.
func resolvePlain(s string) *node {
	y := &yaml.Node{Kind: yaml.ScalarNode, Value: s}
	switch y.ShortTag() {
	case "!!null", "!!bool", "!!int", "!!float":
		var v any
		if err := y.Decode(&v); err == nil {
			if n, err := fromGo(v); err == nil {
				return n
			}
		}
	}
	return &node{kind: kString, str: s}
}
