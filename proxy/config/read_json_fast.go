package config

import (
	"bytes"
	"encoding/json"
	"slices"

	"github.com/weirgw/weir/sdk"
)

// fastJSON reads a valid JSON document into the tree in one pass over the
// bytes, without encoding/json's token reader (which costs a scanner
// error value for each value it returns) and without the places that
// only error messages need: at a million consumers it is the difference
// between seconds and a fraction of one. It gives up (ok false) at the
// first thing that is not plainly valid and unique — a syntax error, a
// duplicate key, nesting too deep, a document over budget — and readJSON
// then reads the document again the careful way, which reports every
// problem with its line and place. A valid document therefore gives the
// same tree either way.
type fastJSON struct {
	data []byte
	i    int
	b    budget
	// keys interns mapping keys: a large config repeats a few keys
	// ("name", "credentials", "key") hundreds of thousands of times.
	keys map[string]string
	// direct: decode the top-level consumers list straight into
	// []Consumer (consumerList) instead of building its tree.
	direct  bool
	arena   rawArena
	scratch sdk.Credentials // credentials' kinds as they are read
}

func readJSONFast(data []byte, direct bool) (*node, bool) {
	r := &fastJSON{data: data, direct: direct}
	if len(data) > 64<<10 {
		// Only a large document repeats its keys enough to pay for the
		// set; small ones (a credential, an admin write) are read often.
		r.keys = make(map[string]string, 64)
	}
	n, ok := r.value(0)
	if !ok {
		return nil, false
	}
	r.space()
	return n, r.i == len(r.data)
}

func (r *fastJSON) space() {
	for r.i < len(r.data) {
		switch r.data[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

func (r *fastJSON) value(depth int) (*node, bool) {
	if depth > maxDepth {
		return nil, false
	}
	r.space()
	if r.i >= len(r.data) {
		return nil, false
	}
	switch c := r.data[r.i]; {
	case c == '{':
		return r.object(depth)
	case c == '[':
		return r.list(depth)
	case c == '"':
		s, ok := r.str(false)
		if !ok || !r.b.spend(len(s)) {
			return nil, false
		}
		return &node{kind: kString, str: s}, true
	case c == 't':
		return r.literal("true", &node{kind: kBool, b: true})
	case c == 'f':
		return r.literal("false", &node{kind: kBool})
	case c == 'n':
		return r.literal("null", &node{kind: kNull})
	case c == '-' || c >= '0' && c <= '9':
		s, ok := r.number()
		if !ok || !r.b.spend(len(s)) {
			return nil, false
		}
		return &node{kind: kNumber, str: s}, true
	}
	return nil, false
}

func (r *fastJSON) literal(word string, n *node) (*node, bool) {
	if len(r.data)-r.i < len(word) || string(r.data[r.i:r.i+len(word)]) != word || !r.b.spend(0) {
		return nil, false
	}
	r.i += len(word)
	return n, true
}

func (r *fastJSON) list(depth int) (*node, bool) {
	r.i++ // [
	n := &node{kind: kList}
	if !r.b.spend(0) {
		return nil, false
	}
	r.space()
	if r.i < len(r.data) && r.data[r.i] == ']' {
		r.i++
		return n, true
	}
	for {
		it, ok := r.value(depth + 1)
		if !ok {
			return nil, false
		}
		n.items = append(n.items, it)
		if done, ok := r.next(']'); !ok || done {
			return n, ok
		}
	}
}

func (r *fastJSON) object(depth int) (*node, bool) {
	r.i++ // {
	n := &node{kind: kMap}
	if !r.b.spend(0) {
		return nil, false
	}
	r.space()
	if r.i < len(r.data) && r.data[r.i] == '}' {
		r.i++
		return n, true
	}
	// Duplicates are found by looking back over a few keys, or in a set
	// once a mapping holds many.
	var seen map[string]bool
	for {
		r.space()
		if r.i >= len(r.data) || r.data[r.i] != '"' {
			return nil, false
		}
		k, ok := r.str(true)
		if !ok || !r.b.spend(len(k)) {
			return nil, false
		}
		if seen == nil && len(n.keys) == 16 {
			seen = make(map[string]bool, 32)
			for _, x := range n.keys {
				seen[x] = true
			}
		}
		if seen != nil {
			if seen[k] {
				return nil, false // a duplicate: the careful reader reports it
			}
			seen[k] = true
		} else {
			for _, x := range n.keys {
				if x == k {
					return nil, false
				}
			}
		}
		r.space()
		if r.i >= len(r.data) || r.data[r.i] != ':' {
			return nil, false
		}
		r.i++
		var v *node
		if depth == 0 && r.direct && k == "consumers" {
			v = r.consumerList()
		}
		if v == nil {
			if v, ok = r.value(depth + 1); !ok {
				return nil, false
			}
		}
		n.keys = append(n.keys, k)
		n.items = append(n.items, v)
		if done, ok := r.next('}'); !ok || done {
			return n, ok
		}
	}
}

// next reads what follows an item of a list or mapping: a comma (more
// items) or close (done); anything else is not ok.
func (r *fastJSON) next(close byte) (done, ok bool) {
	r.space()
	if r.i < len(r.data) {
		switch r.data[r.i] {
		case ',':
			r.i++
			return false, true
		case close:
			r.i++
			return true, true
		}
	}
	return false, false
}

// str reads a string at r.i (its opening quote). A string of printable
// ASCII without escapes, the usual case, is taken as it is; any other is
// decoded by encoding/json, so that escapes and invalid UTF-8 read
// exactly as the careful reader reads them.
func (r *fastJSON) str(intern bool) (string, bool) {
	start := r.i
	r.i++
	plain := true
	for r.i < len(r.data) {
		c := r.data[r.i]
		switch {
		case c == '"':
			r.i++
			raw := r.data[start+1 : r.i-1]
			if !plain {
				var s string
				if json.Unmarshal(r.data[start:r.i], &s) != nil {
					return "", false
				}
				return s, true
			}
			if intern && r.keys != nil {
				if s, ok := r.keys[string(raw)]; ok {
					return s, true
				}
				s := string(raw)
				if len(r.keys) < 4096 {
					r.keys[s] = s
				}
				return s, true
			}
			return string(raw), true
		case c == '\\':
			plain = false
			r.i += 2
			continue
		case c < 0x20:
			return "", false
		case c >= 0x80:
			plain = false
		}
		r.i++
	}
	return "", false
}

// number reads a JSON number (RFC 8259 §6) and returns its literal.
func (r *fastJSON) number() (string, bool) {
	d := r.data
	start := r.i
	i := r.i
	if i < len(d) && d[i] == '-' {
		i++
	}
	digits := func() int {
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		return i - j
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case digits() == 0:
		return "", false
	}
	if i < len(d) && d[i] == '.' {
		i++
		if digits() == 0 {
			return "", false
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if digits() == 0 {
			return "", false
		}
	}
	r.i = i
	return string(d[start:i]), true
}

// consumerList decodes the consumers list at r.i into []Consumer without
// building its tree: a million consumers are seven million values, whose
// tree was most of the garbage of reading them. It takes only consumers
// written the plain way — keys name, groups and credentials, each once
// and of the right type, strings without escapes, non-ASCII or "$" (no
// ${VAR} to expand) — and gives what the tree would decode to (the
// credentials themselves are read as trees and written out canonically,
// as decodeConsumers does). On anything else it returns nil with r.i
// where it was, and the list is read into the tree as any value is.
//
// The list's node is an empty list holding the consumers (pre): the
// schema check has nothing to walk in it, and parse takes them from it.
func (r *fastJSON) consumerList() *node {
	start, spent := r.i, r.b
	list, ok := r.consumers()
	if !ok {
		r.i, r.b = start, spent
		return nil
	}
	if cap(list) > len(list)+len(list)/4+16 {
		// Sized for a document of consumers, and this one holds more
		// else: the config keeps only what it needs.
		list = append(make([]Consumer, 0, len(list)), list...)
	}
	return &node{kind: kList, pre: &list}
}

func (r *fastJSON) consumers() ([]Consumer, bool) {
	r.space()
	if r.i >= len(r.data) || r.data[r.i] != '[' || !r.b.spend(0) {
		return nil, false
	}
	r.i++
	// Sized once rather than grown (grown, a million consumers leave a
	// quarter of the array unused): every consumer has a "name", and
	// little else after the list does.
	list := make([]Consumer, 0, bytes.Count(r.data[r.i:], []byte(`"name"`))+1)
	if r.peek(']') {
		return list, true
	}
	for {
		c, ok := r.consumer()
		if !ok {
			return nil, false
		}
		list = append(list, c)
		if done, ok := r.next(']'); !ok || done {
			return list, ok
		}
	}
}

// peek consumes c, after white space, when it is next.
func (r *fastJSON) peek(c byte) bool {
	r.space()
	if r.i < len(r.data) && r.data[r.i] == c {
		r.i++
		return true
	}
	return false
}

// plainStr reads a string with no escape, non-ASCII or "$".
func (r *fastJSON) plainStr(intern bool) (string, bool) {
	r.space()
	if r.i >= len(r.data) || r.data[r.i] != '"' {
		return "", false
	}
	start := r.i
	s, ok := r.str(intern)
	if !ok || r.i-start-2 != len(s) {
		return "", false // escapes: the tree's way
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '$' || s[i] >= 0x80 {
			return "", false
		}
	}
	return s, r.b.spend(len(s))
}

// nameStr is plainStr(false) for a consumer's name, whose bytes are
// carved from the arena: a million names are a million allocations
// otherwise.
func (r *fastJSON) nameStr() (string, bool) {
	r.space()
	raw, ok := r.flatString()
	if !ok {
		return r.plainStr(false) // the same checks, the usual way
	}
	return r.arena.str(raw), r.b.spend(len(raw))
}

func (r *fastJSON) consumer() (Consumer, bool) {
	var c Consumer
	if !r.peek('{') || !r.b.spend(0) {
		return c, false
	}
	if r.peek('}') {
		return c, true
	}
	var seen [3]bool // name, groups, credentials: each at most once
	for {
		k, ok := r.plainStr(true)
		if !ok || !r.peek(':') {
			return c, false
		}
		i := slices.Index([]string{"name", "groups", "credentials"}, k)
		if i < 0 || seen[i] {
			return c, false // an unknown or repeated key: the tree's way
		}
		seen[i] = true
		switch i {
		case 0:
			c.Name, ok = r.nameStr()
		case 1:
			c.Groups, ok = r.groups()
		default:
			c.Credentials, ok = r.credentials()
		}
		if !ok {
			return c, false
		}
		if done, ok := r.next('}'); !ok || done {
			return c, ok
		}
	}
}

func (r *fastJSON) groups() ([]string, bool) {
	if r.peek('[') {
		var out []string
		if !r.b.spend(0) {
			return nil, false
		}
		if r.peek(']') {
			return []string{}, true
		}
		for {
			g, ok := r.plainStr(false)
			if !ok {
				return nil, false
			}
			out = append(out, g)
			if done, ok := r.next(']'); !ok || done {
				return out, ok
			}
		}
	}
	return nil, false
}

func (r *fastJSON) credentials() (sdk.Credentials, bool) {
	if !r.peek('{') || !r.b.spend(0) {
		return nil, false
	}
	out := r.scratch[:0]
	if r.peek('}') {
		return r.arena.credentials(out), true
	}
	for {
		kind, ok := r.plainStr(true)
		if !ok || !r.peek(':') || !r.peek('[') || !r.b.spend(0) {
			return nil, false
		}
		if slices.ContainsFunc(out, func(l sdk.CredentialList) bool { return l.Plugin == kind }) {
			return nil, false
		}
		var list []json.RawMessage
		if !r.peek(']') {
			for {
				r.space()
				raw, ok := r.flatCredential()
				if !ok {
					v, ok := r.value(5) // the depth of a credential in the tree
					if !ok || !plainTree(v) {
						return nil, false
					}
					raw = r.arena.json(v)
				}
				if list == nil {
					list = r.arena.one(raw)
				} else {
					list = append(list, raw)
				}
				if done, ok := r.next(']'); !ok {
					return nil, false
				} else if done {
					break
				}
			}
		}
		if list == nil {
			list = []json.RawMessage{}
		}
		out = append(out, sdk.CredentialList{Plugin: r.arena.kind(kind), List: list})
		r.scratch = out
		if done, ok := r.next('}'); !ok || done {
			if !ok {
				return nil, false
			}
			return r.arena.credentials(out), true
		}
	}
}

// flatCredential reads a credential written the usual way, an object of
// a few string members without spaces, escapes or "$" ({"key":"..."}),
// as the bytes it is written in: they are the bytes appendJSON makes of
// its tree, and reading them costs no tree (at a million consumers the
// tree and its encoding were a quarter of the reading). It counts against
// the budget what the tree would. Anything else leaves r as it was (ok
// false) for the tree's way.
func (r *fastJSON) flatCredential() (json.RawMessage, bool) {
	i, b := r.i, r.b
	if raw, ok := r.flatObject(); ok {
		return r.arena.bytes(raw), true
	}
	r.i, r.b = i, b
	return nil, false
}

func (r *fastJSON) flatObject() ([]byte, bool) {
	start := r.i
	if r.i >= len(r.data) || r.data[r.i] != '{' || !r.b.spend(0) {
		return nil, false
	}
	r.i++
	var keys [4][]byte
	for n := 0; n < len(keys); n++ {
		k, ok := r.flatString()
		if !ok || !r.b.spend(len(k)) || r.i >= len(r.data) || r.data[r.i] != ':' {
			return nil, false
		}
		for _, x := range keys[:n] {
			if bytes.Equal(x, k) {
				return nil, false // a duplicate: the tree's way reports it
			}
		}
		keys[n] = k
		r.i++
		v, ok := r.flatString()
		if !ok || !r.b.spend(len(v)) || r.i >= len(r.data) {
			return nil, false
		}
		switch r.data[r.i] {
		case ',':
			r.i++
		case '}':
			r.i++
			return r.data[start:r.i], true
		default:
			return nil, false
		}
	}
	return nil, false
}

// flatString reads a string at r.i of printable ASCII bytes that JSON
// writes as they are (no '"' or '\\' escapes) and holds no "$", and
// returns its content.
func (r *fastJSON) flatString() ([]byte, bool) {
	if r.i >= len(r.data) || r.data[r.i] != '"' {
		return nil, false
	}
	start := r.i + 1
	for j := start; j < len(r.data); j++ {
		switch c := r.data[j]; {
		case c == '"':
			r.i = j + 1
			return r.data[start:j], true
		case c < 0x20 || c >= 0x7f || c == '\\' || c == '$':
			return nil, false
		}
	}
	return nil, false
}

// plainTree reports whether no string of n holds a "$", which the schema
// check would expand.
func plainTree(n *node) bool {
	if n.kind == kString {
		for i := 0; i < len(n.str); i++ {
			if n.str[i] == '$' {
				return false
			}
		}
	}
	for _, it := range n.items {
		if !plainTree(it) {
			return false
		}
	}
	return true
}
