package transform

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// ParseJSONPath splits a dotted path ("meta.source") into object keys.
// A key containing a dot or a backslash escapes it: `a\.b` is the one key
// "a.b", `a\\b` the key `a\b`. Every segment names an object member;
// there is no array indexing ("items.0" is the member "0" of "items").
func ParseJSONPath(s string) ([]string, error) {
	if s == "" {
		return nil, errors.New("is empty; write a dotted path such as meta.source")
	}
	if !utf8.ValidString(s) {
		return nil, errors.New("is not valid UTF-8")
	}
	var segs []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 == len(s) || (s[i+1] != '.' && s[i+1] != '\\') {
				return nil, errors.New(`has a "\" that escapes neither "." nor "\"; write \. for a dot inside a key and \\ for a backslash`)
			}
			cur.WriteByte(s[i+1])
			i++
		case '.':
			if cur.Len() == 0 {
				return nil, errors.New(`has an empty segment; write a dotted path such as meta.source`)
			}
			segs = append(segs, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	if cur.Len() == 0 {
		return nil, errors.New(`has an empty segment; write a dotted path such as meta.source`)
	}
	return append(segs, cur.String()), nil
}

// FormatJSONPath is the inverse of ParseJSONPath.
func FormatJSONPath(segs []string) string {
	var b strings.Builder
	for i, s := range segs {
		if i > 0 {
			b.WriteByte('.')
		}
		for j := 0; j < len(s); j++ {
			if s[j] == '.' || s[j] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(s[j])
		}
	}
	return b.String()
}
