package cache

import (
	"bytes"

	"github.com/weirgw/weir/internal/httpsyntax"

	"github.com/valyala/fasthttp"
)

// Vary handling (RFC 9111 §4.1). A response that varies is stored under a
// secondary key built from the request header fields it names; the primary
// key then holds a small marker listing those names. The secondary key is
// normalised so that requests a server cannot tell apart share a variant:
// list elements are split on commas and trimmed, separate lines are joined,
// and for Accept-Encoding / Accept-Language (case-insensitive tokens whose
// order carries no meaning without q-values) elements are lowercased and
// sorted.

const maxVaryNames = 32

// varyList is a parsed, sorted, de-duplicated list of lowercase field names.
// It is built in a caller-provided buffer so parsing does not allocate.
type varyList struct {
	star  bool
	names [maxVaryNames][]byte // views into buf
	n     int
}

// addNames adds every name of one Vary field value (or a configured
// vary_by name).
func (l *varyList) addNames(v []byte) {
	forEachListItem(v, func(item []byte) {
		if len(item) == 1 && item[0] == '*' {
			l.star = true
			return
		}
		l.add(item)
	})
}

func (l *varyList) add(name []byte) {
	for i := 0; i < l.n; i++ {
		if httpsyntax.EqualFold(l.names[i], name) {
			return
		}
	}
	if l.n == maxVaryNames {
		// More names than any real response sends: refuse to cache
		// rather than ignore some of them.
		l.star = true
		return
	}
	// Insertion sort, case-insensitive, so "Foo, Bar" and "bar, foo"
	// give the same list.
	i := l.n
	for i > 0 && compareFold(l.names[i-1], name) > 0 {
		l.names[i] = l.names[i-1]
		i--
	}
	l.names[i] = name
	l.n++
}

// appendTo writes the list as lowercase names joined by ','.
func (l *varyList) appendTo(dst []byte) []byte {
	for i := 0; i < l.n; i++ {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendLower(dst, l.names[i])
	}
	return dst
}

// parseResponseVary collects the Vary lines of h and the configured extra
// names into l.
func parseResponseVary(l *varyList, h *fasthttp.ResponseHeader, extra [][]byte) {
	for k, v := range h.All() {
		if httpsyntax.EqualFoldLower(k, "vary") {
			l.addNames(v)
		}
	}
	for _, e := range extra {
		l.add(e)
	}
}

// appendSecondaryKey appends the normalised values of the request fields
// named in names (the comma-joined lowercase list stored in a marker).
// An absent field is written differently from an empty one (RFC 9111
// §4.1: a field absent in one request and present in the other does not
// match).
func appendSecondaryKey(dst []byte, names []byte, c requestHeaders) []byte {
	for len(names) > 0 {
		i := bytes.IndexByte(names, ',')
		var name []byte
		if i < 0 {
			name, names = names, nil
		} else {
			name, names = names[:i], names[i+1:]
		}
		dst = append(dst, name...)
		dst = appendNormalizedField(dst, name, c)
		dst = append(dst, '\n')
	}
	return dst
}

// requestHeaders is what the secondary key reads from a request: the
// request's own header plus the consumer identity, so that a response
// varying on X-Consumer-Name keys on the authenticated consumer even
// though the proxy only adds that header when forwarding.
type requestHeaders struct {
	h            *fasthttp.RequestHeader
	consumer     string
	consumerGrps string
	hasConsumer  bool
}

func appendNormalizedField(dst []byte, name []byte, r requestHeaders) []byte {
	if r.hasConsumer {
		if httpsyntax.EqualFoldLower(name, "x-consumer-name") {
			dst = append(dst, '=')
			return append(dst, r.consumer...)
		}
		if httpsyntax.EqualFoldLower(name, "x-consumer-groups") {
			dst = append(dst, '=')
			return append(dst, r.consumerGrps...)
		}
	}
	sortItems := httpsyntax.EqualFoldLower(name, "accept-encoding") || httpsyntax.EqualFoldLower(name, "accept-language")
	var items [16][]byte
	ni := 0
	found := false
	overflow := false
	for k, v := range r.h.All() {
		if !httpsyntax.EqualFold(k, name) {
			continue
		}
		found = true
		forEachListItem(v, func(item []byte) {
			if ni == len(items) {
				overflow = true
				return
			}
			items[ni] = item
			ni++
		})
	}
	if !found {
		return append(dst, 0x01)
	}
	dst = append(dst, '=')
	if overflow {
		// Too many elements to normalise in place: key on the raw
		// values, which is exact, merely less shareable.
		for k, v := range r.h.All() {
			if httpsyntax.EqualFold(k, name) {
				dst = append(dst, v...)
				dst = append(dst, 0x02)
			}
		}
		return dst
	}
	if sortItems {
		for i := 1; i < ni; i++ {
			for j := i; j > 0 && compareFold(items[j-1], items[j]) > 0; j-- {
				items[j-1], items[j] = items[j], items[j-1]
			}
		}
	}
	for i := 0; i < ni; i++ {
		if i > 0 {
			dst = append(dst, ',')
		}
		if sortItems {
			dst = appendLower(dst, items[i])
		} else {
			dst = append(dst, items[i]...)
		}
	}
	return dst
}

func appendLower(dst, b []byte) []byte {
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

func compareFold(a, b []byte) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return len(a) - len(b)
}
