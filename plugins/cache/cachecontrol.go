package cache

import "github.com/weirgw/weir/internal/httpsyntax"

// Cache-Control parsing (RFC 9111 §5.2). Both parsers read header bytes sent
// by clients or upstreams, allocate nothing and never fail: a directive they
// do not understand is ignored, and a directive whose argument cannot be
// read is recorded as invalid so the freshness rules can treat the response
// as stale (RFC 9111 §4.2.1: "a cache SHOULD consider responses with invalid
// freshness information to be stale").

// deltaMax is what an overflowing delta-seconds becomes (RFC 9111 §1.2.2:
// "the cache MUST consider the value to be 2147483648 (2^31)").
const deltaMax = 1 << 31

// Response directive flags.
const (
	rNoStore       uint32 = 1 << iota
	rNoCache              // unqualified no-cache: store, but revalidate every use
	rNoCacheFields        // no-cache="a, b": the listed fields are not reused
	rPrivate              // unqualified private: a shared cache must not store
	rPrivateFields        // private="a": a shared cache strips the fields
	rPublic
	rMustRevalidate
	rProxyRevalidate
	rMustUnderstand
	rImmutable
	rMaxAge
	rSMaxAge
	rMaxAgeInvalid
	rSMaxAgeInvalid
	rSWR
	rSIE
)

// respDirectives are the response Cache-Control directives a shared cache
// acts on. The field lists are views into the header value they were
// parsed from and must not outlive it.
type respDirectives struct {
	flags         uint32
	maxAge        int64 // seconds
	sMaxAge       int64
	swr           int64 // stale-while-revalidate, RFC 5861 §3
	sie           int64 // stale-if-error, RFC 5861 §4
	noCacheFields []byte
	privateFields []byte
}

func (d *respDirectives) has(f uint32) bool { return d.flags&f != 0 }

// Request directive flags.
const (
	qNoCache uint32 = 1 << iota
	qNoStore
	qOnlyIfCached
	qMaxAge
	qMaxStale
	qMaxStaleAny // max-stale without a value: any staleness is accepted
	qMinFresh
	qSIE
)

// reqDirectives are the request Cache-Control directives (RFC 9111 §5.2.1).
type reqDirectives struct {
	flags    uint32
	maxAge   int64
	maxStale int64
	minFresh int64
	sie      int64
}

func (d *reqDirectives) has(f uint32) bool { return d.flags&f != 0 }

// nextDirective reads the directive starting at or after s[i]. It returns
// the name, the argument (unquoted, escapes left in place), whether an
// argument was given, whether the argument is well formed, and where the
// next directive starts. Commas inside quoted strings do not split
// directives, so `ext="max-age=1, x"` stays one directive.
func nextDirective(s []byte, i int) (name, arg []byte, hasArg, argOK bool, next int) {
	n := len(s)
	for i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == ',') {
		i++
	}
	if i >= n {
		return nil, nil, false, false, n
	}
	start := i
	for i < n && httpsyntax.IsTchar(s[i]) {
		i++
	}
	name = s[start:i]
	argOK = true
	if i < n && s[i] == '=' {
		hasArg = true
		i++
		if i < n && s[i] == '"' {
			i++
			as := i
			closed := false
			for i < n {
				if s[i] == '\\' && i+1 < n {
					i += 2
					continue
				}
				if s[i] == '"' {
					closed = true
					break
				}
				i++
			}
			arg = s[as:min(i, n)]
			argOK = closed
			if closed {
				i++
			}
		} else {
			as := i
			for i < n && httpsyntax.IsTchar(s[i]) {
				i++
			}
			arg = s[as:i]
			argOK = len(arg) > 0
		}
	}
	// Anything else before the next comma (spaces around '=', a stray
	// quote) makes the directive malformed; skip to the comma, honouring
	// quoted strings.
	for i < n && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	if i < n && s[i] != ',' {
		argOK = false
		inQuote := false
		for i < n {
			c := s[i]
			if inQuote {
				if c == '\\' {
					i++
				} else if c == '"' {
					inQuote = false
				}
			} else if c == '"' {
				inQuote = true
			} else if c == ',' {
				break
			}
			i++
		}
	}
	if len(name) == 0 {
		// Not a directive (e.g. a lone "=" or quote); report nothing
		// usable but keep scanning from next.
		return nil, nil, false, false, max(i, start+1)
	}
	return name, arg, hasArg, argOK, i
}

// parseDelta parses delta-seconds (RFC 9111 §1.2.2): digits only, leading
// zeros allowed, overflow clamps to 2^31.
func parseDelta(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if v < deltaMax {
			v = v*10 + int64(c-'0')
		}
	}
	if v > deltaMax {
		v = deltaMax
	}
	return v, true
}

// parseResponseCC adds the directives of one Cache-Control field line to d.
// Call it for every line, in order: the first occurrence of a directive
// wins (RFC 9111 §4.2.1).
func parseResponseCC(d *respDirectives, v []byte) {
	for i := 0; i < len(v); {
		name, arg, hasArg, argOK, next := nextDirective(v, i)
		i = next
		switch {
		case len(name) == 0:
		case httpsyntax.EqualFoldLower(name, "max-age"):
			if d.flags&(rMaxAge|rMaxAgeInvalid) == 0 {
				if n, ok := parseDelta(arg); ok && hasArg && argOK {
					d.maxAge = n
					d.flags |= rMaxAge
				} else {
					d.flags |= rMaxAgeInvalid
				}
			}
		case httpsyntax.EqualFoldLower(name, "s-maxage"):
			if d.flags&(rSMaxAge|rSMaxAgeInvalid) == 0 {
				if n, ok := parseDelta(arg); ok && hasArg && argOK {
					d.sMaxAge = n
					d.flags |= rSMaxAge
				} else {
					d.flags |= rSMaxAgeInvalid
				}
			}
		case httpsyntax.EqualFoldLower(name, "no-store"):
			d.flags |= rNoStore
		case httpsyntax.EqualFoldLower(name, "no-cache"):
			if hasArg && argOK && len(arg) > 0 {
				d.flags |= rNoCacheFields
				if d.noCacheFields == nil {
					d.noCacheFields = arg
				}
			} else {
				d.flags |= rNoCache
			}
		case httpsyntax.EqualFoldLower(name, "private"):
			if hasArg && argOK && len(arg) > 0 {
				d.flags |= rPrivateFields
				if d.privateFields == nil {
					d.privateFields = arg
				}
			} else {
				d.flags |= rPrivate
			}
		case httpsyntax.EqualFoldLower(name, "public"):
			d.flags |= rPublic
		case httpsyntax.EqualFoldLower(name, "must-revalidate"):
			d.flags |= rMustRevalidate
		case httpsyntax.EqualFoldLower(name, "proxy-revalidate"):
			d.flags |= rProxyRevalidate
		case httpsyntax.EqualFoldLower(name, "must-understand"):
			d.flags |= rMustUnderstand
		case httpsyntax.EqualFoldLower(name, "immutable"):
			d.flags |= rImmutable
		case httpsyntax.EqualFoldLower(name, "stale-while-revalidate"):
			if d.flags&rSWR == 0 {
				if n, ok := parseDelta(arg); ok && argOK {
					d.swr = n
					d.flags |= rSWR
				}
			}
		case httpsyntax.EqualFoldLower(name, "stale-if-error"):
			if d.flags&rSIE == 0 {
				if n, ok := parseDelta(arg); ok && argOK {
					d.sie = n
					d.flags |= rSIE
				}
			}
		}
	}
}

// parseRequestCC adds the directives of one request Cache-Control line.
func parseRequestCC(d *reqDirectives, v []byte) {
	for i := 0; i < len(v); {
		name, arg, hasArg, argOK, next := nextDirective(v, i)
		i = next
		switch {
		case len(name) == 0:
		case httpsyntax.EqualFoldLower(name, "no-cache"):
			d.flags |= qNoCache
		case httpsyntax.EqualFoldLower(name, "no-store"):
			d.flags |= qNoStore
		case httpsyntax.EqualFoldLower(name, "only-if-cached"):
			d.flags |= qOnlyIfCached
		case httpsyntax.EqualFoldLower(name, "max-age"):
			if d.flags&qMaxAge == 0 {
				// An invalid max-age in a request is read as 0: the
				// client wants something at least that fresh, and
				// asking the origin is the safe answer.
				n, ok := parseDelta(arg)
				if !ok || !argOK {
					n = 0
				}
				d.maxAge = n
				d.flags |= qMaxAge
			}
		case httpsyntax.EqualFoldLower(name, "max-stale"):
			if d.flags&qMaxStale == 0 {
				d.flags |= qMaxStale
				if !hasArg {
					d.flags |= qMaxStaleAny
				} else if n, ok := parseDelta(arg); ok && argOK {
					d.maxStale = n
				}
			}
		case httpsyntax.EqualFoldLower(name, "min-fresh"):
			if d.flags&qMinFresh == 0 {
				if n, ok := parseDelta(arg); ok && argOK {
					d.minFresh = n
					d.flags |= qMinFresh
				}
			}
		case httpsyntax.EqualFoldLower(name, "stale-if-error"):
			if d.flags&qSIE == 0 {
				if n, ok := parseDelta(arg); ok && argOK {
					d.sie = n
					d.flags |= qSIE
				}
			}
		}
	}
}

// forEachListItem calls fn for each comma-separated element of v with
// optional whitespace trimmed; empty elements are skipped (RFC 9110 §5.6.1).
func forEachListItem(v []byte, fn func(item []byte)) {
	for len(v) > 0 {
		i := 0
		for i < len(v) && v[i] != ',' {
			i++
		}
		item := trimOWS(v[:i])
		if len(item) > 0 {
			fn(item)
		}
		if i >= len(v) {
			return
		}
		v = v[i+1:]
	}
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// listContainsFold reports whether the comma-separated list v contains
// name, ignoring ASCII case (used for Connection and no-cache="..." lists).
func listContainsFold(v []byte, name []byte) bool {
	for len(v) > 0 {
		i := 0
		for i < len(v) && v[i] != ',' {
			i++
		}
		if httpsyntax.EqualFold(trimOWS(v[:i]), name) {
			return true
		}
		if i >= len(v) {
			return false
		}
		v = v[i+1:]
	}
	return false
}
