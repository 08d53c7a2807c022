package transform

import (
	"github.com/weirgw/weir/plugins/internal/rawquery"
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

// queryProgram edits the raw query string with package rawquery: every
// parameter it does not touch reaches the upstream exactly as the client
// encoded it, and names are compared decoded, as fasthttp's Args.Peek
// decodes them, so a client cannot hide "token" from remove by writing
// "t%6Fken".
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
			seg, more := rawquery.Next(&rest)
			key := rawquery.Key(seg)
			for i := range qp.rename {
				if rawquery.DecodedEquals(key, qp.rename[i].name) {
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
		seg, more := rawquery.Next(&rest)
		key := rawquery.Key(seg)
		ri := -1
		if len(qp.rename) > 0 {
			ri = qp.renameOf(key)
		}
		switch {
		case len(seg) == 0:
			// An empty segment ("a=1&&b=2") is kept as it was.
			dst = emit(dst)
		case rawquery.MatchesAny(key, qp.remove):
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
		if rawquery.DecodedEquals(key, qp.rename[i].name) {
			return i
		}
	}
	return -1
}

func (qp *queryProgram) isRenameTarget(key []byte, renamed uint64) bool {
	for i := range qp.rename {
		if renamed&(1<<i) != 0 && rawquery.DecodedEquals(key, qp.rename[i].to) {
			return true
		}
	}
	return false
}

func indexOp(ops []queryOp, key []byte) int {
	for i := range ops {
		if rawquery.DecodedEquals(key, ops[i].name) {
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
