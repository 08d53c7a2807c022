package keyauth

// stripQuery appends to dst the raw query string q without the parameters
// whose name is one of names, and reports whether any was removed.
//
// It works on the raw bytes rather than on fasthttp's parsed Args so that
// the parameters it keeps reach the upstream exactly as the client encoded
// them (re-encoding would turn "%20" into "+", which means a plus sign to
// RFC 3986 decoders). Names are compared after the same decoding fasthttp
// applies when the key is looked up (Args.Peek), so a client cannot hide a
// key from stripping by percent-encoding its name.
func stripQuery(dst, q []byte, names []string) ([]byte, bool) {
	removed, kept := false, 0
	for {
		seg, more := q, false
		if i := indexByte(q, '&'); i >= 0 {
			seg, q, more = q[:i], q[i+1:], true
		}
		if matchesAny(seg, names) {
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

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// matchesAny reports whether the parameter seg ("name=value" or "name") has
// one of names as its decoded name.
func matchesAny(seg []byte, names []string) bool {
	if len(seg) == 0 {
		return false
	}
	key := seg
	if i := indexByte(seg, '='); i >= 0 {
		key = seg[:i]
	}
	for _, n := range names {
		if decodedEquals(key, n) {
			return true
		}
	}
	return false
}

// decodedEquals reports whether raw, decoded as fasthttp decodes query
// arguments ("+" is a space, "%XX" a byte, an invalid escape stays literal,
// and an escape cut short by the end keeps the rest verbatim), equals name.
// It decodes as it compares, without allocating.
func decodedEquals(raw []byte, name string) bool {
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
			hi, lo := unhex(raw[i+1]), unhex(raw[i+2])
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

func unhex(c byte) byte {
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
