package transform

import (
	"github.com/weirgw/weir/sdk"
)

// queryOp is one compiled query operation. Names are kept decoded (to
// compare with what clients send) and encoded (to write).
type queryOp struct {
	name    string
	encName string
	value   Template // set, add: literal parts already encoded
	to      string   // rename target, decoded
	encTo   string
	// addAfterRename, for an add: index+1 of the rename whose target is
	// this name (0: none), so that a renamed parameter counts as present.
	addAfterRename int
}

// queryProgram edits the raw query string. It works on bytes rather than
// fasthttp's parsed Args so that every parameter it does not touch reaches
// the upstream exactly as the client encoded it: re-encoding would turn
// "%20" into "+", which RFC 3986 decoders read as a plus sign. Names are
// compared after decoding, as fasthttp's Args.Peek decodes them, so a
// client cannot hide "token" from remove by writing "t%6Fken".
//
// Order: remove, rename, set, add (as for headers).
type queryProgram struct {
	remove []string
	rename []queryOp
	set    []queryOp
	add    []queryOp
}

func (qp *queryProgram) empty() bool {
	return len(qp.remove)+len(qp.rename)+len(qp.set)+len(qp.add) == 0
}

// maxOps bounds each operation list: the query pass tracks them in
// 64-bit masks, and the JSON pass tracks the keys of one object likewise.
const maxOps = 64

// apply appends the edited query string q to dst. changed is false when
// the result would equal q (dst is then meaningless). missing names a
// template parameter the request lacks.
func (qp *queryProgram) apply(dst, q []byte, c *sdk.Ctx) (out []byte, changed bool, missing string) {
	var renamed uint64 // renames whose source is present
	if len(qp.rename) > 0 && len(q) > 0 {
		for rest := q; ; {
			seg, more := nextSeg(&rest)
			key := segKey(seg)
			for i := range qp.rename {
				if decodedEquals(key, qp.rename[i].name) {
					renamed |= 1 << i
				}
			}
			if !more {
				break
			}
		}
	}
	var setDone, addSeen uint64
	n := 0 // segments written
	emit := func(dst []byte) []byte {
		if n > 0 {
			dst = append(dst, '&')
		}
		n++
		return dst
	}
	for rest := q; len(q) > 0; {
		seg, more := nextSeg(&rest)
		key := segKey(seg)
		ri := -1
		if len(qp.rename) > 0 {
			ri = qp.renameOf(key)
		}
		switch {
		case len(seg) == 0:
			// An empty segment ("a=1&&b=2") is kept as it was.
			dst = emit(dst)
		case matchesAny(key, qp.remove):
			changed = true
		case ri >= 0:
			op := &qp.rename[ri]
			dst = emit(dst)
			dst = append(append(dst, op.encTo...), seg[len(key):]...)
			changed = true
		case renamed != 0 && qp.isRenameTarget(key, renamed):
			// Overwritten by the renamed parameter.
			changed = true
		default:
			if i := indexOp(qp.set, key); i >= 0 {
				changed = true
				if setDone&(1<<i) != 0 {
					break // "set" leaves exactly one
				}
				setDone |= 1 << i
				dst = emit(dst)
				if dst, missing = appendQueryPair(dst, &qp.set[i], c); missing != "" {
					return dst, false, missing
				}
				break
			}
			if i := indexOp(qp.add, key); i >= 0 {
				addSeen |= 1 << i
			}
			dst = emit(dst)
			dst = append(dst, seg...)
		}
		if !more {
			break
		}
	}
	for i := range qp.set {
		if setDone&(1<<i) == 0 {
			dst = emit(dst)
			if dst, missing = appendQueryPair(dst, &qp.set[i], c); missing != "" {
				return dst, false, missing
			}
			changed = true
		}
	}
	for i := range qp.add {
		op := &qp.add[i]
		if addSeen&(1<<i) != 0 || op.addAfterRename > 0 && renamed&(1<<(op.addAfterRename-1)) != 0 {
			continue
		}
		dst = emit(dst)
		if dst, missing = appendQueryPair(dst, op, c); missing != "" {
			return dst, false, missing
		}
		changed = true
	}
	return dst, changed, ""
}

func (qp *queryProgram) renameOf(key []byte) int {
	for i := range qp.rename {
		if decodedEquals(key, qp.rename[i].name) {
			return i
		}
	}
	return -1
}

func (qp *queryProgram) isRenameTarget(key []byte, renamed uint64) bool {
	for i := range qp.rename {
		if renamed&(1<<i) != 0 && decodedEquals(key, qp.rename[i].to) {
			return true
		}
	}
	return false
}

func indexOp(ops []queryOp, key []byte) int {
	for i := range ops {
		if decodedEquals(key, ops[i].name) {
			return i
		}
	}
	return -1
}

func appendQueryPair(dst []byte, op *queryOp, c *sdk.Ctx) ([]byte, string) {
	dst = append(dst, op.encName...)
	dst = append(dst, '=')
	if op.value.IsLiteral() {
		return append(dst, op.value.lit...), ""
	}
	return op.value.appendTo(dst, c, appendQueryEscaped)
}

// nextSeg cuts the next "&"-separated segment off *rest.
func nextSeg(rest *[]byte) (seg []byte, more bool) {
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

// segKey is the raw name of "name=value" or "name".
func segKey(seg []byte) []byte {
	for i, c := range seg {
		if c == '=' {
			return seg[:i]
		}
	}
	return seg
}

func matchesAny(key []byte, names []string) bool {
	if len(key) == 0 {
		return false
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

// appendQueryEscaped percent-encodes everything but RFC 3986 unreserved
// characters (§2.3), so the result means the same to form decoders and
// RFC 3986 decoders alike (a space is "%20", never "+").
func appendQueryEscaped(dst, s []byte) []byte {
	const hex = "0123456789ABCDEF"
	for _, c := range s {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			dst = append(dst, c)
		} else {
			dst = append(dst, '%', hex[c>>4], hex[c&15])
		}
	}
	return dst
}

func queryEscape(s string) string { return string(appendQueryEscaped(nil, []byte(s))) }
