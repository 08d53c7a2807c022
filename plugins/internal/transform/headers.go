package transform

import (
	"fmt"

	"github.com/weirgw/weir/sdk"
)

// header is what both fasthttp.RequestHeader and fasthttp.ResponseHeader
// offer; the operations are written once against it. Passing the
// *fasthttp.XxxHeader pointer as a header does not allocate.
type header interface {
	Peek(key string) []byte
	PeekCanonical(key []byte) []byte
	PeekAll(key string) [][]byte
	Del(key string)
	SetCanonical(key, value []byte)
	AddBytesV(key string, value []byte)
}

// headerOp is one compiled header operation.
type headerOp struct {
	name  string   // canonical name ("X-Env")
	key   []byte   // name as bytes, for SetCanonical (no per-request normalization)
	value Template // set, add
	lit   []byte   // value as bytes when it is literal
	to    string   // rename: canonical target name
}

// headerProgram applies, in this order: remove, rename, set, add. The
// order is fixed (and the config refuses combinations it would make
// pointless) so that the result never depends on map order in the config.
type headerProgram struct {
	remove []string
	rename []headerOp
	set    []headerOp
	add    []headerOp
}

func (hp *headerProgram) empty() bool {
	return len(hp.remove)+len(hp.rename)+len(hp.set)+len(hp.add) == 0
}

// needsScratch reports whether applying hp uses the per-request scratch
// (templates are rendered, renamed values copied).
func (hp *headerProgram) needsScratch() bool {
	if len(hp.rename) > 0 {
		return true
	}
	for i := range hp.set {
		if !hp.set[i].value.IsLiteral() {
			return true
		}
	}
	for i := range hp.add {
		if !hp.add[i].value.IsLiteral() {
			return true
		}
	}
	return false
}

// apply runs hp on h. s may be nil when !needsScratch. It fails only when
// a template names a parameter the request does not have.
func (hp *headerProgram) apply(h header, c *sdk.Ctx, s *scratch) error {
	for _, name := range hp.remove {
		h.Del(name)
	}
	for i := range hp.rename {
		op := &hp.rename[i]
		vals := h.PeekAll(op.name)
		if len(vals) == 0 {
			continue
		}
		// Copy the values out before editing: PeekAll's result is a view
		// into the header's own buffers, which Del and Add may reuse.
		s.vals, s.offs = s.vals[:0], s.offs[:0]
		for _, v := range vals {
			s.vals = append(s.vals, v...)
			s.offs = append(s.offs, len(s.vals))
		}
		// fasthttp's Del moves the last field into the hole, so delete
		// before adding to keep the values in their order (RFC 9110 §5.3).
		h.Del(op.name)
		h.Del(op.to)
		start := 0
		for _, end := range s.offs {
			h.AddBytesV(op.to, s.vals[start:end])
			start = end
		}
	}
	for i := range hp.set {
		op := &hp.set[i]
		// Set alone replaces only the first of repeated fields; "set"
		// promises exactly one.
		h.Del(op.name)
		if err := setValue(h, op, c, s); err != nil {
			return err
		}
	}
	for i := range hp.add {
		op := &hp.add[i]
		// op.key is the name as fasthttp stores it: no normalizing
		// per request.
		if len(h.PeekCanonical(op.key)) > 0 {
			continue
		}
		if err := setValue(h, op, c, s); err != nil {
			return err
		}
	}
	return nil
}

func setValue(h header, op *headerOp, c *sdk.Ctx, s *scratch) error {
	if op.value.IsLiteral() {
		h.SetCanonical(op.key, op.lit)
		return nil
	}
	var missing string
	s.buf, missing = op.value.appendTo(s.buf[:0], c, nil)
	if missing != "" {
		return missingParam(op.name, missing)
	}
	if !validFieldValue(s.buf) {
		// The proxy refuses control bytes in paths, so a parameter cannot
		// carry CR/LF; this guards callers that bypass it.
		return fmt.Errorf("header %s: the value rendered from route parameters contains a control character", op.name)
	}
	h.SetCanonical(op.key, s.buf)
	return nil
}

func missingParam(where, name string) error {
	return fmt.Errorf("%s: the request has no route parameter {%s} (does every path of the route declare it?)", where, name)
}

// notRenamable: fasthttp keeps cookies parsed rather than as header lines,
// so their lines cannot be moved one by one.
var notRenamable = map[string]bool{"Cookie": true, "Set-Cookie": true}

// forbiddenReason says why a transformer may not touch the field canon,
// or "" when it may: the gateway owns it (sdk's one list).
func forbiddenReason(canon string, side Side) string {
	why, _ := sdk.HeaderOwned(canon, side == Response)
	return why
}

// canonicalHeader returns name in the canonical form fasthttp uses
// ("x-env" → "X-Env"), so that names compare and print consistently.
func canonicalHeader(name string) string {
	b := []byte(name)
	upper := true
	for i, c := range b {
		switch {
		case upper && 'a' <= c && c <= 'z':
			b[i] = c - 'a' + 'A'
		case !upper && 'A' <= c && c <= 'Z':
			b[i] = c - 'A' + 'a'
		}
		upper = c == '-'
	}
	return string(b)
}

// validFieldValue: visible characters, spaces, tabs and obs-text (RFC 9110
// §5.5); no CR, LF, NUL or other control characters, which would let a
// value start a new header line.
func validFieldValue[T string | []byte](v T) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

const headerNameHelp = "use letters, digits and !#$%&'*+-.^_`|~ (RFC 9110 §5.6.2)"
