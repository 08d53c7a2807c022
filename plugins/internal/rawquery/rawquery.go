// Package rawquery reads and edits a raw query string ("a=1&b=%20") as
// bytes, for the plugins that change a request's query (key_auth's
// hide_credentials, the transformers' query operations).
//
// They work on the raw bytes rather than on fasthttp's parsed Args so that
// every parameter they do not touch reaches the upstream exactly as the
// client encoded it: re-encoding would turn "%20" into "+", which RFC 3986
// decoders read as a plus sign. Names are compared after the same decoding
// fasthttp applies when a name is looked up (Args.Peek), so a client cannot
// hide "token" from removal by writing "t%6Fken".
//
// Nothing here allocates; results are views into the input or appended to
// a buffer the caller owns.
package rawquery

// Next cuts the next "&"-separated segment off *rest: seg is
// "name=value", "name" or empty ("a=1&&b=2"), and more reports whether
// another segment follows (the last one is cut when more is false).
func Next(rest *[]byte) (seg []byte, more bool) {
	q := *rest
	for i, c := range q {
		if c == '&' {
			*rest = q[i+1:]
			return q[:i], true
		}
	}
	*rest = nil
	return q, false
}

// Key is the raw (still encoded) name of the segment "name=value" or
// "name".
func Key(seg []byte) []byte {
	for i, c := range seg {
		if c == '=' {
			return seg[:i]
		}
	}
	return seg
}

// MatchesAny reports whether the raw name key, decoded, is one of names.
// An empty key (from "" or "=v") matches nothing.
func MatchesAny(key []byte, names []string) bool {
	if len(key) == 0 {
		return false
	}
	for _, n := range names {
		if DecodedEquals(key, n) {
			return true
		}
	}
	return false
}

// Strip appends to dst the raw query string q without the parameters whose
// decoded name is one of names (none of them empty), and reports whether
// any was removed. The parameters it keeps, empty segments included, are
// copied byte for byte and in order; when nothing was removed dst holds q.
func Strip(dst, q []byte, names []string) ([]byte, bool) {
	removed, kept := false, 0
	for {
		seg, more := Next(&q)
		if MatchesAny(Key(seg), names) {
			removed = true
		} else {
			if kept > 0 {
				dst = append(dst, '&')
			}
			dst = append(dst, seg...)
			kept++
		}
		if !more {
			return dst, removed
		}
	}
}

// DecodedEquals reports whether raw, decoded as fasthttp decodes query
// arguments ("+" is a space, "%XX" a byte, an invalid escape stays literal,
// and an escape cut short by the end keeps the rest verbatim), equals name.
// It decodes as it compares, without allocating.
func DecodedEquals(raw []byte, name string) bool {
	j := 0
	for i := 0; i < len(raw); i++ {
		ch := raw[i]
		switch ch {
		case '%':
			if i+3 > len(raw) {
				// fasthttp copies the remainder unchanged.
				rest := raw[i:]
				return len(name)-j == len(rest) && string(rest) == name[j:]
			}
			hi, lo := Unhex(raw[i+1]), Unhex(raw[i+2])
			if hi < 16 && lo < 16 {
				ch = hi<<4 | lo
				i += 2
			}
		case '+':
			ch = ' '
		}
		if j >= len(name) || name[j] != ch {
			return false
		}
		j++
	}
	return j == len(name)
}

// Unhex is the value of the hexadecimal digit c (either case), or 16 when
// c is not one.
func Unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return 16
}
