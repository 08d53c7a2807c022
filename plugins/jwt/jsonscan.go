package jwt

import (
	"encoding/json"
	"github.com/weirgw/weir/internal/charset"
	"strconv"

	"github.com/weirgw/weir/sdk"
)

// This file reads the JSON of a token's header and claims without
// building a map: the document is validated once with the grammar
// encoding/json accepts (RFC 8259, same nesting limit), and members are
// then found by scanning the top-level object. Values that need real
// decoding (escapes, non-ASCII, nested objects and arrays rendered for a
// header) go through encoding/json itself, so the result is what
// golang-jwt's map decoding would have produced; only the common cases
// (plain ASCII strings, numbers, booleans) are read in place.

// maxJSONDepth is encoding/json's nesting limit.
const maxJSONDepth = 10000

// jsonObject is a validated JSON document that is an object (or null,
// which decodes to an empty map), its top-level members located once by
// parseObject: a verification asks for a dozen members (the header's
// forbidden fields, alg, kid, iss, exp, nbf, iat, aud, sub, scope...),
// and finding each by scanning the document again was ~40 % of an
// unseen token's cost.
type jsonObject struct {
	members []member
}

// member is one top-level member of a jsonObject: views of its document.
type member struct {
	// name is the member name without its quotes when it needs no
	// decoding (plain), else the quoted name (compared through keyIs).
	name   []byte
	quoted bool
	// tag is a plain name of 1 to 8 bytes packed into an integer
	// (nameTag), else 0: the registered claims and header parameters
	// are such names, and get compares them in one instruction.
	tag   uint64
	value []byte
}

// nameTag packs a name of 1 to 8 bytes into an integer; two names of
// that length are equal exactly when their tags are (a plain name holds
// no zero byte).
func nameTag(name string) uint64 {
	t := uint64(0)
	for i := len(name) - 1; i >= 0; i-- {
		t = t<<8 | uint64(name[i])
	}
	return t
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// validJSON reports whether b is exactly one JSON value with optional
// surrounding whitespace.
func validJSON(b []byte) bool {
	i, ok := skipValue(b, skipSpace(b, 0), 0)
	return ok && skipSpace(b, i) == len(b)
}

// skipValue returns the index after the value starting at b[i].
func skipValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch c := b[i]; {
	case c == '{':
		if depth >= maxJSONDepth {
			return i, false
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == '}' {
			return i + 1, true
		}
		for {
			var ok bool
			if i >= len(b) || b[i] != '"' {
				return i, false
			}
			if i, ok = skipString(b, i); !ok {
				return i, false
			}
			i = skipSpace(b, i)
			if i >= len(b) || b[i] != ':' {
				return i, false
			}
			if i, ok = skipValue(b, skipSpace(b, i+1), depth+1); !ok {
				return i, false
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return i, false
			}
			if b[i] == '}' {
				return i + 1, true
			}
			if b[i] != ',' {
				return i, false
			}
			i = skipSpace(b, i+1)
		}
	case c == '[':
		if depth >= maxJSONDepth {
			return i, false
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1, true
		}
		for {
			var ok bool
			if i, ok = skipValue(b, i, depth+1); !ok {
				return i, false
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return i, false
			}
			if b[i] == ']' {
				return i + 1, true
			}
			if b[i] != ',' {
				return i, false
			}
			i = skipSpace(b, i+1)
		}
	case c == '"':
		return skipString(b, i)
	case c == '-' || (c >= '0' && c <= '9'):
		return skipNumber(b, i)
	case c == 't':
		return skipLiteral(b, i, "true")
	case c == 'f':
		return skipLiteral(b, i, "false")
	case c == 'n':
		return skipLiteral(b, i, "null")
	}
	return i, false
}

func skipLiteral(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}

// skipString validates the string starting at b[i] (a quote). As in
// encoding/json, control characters must be escaped and escapes are the
// eight of RFC 8259 §7; bytes that are not UTF-8 are allowed (decoding
// replaces them).
func skipString(b []byte, i int) (int, bool) {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return i, false
		case c == '\\':
			i++
			if i >= len(b) {
				return i, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(b)-i < 5 {
					return i, false
				}
				for _, h := range b[i+1 : i+5] {
					if !charset.IsHex(h) {
						return i, false
					}
				}
				i += 4
			default:
				return i, false
			}
		}
	}
	return i, false
}

// skipNumber validates -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func skipNumber(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && charset.IsDigit(b[i]) {
			i++
		}
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !charset.IsDigit(b[i]) {
			return i, false
		}
		for i < len(b) && charset.IsDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !charset.IsDigit(b[i]) {
			return i, false
		}
		for i < len(b) && charset.IsDigit(b[i]) {
			i++
		}
	}
	return i, true
}

// parseObject validates b and returns it as an object, its members
// appended to into[:0] (storage reused between calls: the object holds
// views of b and of into); isNull says b is the literal null (an empty
// map to encoding/json); ok is false for invalid JSON or a value that is
// neither an object nor null. One pass validates and indexes: the
// top-level object's grammar is skipValue's, each member recorded as it
// is validated (validating the whole document first and then finding
// the members was two scans of every byte, ~10 % of an unseen HS256
// token's cost).
func parseObject(b []byte, into []member) (obj jsonObject, isNull, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) {
		return jsonObject{}, false, false
	}
	switch b[i] {
	case 'n':
		i, ok = skipLiteral(b, i, "null")
		return jsonObject{}, ok, ok && skipSpace(b, i) == len(b)
	case '{':
	default:
		return jsonObject{}, false, false
	}
	ms := into[:0]
	if i = skipSpace(b, i+1); i < len(b) && b[i] == '}' {
		return jsonObject{members: ms}, false, skipSpace(b, i+1) == len(b)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return jsonObject{}, false, false
		}
		end, ok := skipString(b, i)
		if !ok {
			return jsonObject{}, false, false
		}
		m := member{name: b[i:end]}
		if plain(m.name) {
			m.name = m.name[1 : len(m.name)-1]
			if len(m.name) <= 8 {
				m.tag = nameTag(sdk.B2S(m.name))
			}
		} else {
			m.quoted = true
		}
		if i = skipSpace(b, end); i >= len(b) || b[i] != ':' {
			return jsonObject{}, false, false
		}
		start := skipSpace(b, i+1)
		next, ok := skipValue(b, start, 1)
		if !ok {
			return jsonObject{}, false, false
		}
		m.value = b[start:next]
		ms = append(ms, m)
		if i = skipSpace(b, next); i >= len(b) {
			return jsonObject{}, false, false
		}
		switch b[i] {
		case '}':
			return jsonObject{members: ms}, false, skipSpace(b, i+1) == len(b)
		case ',':
			i = skipSpace(b, i+1)
		default:
			return jsonObject{}, false, false
		}
	}
}

// get returns the raw value of the last member named name (encoding/json
// keeps the last of duplicate names), or nil.
func (o jsonObject) get(name string) []byte {
	tag := uint64(0)
	if len(name) <= 8 {
		tag = nameTag(name) // 0 for ""
	}
	for i := len(o.members) - 1; i >= 0; i-- {
		m := &o.members[i]
		switch {
		case m.quoted:
			if keyIs(m.name, name) {
				return m.value
			}
		case tag != 0:
			if m.tag == tag {
				return m.value
			}
		case string(m.name) == name:
			return m.value
		}
	}
	return nil
}

// has reports whether a member named name exists (whatever its value).
func (o jsonObject) has(name string) bool { return o.get(name) != nil }

// plain reports whether the quoted string q needs no decoding: no
// escapes, only printable ASCII.
func plain(q []byte) bool {
	for _, c := range q[1 : len(q)-1] {
		if c == '\\' || c < 0x20 || c >= 0x80 {
			return false
		}
	}
	return true
}

// keyIs compares a quoted member name with name as encoding/json would
// after decoding it.
func keyIs(q []byte, name string) bool {
	if plain(q) {
		return string(q[1:len(q)-1]) == name
	}
	var s string
	return json.Unmarshal(q, &s) == nil && s == name
}

// stringOf returns the value of a JSON string, or ok=false when v is not
// a string. The result may be a view of v: copy it to keep it.
func stringOf(v []byte) (string, bool) {
	if len(v) == 0 || v[0] != '"' {
		return "", false
	}
	if plain(v) {
		return sdk.B2S(v[1 : len(v)-1]), true
	}
	return unquote(v)
}

// unquote decodes a JSON string with escapes. It is apart from stringOf
// so that the string it decodes into is on the heap only when there are
// escapes: a result passed to json.Unmarshal escapes on every call.
//
//go:noinline
func unquote(v []byte) (string, bool) {
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// isNumber reports whether v is a JSON number.
func isNumber(v []byte) bool { return len(v) > 0 && (v[0] == '-' || charset.IsDigit(v[0])) }

// floatOf reads a JSON number as json.Number.Float64 does (a value out of
// range is ±Inf or 0, the error ignored as golang-jwt ignores it).
func floatOf(v []byte) float64 {
	if n, ok := smallUint(v); ok {
		return float64(n)
	}
	f, _ := strconv.ParseFloat(sdk.B2S(v), 64)
	return f
}

// smallUint reads v when it is 1 to 15 decimal digits: a NumericDate
// nearly always is (ten), and below 2^53 its float64 is exact, as
// ParseFloat's correctly rounded result is, at a tenth of the cost.
func smallUint(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 15 {
		return 0, false
	}
	n := int64(0)
	for _, c := range v {
		if !charset.IsDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// eachString calls fn for each element of the JSON array v; it returns
// false when v is not an array. fn's argument is nil for an element that
// is not a string.
func eachString(v []byte, fn func(s []byte)) bool {
	if len(v) == 0 || v[0] != '[' {
		return false
	}
	i := skipSpace(v, 1)
	for i < len(v) && v[i] != ']' {
		next, _ := skipValue(v, i, 1)
		if v[i] == '"' {
			fn(v[i:next])
		} else {
			fn(nil)
		}
		i = skipSpace(v, next)
		if i < len(v) && v[i] == ',' {
			i = skipSpace(v, i+1)
		}
	}
	return true
}
