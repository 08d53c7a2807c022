package config

// cutJSONRoutes is cutRoutes for a JSON document: items are the text of
// each element of its top-level "routes" array, and head is the document
// with that array emptied ("routes": []). It refuses (found false) what
// it cannot cut for sure: not an object, a "routes" key written with an
// escape or twice, an array that is not one, anything malformed (a
// missing or trailing comma, an unclosed string), or nesting deeper than
// maxCutDepth (an item read alone must meet the depth limit exactly as
// it would inside the document). It checks structure only: every piece
// is then read by readJSON, and any error makes the Reader read the
// document whole.
func cutJSONRoutes(data []byte) (head []byte, items [][]byte, found bool) {
	c := &jsonCut{fastJSON{data: data}}
	c.space()
	if !c.is('{') {
		return nil, nil, false
	}
	c.i++
	start, end := -1, -1 // the array's contents are data[start:end]
	for first := true; ; first = false {
		c.space()
		if c.is('}') {
			if !first {
				return nil, nil, false // {"a": 1,}
			}
			c.i++
			break
		}
		k0 := c.i
		if !c.str() {
			return nil, nil, false
		}
		key := data[k0:c.i]
		c.space()
		if !c.is(':') {
			return nil, nil, false
		}
		c.i++
		c.space()
		if string(key) == `"routes"` {
			if start >= 0 || !c.is('[') {
				return nil, nil, false
			}
			c.i++
			start = c.i
			if items, found = c.elements(); !found {
				return nil, nil, false
			}
			end = c.i - 1
		} else if !c.value(1) {
			return nil, nil, false
		}
		c.space()
		if c.is(',') {
			c.i++
			continue
		}
		if !c.is('}') {
			return nil, nil, false
		}
		c.i++
		break
	}
	c.space()
	if c.i != len(data) || start < 0 || len(items) == 0 {
		return nil, nil, false
	}
	head = make([]byte, 0, len(data)-(end-start))
	head = append(append(head, data[:start]...), data[end:]...)
	return head, items, true
}

// maxCutDepth bounds the nesting of a document cutJSONRoutes takes, well
// under maxDepth.
const maxCutDepth = 64

// jsonCut walks the document with the fast reader's position and
// space; its own value and str only skip.
type jsonCut struct{ fastJSON }

func (c *jsonCut) is(b byte) bool { return c.i < len(c.data) && c.data[c.i] == b }

// str skips a string; a key with an escape is refused (it might spell
// "routes").
func (c *jsonCut) str() bool {
	if !c.is('"') {
		return false
	}
	for c.i++; c.i < len(c.data); c.i++ {
		switch c.data[c.i] {
		case '\\':
			return false
		case '"':
			c.i++
			return true
		}
	}
	return false
}

// elements skips the elements of an array whose '[' is behind, and the
// ']', returning the text of each.
func (c *jsonCut) elements() ([][]byte, bool) {
	var items [][]byte
	c.space()
	if c.is(']') {
		c.i++
		return items, true
	}
	for {
		c.space()
		s := c.i
		if !c.value(2) {
			return nil, false
		}
		items = append(items, c.data[s:c.i])
		c.space()
		switch {
		case c.is(','):
			c.i++
		case c.is(']'):
			c.i++
			return items, true
		default:
			return nil, false
		}
	}
}

// value skips one value at nesting depth depth: strings with their
// escapes, arrays and objects by their brackets, and anything else up to
// the next delimiter (readJSON judges the literal).
func (c *jsonCut) value(depth int) bool {
	if depth > maxCutDepth || c.i >= len(c.data) {
		return false
	}
	switch c.data[c.i] {
	case '"':
		for c.i++; c.i < len(c.data); c.i++ {
			switch c.data[c.i] {
			case '\\':
				c.i++
			case '"':
				c.i++
				return true
			}
		}
		return false
	case '[', '{':
		close := byte(']')
		if c.data[c.i] == '{' {
			close = '}'
		}
		c.i++
		for {
			c.space()
			if c.is(close) {
				c.i++
				return true
			}
			if !c.value(depth + 1) {
				return false
			}
			c.space()
			if c.is(',') || c.is(':') {
				c.i++
			}
		}
	case ']', '}', ',', ':':
		return false
	}
	s := c.i
	for c.i < len(c.data) {
		switch c.data[c.i] {
		case ',', ']', '}', ':', ' ', '\t', '\n', '\r', '"', '[', '{':
			return c.i > s
		}
		c.i++
	}
	return c.i > s
}
