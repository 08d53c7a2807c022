package transform

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	json "github.com/goccy/go-json"
	"github.com/weirgw/weir/plugins/internal/rawquery"
	"github.com/weirgw/weir/sdk"
)

// jsonNode is one object key of the compiled JSON operations. The root
// stands for the top-level object. A node is a "set" leaf (value != nil),
// a "remove" leaf (remove), or an interior node (children).
type jsonNode struct {
	key     string
	keyJSON []byte // `"key":`, written when the member is created
	path    string // the dotted path, for config errors
	// fold: this subtree only removes, so its keys match whatever their
	// case. Go's encoding/json (and other binders) map "Password" onto a
	// field tagged "password", so a case-sensitive remove would let a
	// client slip the field past the gateway by changing its case.
	fold     bool
	remove   bool
	value    []byte // set: the compact JSON value
	create   []byte // interior: the object inserted when the key is absent or null; nil when nothing below sets
	children []*jsonNode
}

// jsonProgram holds the compiled json.set / json.remove operations.
type jsonProgram struct {
	root *jsonNode
}

// buildJSON compiles the json section. Paths may not overlap (one equal to
// or inside another): the outcome would depend on an order the config does
// not show.
func buildJSON(set map[string]json.RawMessage, remove []string) (*jsonProgram, error) {
	if len(set) == 0 && len(remove) == 0 {
		return nil, nil
	}
	root := &jsonNode{}
	type entry struct {
		path  string
		value json.RawMessage
		op    string
	}
	var entries []entry
	for _, p := range sortedKeys(set) {
		entries = append(entries, entry{p, set[p], "set"})
	}
	for _, p := range remove {
		entries = append(entries, entry{p, nil, "remove"})
	}
	for i, e := range entries {
		where := fmt.Sprintf("json.%s[%d]", e.op, i-len(set))
		if e.op == "set" {
			where = "json.set." + e.path
		}
		segs, err := ParseJSONPath(e.path)
		if err != nil {
			return nil, fmt.Errorf("%s: %q %w", where, e.path, err)
		}
		var leaf jsonNode
		leaf.path = e.path
		if e.op == "set" {
			var buf bytes.Buffer
			if err := json.Compact(&buf, e.value); err != nil {
				return nil, fmt.Errorf("%s: the value is not valid JSON: %w", where, err)
			}
			leaf.value = buf.Bytes()
		} else {
			leaf.remove = true
		}
		if err := insert(root, segs, &leaf, e.op); err != nil {
			return nil, err
		}
	}
	if err := finish(root); err != nil {
		return nil, err
	}
	return &jsonProgram{root: root}, nil
}

func insert(root *jsonNode, segs []string, leaf *jsonNode, op string) error {
	n := root
	for i, s := range segs {
		var next *jsonNode
		for _, ch := range n.children {
			if ch.key == s {
				next = ch
				break
			}
		}
		last := i == len(segs)-1
		if next != nil && (last || next.value != nil || next.remove) {
			other := next.path
			if other == "" {
				other = firstLeafPath(next)
			}
			if other == leaf.path {
				return fmt.Errorf("json: %q appears twice (in set or remove); keep one", other)
			}
			return fmt.Errorf("json: %q and %q overlap; a path may not be equal to or inside another", other, leaf.path)
		}
		if next == nil {
			next = &jsonNode{key: s}
			if last {
				next.path, next.value, next.remove = leaf.path, leaf.value, leaf.remove
			}
			n.children = append(n.children, next)
		}
		n = next
	}
	return nil
}

func firstLeafPath(n *jsonNode) string {
	for n.path == "" && len(n.children) > 0 {
		n = n.children[0]
	}
	return n.path
}

// finish sorts children, checks sibling keys, and pre-renders keys and the
// objects inserted for absent keys, bottom up.
func finish(n *jsonNode) error {
	sort.Slice(n.children, func(i, j int) bool { return n.children[i].key < n.children[j].key })
	if len(n.children) > maxOps {
		return fmt.Errorf("json: %d keys under one object; at most %d are allowed", len(n.children), maxOps)
	}
	n.fold = n.remove
	if n.value == nil && !n.remove {
		n.fold = true
	}
	var create []byte
	for _, ch := range n.children {
		if err := finish(ch); err != nil {
			return err
		}
		ch.keyJSON = append(sdk.AppendJSONString(nil, ch.key), ':')
		if !ch.fold {
			n.fold = false
		}
		frag := ch.value
		if frag == nil {
			frag = ch.create
		}
		if frag != nil {
			if create == nil {
				create = append(create, '{')
			} else {
				create = append(create, ',')
			}
			create = append(append(create, ch.keyJSON...), frag...)
		}
	}
	if create != nil {
		n.create = append(create, '}')
	}
	for i, a := range n.children {
		for _, b := range n.children[i+1:] {
			if (a.fold || b.fold) && strings.EqualFold(a.key, b.key) {
				return fmt.Errorf("json: the keys %q and %q differ only in case, and remove matches keys whatever their case; write them the same way", a.key, b.key)
			}
		}
	}
	return nil
}

// jsonResult is the outcome of one body, counted in the json metric.
type jsonResult uint8

const (
	resRewritten jsonResult = iota // edited
	resUnchanged                   // valid, nothing to do
	resInvalid                     // not valid JSON (or nested deeper than maxJSONDepth)
	resNotObject                   // valid JSON whose top level is not an object
	resTooLarge                    // over max_body_bytes
	resStreamed                    // streamed by the proxy (over 256 KiB or of unknown length)
	resEncoded                     // Content-Encoding other than identity
	resPartial                     // 206: a range of the representation
	numResults
)

var resultNames = [numResults]string{"rewritten", "unchanged", "invalid", "not_object", "too_large", "streamed", "encoded", "partial"}

// maxJSONDepth bounds nesting (objects and arrays). Deeper documents are
// passed through untouched and counted as invalid: the scanner recurses,
// and no API needs more.
const maxJSONDepth = 512

// rewrite appends to dst the body src with the operations applied. The
// whole document is validated (RFC 8259 grammar; invalid UTF-8 inside
// strings is passed through like any other byte); untouched values are
// copied byte for byte. dst is meaningful only with resRewritten.
func (jp *jsonProgram) rewrite(dst, src []byte) ([]byte, jsonResult) {
	p := skipWS(src, 0)
	if p >= len(src) {
		return dst, resInvalid
	}
	if src[p] != '{' {
		if end := skipValue(src, p, 1); end >= 0 && skipWS(src, end) == len(src) {
			return dst, resNotObject
		}
		return dst, resInvalid
	}
	w := jsonRewriter{src: src}
	dst = append(dst, src[:p]...)
	dst, end := w.object(dst, p, jp.root, 1)
	if end < 0 || skipWS(src, end) != len(src) {
		return dst, resInvalid
	}
	if !w.changed {
		return dst, resUnchanged
	}
	return append(dst, src[end:]...), resRewritten
}

// jsonRewriter is the state of one rewrite; it lives on the stack.
type jsonRewriter struct {
	src     []byte
	changed bool
}

// object copies the object at src[p] ('{') to dst, applying n's children.
// It returns the index after the object, or -1 if the input is invalid.
// Members it keeps keep the whitespace that preceded them; removed members
// take their separator with them; created members are appended last.
func (w *jsonRewriter) object(dst []byte, p int, n *jsonNode, depth int) ([]byte, int) {
	src := w.src
	if depth > maxJSONDepth {
		return dst, -1
	}
	dst = append(dst, '{')
	p++
	var seen uint64 // children met in the input
	emitted := 0
	var closeWS []byte
	ws := p
	p = skipWS(src, p)
	if p < len(src) && src[p] == '}' {
		closeWS = src[ws:p]
		p++
	} else {
		for {
			if p >= len(src) || src[p] != '"' {
				return dst, -1
			}
			keyStart := p
			var esc bool
			if p, esc = scanString(src, p); p < 0 {
				return dst, -1
			}
			keyEnd := p
			if p = skipWS(src, p); p >= len(src) || src[p] != ':' {
				return dst, -1
			}
			p = skipWS(src, p+1)
			valStart := p
			idx := n.match(src[keyStart+1:keyEnd-1], esc)
			var end int
			switch {
			case idx < 0:
				if end = skipValue(src, p, depth+1); end < 0 {
					return dst, -1
				}
				dst = separate(dst, &emitted, src[ws:keyStart])
				dst = append(dst, src[keyStart:end]...)
			case n.children[idx].remove:
				if end = skipValue(src, p, depth+1); end < 0 {
					return dst, -1
				}
				w.changed = true
			case n.children[idx].value != nil:
				if end = skipValue(src, p, depth+1); end < 0 {
					return dst, -1
				}
				seen |= 1 << idx
				dst = separate(dst, &emitted, src[ws:keyStart])
				dst = append(dst, src[keyStart:valStart]...)
				dst = append(dst, n.children[idx].value...)
				w.changed = true
			default:
				ch := n.children[idx]
				seen |= 1 << idx
				dst = separate(dst, &emitted, src[ws:keyStart])
				dst = append(dst, src[keyStart:valStart]...)
				switch {
				case p < len(src) && src[p] == '{':
					dst, end = w.object(dst, p, ch, depth+1)
				case ch.create != nil && bytes.HasPrefix(src[p:], litNull):
					// null stands for "no object": create it. Any other
					// value (string, number, array) is data the operator
					// did not name, so a set below it is skipped.
					end = p + len(litNull)
					dst = append(dst, ch.create...)
					w.changed = true
				default:
					if end = skipValue(src, p, depth+1); end >= 0 {
						dst = append(dst, src[valStart:end]...)
					}
				}
				if end < 0 {
					return dst, -1
				}
			}
			ws = end
			if p = skipWS(src, end); p >= len(src) {
				return dst, -1
			}
			if src[p] == ',' {
				ws = p + 1
				p = skipWS(src, p+1)
				continue
			}
			if src[p] != '}' {
				return dst, -1
			}
			closeWS = src[ws:p]
			p++
			break
		}
	}
	for i, ch := range n.children {
		if seen&(1<<i) != 0 {
			continue
		}
		frag := ch.value
		if frag == nil {
			frag = ch.create
		}
		if frag == nil {
			continue
		}
		if emitted > 0 {
			dst = append(dst, ',')
		}
		emitted++
		dst = append(dst, ch.keyJSON...)
		dst = append(dst, frag...)
		w.changed = true
	}
	dst = append(dst, closeWS...)
	return append(dst, '}'), p
}

var (
	litNull  = []byte("null")
	litTrue  = []byte("true")
	litFalse = []byte("false")
)

// separate writes the comma before every member but the first, then the
// whitespace that preceded the member in the input.
func separate(dst []byte, emitted *int, ws []byte) []byte {
	if *emitted > 0 {
		dst = append(dst, ',')
	}
	*emitted++
	return append(dst, ws...)
}

// match returns the index of the child named by the raw (still escaped)
// key, or -1.
func (n *jsonNode) match(raw []byte, esc bool) int {
	for i, ch := range n.children {
		var ok bool
		switch {
		case esc:
			ok = escapedKeyEquals(raw, ch.key, ch.fold)
		case ch.fold:
			ok = equalFoldString(raw, ch.key)
		default:
			ok = string(raw) == ch.key
		}
		if ok {
			return i
		}
	}
	return -1
}

func equalFoldString(raw []byte, key string) bool {
	i, j := 0, 0
	for i < len(raw) && j < len(key) {
		if c := raw[i]; c < utf8.RuneSelf && key[j] < utf8.RuneSelf {
			if !equalFoldRune(rune(c), rune(key[j])) {
				return false
			}
			i++
			j++
			continue
		}
		r, n := utf8.DecodeRune(raw[i:])
		k, m := utf8.DecodeRuneInString(key[j:])
		if !equalFoldRune(r, k) {
			return false
		}
		i += n
		j += m
	}
	return i == len(raw) && j == len(key)
}

// escapedKeyEquals compares a JSON string's raw contents, decoded as
// encoding/json decodes them ("\u0070" is "p", an unpaired surrogate or
// invalid UTF-8 is U+FFFD), with key. A client cannot hide "password" from
// remove by writing "pa\u0073sword".
func escapedKeyEquals(raw []byte, key string, fold bool) bool {
	i, j := 0, 0
	for i < len(raw) {
		var r rune
		r, i = nextJSONRune(raw, i)
		if j >= len(key) {
			return false
		}
		k, size := utf8.DecodeRuneInString(key[j:])
		j += size
		if r != k && !(fold && equalFoldRune(r, k)) {
			return false
		}
	}
	return j == len(key)
}

// nextJSONRune decodes the rune at raw[i] of a scanned (valid) JSON
// string's contents.
func nextJSONRune(raw []byte, i int) (rune, int) {
	c := raw[i]
	if c != '\\' {
		if c < utf8.RuneSelf {
			return rune(c), i + 1
		}
		r, n := utf8.DecodeRune(raw[i:])
		return r, i + n
	}
	switch raw[i+1] {
	case 'b':
		return '\b', i + 2
	case 'f':
		return '\f', i + 2
	case 'n':
		return '\n', i + 2
	case 'r':
		return '\r', i + 2
	case 't':
		return '\t', i + 2
	case 'u':
		r := getu4(raw[i+2:])
		if utf16.IsSurrogate(r) {
			if i+12 <= len(raw) && raw[i+6] == '\\' && raw[i+7] == 'u' {
				if d := utf16.DecodeRune(r, getu4(raw[i+8:])); d != unicode.ReplacementChar {
					return d, i + 12
				}
			}
			return unicode.ReplacementChar, i + 6
		}
		return r, i + 6
	}
	return rune(raw[i+1]), i + 2 // \" \\ \/
}

func getu4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		r = r<<4 | rune(rawquery.Unhex(c))
	}
	return r
}

// equalFoldRune is strings.EqualFold for one rune pair (Unicode simple
// folding).
func equalFoldRune(a, b rune) bool {
	if a == b {
		return true
	}
	if b < a {
		a, b = b, a
	}
	if b < utf8.RuneSelf {
		return 'A' <= a && a <= 'Z' && b == a+'a'-'A'
	}
	r := unicode.SimpleFold(a)
	for r != a && r < b {
		r = unicode.SimpleFold(r)
	}
	return r == b
}

func skipWS(src []byte, p int) int {
	for p < len(src) {
		switch src[p] {
		case ' ', '\t', '\n', '\r':
			p++
		default:
			return p
		}
	}
	return p
}

// scanString returns the index after the string starting at src[p] ('"'),
// whether it contains escapes, or -1 when it is not a valid JSON string.
func scanString(src []byte, p int) (int, bool) {
	esc := false
	for i := p + 1; i < len(src); i++ {
		switch c := src[i]; {
		case c == '"':
			return i + 1, esc
		case c == '\\':
			esc = true
			i++
			if i >= len(src) {
				return -1, false
			}
			switch src[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(src) {
					return -1, false
				}
				for _, h := range src[i+1 : i+5] {
					if rawquery.Unhex(h) > 15 {
						return -1, false
					}
				}
				i += 4
			default:
				return -1, false
			}
		case c < 0x20:
			return -1, false
		}
	}
	return -1, false
}

// skipValue returns the index after the JSON value at src[p], or -1.
func skipValue(src []byte, p, depth int) int {
	if p >= len(src) {
		return -1
	}
	switch c := src[p]; {
	case c == '"':
		end, _ := scanString(src, p)
		return end
	case c == '{' || c == '[':
		return skipContainer(src, p, depth)
	case c == 't':
		return skipLiteral(src, p, litTrue)
	case c == 'f':
		return skipLiteral(src, p, litFalse)
	case c == 'n':
		return skipLiteral(src, p, litNull)
	case c == '-' || '0' <= c && c <= '9':
		return scanNumber(src, p)
	}
	return -1
}

func skipLiteral(src []byte, p int, lit []byte) int {
	if bytes.HasPrefix(src[p:], lit) {
		return p + len(lit)
	}
	return -1
}

// skipContainer validates and skips an object or an array.
func skipContainer(src []byte, p, depth int) int {
	if depth > maxJSONDepth {
		return -1
	}
	obj := src[p] == '{'
	closer := byte(']')
	if obj {
		closer = '}'
	}
	p = skipWS(src, p+1)
	if p < len(src) && src[p] == closer {
		return p + 1
	}
	for {
		if obj {
			if p >= len(src) || src[p] != '"' {
				return -1
			}
			if p, _ = scanString(src, p); p < 0 {
				return -1
			}
			if p = skipWS(src, p); p >= len(src) || src[p] != ':' {
				return -1
			}
			p = skipWS(src, p+1)
		}
		if p = skipValue(src, p, depth+1); p < 0 {
			return -1
		}
		if p = skipWS(src, p); p >= len(src) {
			return -1
		}
		switch src[p] {
		case ',':
			p = skipWS(src, p+1)
		case closer:
			return p + 1
		default:
			return -1
		}
	}
}

// scanNumber follows RFC 8259 §6: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(src []byte, p int) int {
	i := p
	if src[i] == '-' {
		i++
	}
	switch {
	case i < len(src) && src[i] == '0':
		i++
	case i < len(src) && '1' <= src[i] && src[i] <= '9':
		i = digits(src, i)
	default:
		return -1
	}
	if i < len(src) && src[i] == '.' {
		j := digits(src, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(src) && (src[i] == 'e' || src[i] == 'E') {
		i++
		if i < len(src) && (src[i] == '+' || src[i] == '-') {
			i++
		}
		j := digits(src, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func digits(src []byte, i int) int {
	for i < len(src) && '0' <= src[i] && src[i] <= '9' {
		i++
	}
	return i
}
