package config

import (
	"encoding/json"
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
}

func readJSONFast(data []byte) (*node, bool) {
	r := &fastJSON{data: data, keys: make(map[string]string, 64)}
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
		r.space()
		if r.i >= len(r.data) {
			return nil, false
		}
		switch r.data[r.i] {
		case ',':
			r.i++
		case ']':
			r.i++
			return n, true
		default:
			return nil, false
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
		v, ok := r.value(depth + 1)
		if !ok {
			return nil, false
		}
		n.keys = append(n.keys, k)
		n.items = append(n.items, v)
		r.space()
		if r.i >= len(r.data) {
			return nil, false
		}
		switch r.data[r.i] {
		case ',':
			r.i++
		case '}':
			r.i++
			return n, true
		default:
			return nil, false
		}
	}
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
			if intern {
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
