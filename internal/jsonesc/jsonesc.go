// Package jsonesc writes JSON string literals without encoding/json's
// reflection or allocation: the config's canonical form and the access
// log both need one, and they must escape alike.
package jsonesc

import "unicode/utf8"

const hex = "0123456789abcdef"

// Append appends v as a JSON string (RFC 8259 §7): quotes, backslashes
// and control characters (DEL included) escaped, invalid UTF-8 replaced
// by U+FFFD, so any bytes give one valid JSON value on one line. Unlike
// encoding/json it leaves <, > and & alone.
func Append[T string | []byte](dst []byte, v T) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20 || c == 0x7f:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := decodeRune(v[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, v[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

func decodeRune[T string | []byte](v T) (rune, int) {
	switch x := any(v).(type) {
	case string:
		return utf8.DecodeRuneInString(x)
	case []byte:
		return utf8.DecodeRune(x)
	}
	return utf8.RuneError, 1
}
