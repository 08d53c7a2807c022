package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// readJSON reads a JSON document into the tree. Duplicate keys, which
// encoding/json would silently resolve to the last one, are errors: two
// values for one setting is a mistake worth reporting.
func readJSON(data []byte, e *errs, direct bool) *node {
	if len(bytes.TrimSpace(data)) == 0 {
		e.add(TopLevel, "the document is empty; a config needs at least `listen`")
		return nil
	}
	if n, ok := readJSONFast(data, direct); ok {
		return n
	}
	return readJSONCareful(data, e)
}

// readJSONCareful is readJSON for a document the fast reader gave up on:
// it reports every problem with its place.
func readJSONCareful(data []byte, e *errs) *node {
	// A first pass with the scanner of json.Unmarshal finds syntax errors
	// with a consistent offset (just past the bad byte); the token reader
	// below reports some errors before the byte and some after.
	if err := json.Unmarshal(data, new(json.RawMessage)); err != nil {
		var se *json.SyntaxError
		if !errors.As(err, &se) {
			e.add(TopLevel, "invalid JSON: %v", err)
			return nil
		}
		off := se.Offset
		if off < int64(len(data)) || se.Error() != "unexpected end of JSON input" {
			off-- // point at the bad byte itself
		}
		e.add(lineCol(data, off), "invalid JSON: %s", se.Error())
		return nil
	}
	r := &jsonReader{data: data, e: e}
	r.dec = json.NewDecoder(bytes.NewReader(data))
	r.dec.UseNumber()
	n, ok := r.value("", 0)
	if !ok {
		return nil
	}
	if _, err := r.dec.Token(); err != io.EOF {
		r.syntax(err, "unexpected data after the end of the document; a file holds one JSON value")
		return nil
	}
	return n
}

type jsonReader struct {
	data []byte
	dec  *json.Decoder
	e    *errs
	b    budget
}

// syntax reports a syntax error at its line and column.
func (r *jsonReader) syntax(err error, fallback string) {
	off := r.dec.InputOffset()
	msg := fallback
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		off = se.Offset
		msg = se.Error()
	case errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF:
		off = int64(len(r.data))
		msg = "unexpected end of the document"
	}
	r.e.add(lineCol(r.data, off), "invalid JSON: %s", msg)
}

// lineCol turns a byte offset into "line L, column C" (both from 1).
func lineCol(data []byte, off int64) string {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	if off < 0 {
		off = 0
	}
	before := data[:off]
	line := bytes.Count(before, []byte{'\n'}) + 1
	col := int(off) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return fmt.Sprintf("line %d, column %d", line, col)
}

func (r *jsonReader) value(place string, depth int) (*node, bool) {
	tok, err := r.dec.Token()
	if err != nil {
		if err == io.EOF && depth == 0 {
			r.e.add(TopLevel, "the document is empty; a config needs at least `listen`")
			return nil, false
		}
		r.syntax(err, "invalid token")
		return nil, false
	}
	if depth > maxDepth {
		r.e.add(place, "nested more than %d levels deep; flatten the document", maxDepth)
		return nil, false
	}
	switch t := tok.(type) {
	case nil:
		return r.leaf(&node{kind: kNull})
	case bool:
		return r.leaf(&node{kind: kBool, b: t})
	case json.Number:
		return r.leaf(&node{kind: kNumber, str: string(t)})
	case string:
		return r.leaf(&node{kind: kString, str: t})
	case json.Delim:
		switch t {
		case '[':
			n := &node{kind: kList}
			if !r.b.spend(0) {
				return r.tooBig()
			}
			for i := 0; r.dec.More(); i++ {
				it, ok := r.value(index(place, i), depth+1)
				if !ok {
					return nil, false
				}
				n.items = append(n.items, it)
			}
			if _, err := r.dec.Token(); err != nil {
				r.syntax(err, "unterminated list")
				return nil, false
			}
			return n, true
		case '{':
			n := &node{kind: kMap}
			if !r.b.spend(0) {
				return r.tooBig()
			}
			seen := map[string]bool{}
			for r.dec.More() {
				kt, err := r.dec.Token()
				if err != nil {
					r.syntax(err, "invalid key")
					return nil, false
				}
				k, _ := kt.(string) // the decoder guarantees string keys
				if !r.b.spend(len(k)) {
					return r.tooBig()
				}
				kp := key(place, k)
				v, ok := r.value(kp, depth+1)
				if !ok {
					return nil, false
				}
				if seen[k] {
					r.e.add(kp, "key %q appears twice in one mapping; keep one", k)
					continue
				}
				seen[k] = true
				n.keys = append(n.keys, k)
				n.items = append(n.items, v)
			}
			if _, err := r.dec.Token(); err != nil {
				r.syntax(err, "unterminated mapping")
				return nil, false
			}
			return n, true
		}
	}
	r.syntax(nil, fmt.Sprintf("unexpected %v", tok))
	return nil, false
}

func (r *jsonReader) leaf(n *node) (*node, bool) {
	if !r.b.spend(len(n.str)) {
		return r.tooBig()
	}
	return n, true
}

func (r *jsonReader) tooBig() (*node, bool) {
	r.e.add(TopLevel, "the document holds more than %d values or %d bytes of text; split it or remove repetition", maxTreeNodes, maxTreeBytes)
	return nil, false
}
