package ratelimit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/sdk"
)

type partKind uint8

const (
	partConsumer partKind = iota
	partIP
	partRoute
	partHeader
)

// maxHeaderKeyBytes bounds how much of a header value goes into a key
// verbatim. Longer values are replaced by a hash, so a client cannot make
// the gateway (or Redis) store keys of arbitrary size.
const maxHeaderKeyBytes = 64

// keyPart is one component of a bucket key.
type keyPart struct {
	kind   partKind
	header string // canonical header name for partHeader
}

// keySpec says what identifies a bucket: one or more parts, all of which
// must match for two requests to share it.
type keySpec struct {
	parts []keyPart
}

// parseKeySpec reads `key`: absent (consumer), a string such as
// "consumer+route", or a list such as [consumer, "header:X-Tenant"].
func parseKeySpec(raw json.RawMessage) (keySpec, error) {
	raw = bytes.TrimSpace(raw)
	var names []string
	switch {
	case len(raw) == 0 || string(raw) == "null":
		names = []string{"consumer"}
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return keySpec{}, fmt.Errorf("key: %v", err)
		}
		names = strings.Split(s, "+")
	case raw[0] == '[':
		if err := json.Unmarshal(raw, &names); err != nil {
			return keySpec{}, fmt.Errorf(`key must be a string such as "consumer+route" or a list of strings`)
		}
		if len(names) == 0 {
			return keySpec{}, fmt.Errorf("key must not be an empty list: use consumer, ip, route or header:NAME")
		}
	default:
		return keySpec{}, fmt.Errorf(`key must be a string such as "consumer+route" or a list of strings`)
	}
	var ks keySpec
	seen := map[string]bool{}
	for _, n := range names {
		n = strings.TrimSpace(n)
		var p keyPart
		switch {
		case n == "consumer":
			p.kind = partConsumer
		case n == "ip":
			p.kind = partIP
		case n == "route":
			p.kind = partRoute
		case strings.HasPrefix(n, "header:"):
			h := strings.TrimSpace(n[len("header:"):])
			if h == "" {
				return keySpec{}, fmt.Errorf("key: header: needs a header name, e.g. header:X-Api-Key")
			}
			if !validToken(h) {
				return keySpec{}, fmt.Errorf("key: %q is not a valid header name", h)
			}
			p.kind = partHeader
			p.header = string(fasthttp.AppendNormalizedHeaderKey(nil, h))
		default:
			return keySpec{}, fmt.Errorf("key: unknown part %q: use consumer, ip, route or header:NAME (combine with +)", n)
		}
		id := p.String()
		if seen[id] {
			return keySpec{}, fmt.Errorf("key: %s is listed twice", id)
		}
		seen[id] = true
		ks.parts = append(ks.parts, p)
	}
	return ks, nil
}

// validToken reports whether s is an RFC 9110 §5.6.2 token, which is what
// a header field name must be.
func validToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func (p keyPart) String() string {
	switch p.kind {
	case partConsumer:
		return "consumer"
	case partIP:
		return "ip"
	case partRoute:
		return "route"
	default:
		return "header:" + p.header
	}
}

func (ks keySpec) String() string {
	s := make([]string, len(ks.parts))
	for i, p := range ks.parts {
		s[i] = p.String()
	}
	return strings.Join(s, "+")
}

// appendKey appends the bucket key of c's request to dst. Each part is
// written as a tag letter, the value's length and the value, so that no two
// different requests can produce the same key whatever bytes their headers
// hold ("a|b"+"c" and "a"+"b|c" differ). It does not allocate when dst has
// room.
//
// A consumer part with no consumer identified falls back to the client IP
// (tag "i"), and so does a header part whose header is absent or empty:
// otherwise every anonymous client would share, and exhaust, one bucket.
func (ks *keySpec) appendKey(dst []byte, c *sdk.Ctx) []byte {
	for i := range ks.parts {
		if i > 0 {
			dst = append(dst, '|')
		}
		p := &ks.parts[i]
		switch p.kind {
		case partConsumer:
			if cons := c.Consumer(); cons != nil {
				dst = appendPart(dst, 'c', cons.Name)
			} else {
				dst = appendIP(dst, c)
			}
		case partIP:
			dst = appendIP(dst, c)
		case partRoute:
			dst = appendPart(dst, 'r', c.Route)
		case partHeader:
			v := c.Request().Header.Peek(p.header)
			if len(v) == 0 {
				dst = appendIP(dst, c)
			} else {
				dst = appendHeaderValue(dst, v)
			}
		}
	}
	return dst
}

func appendPart(dst []byte, tag byte, v string) []byte {
	dst = append(dst, tag)
	dst = strconv.AppendInt(dst, int64(len(v)), 10)
	dst = append(dst, ':')
	return append(dst, v...)
}

func appendIP(dst []byte, c *sdk.Ctx) []byte {
	dst = append(dst, 'i', ':')
	ip := c.ClientIP()
	if ip.IsValid() {
		dst = ip.AppendTo(dst)
	}
	return dst
}

// appendHeaderValue writes short values verbatim and long ones as the first
// 128 bits of their SHA-256: a stable hash (every node must build the same
// Redis key) that a client cannot steer into collisions.
func appendHeaderValue(dst []byte, v []byte) []byte {
	if len(v) <= maxHeaderKeyBytes {
		dst = append(dst, 'h')
		dst = strconv.AppendInt(dst, int64(len(v)), 10)
		dst = append(dst, ':')
		return append(dst, v...)
	}
	sum := sha256.Sum256(v)
	dst = append(dst, 'H', ':')
	return hex.AppendEncode(dst, sum[:16])
}

// keyBuf is a pooled buffer for building one key. Get it from keyBufPool,
// use it within one OnRequest call and put it back; the bytes must not be
// kept (stores copy what they keep).
type keyBuf struct{ b []byte }

var keyBufPool = sync.Pool{New: func() any { return &keyBuf{b: make([]byte, 0, 128)} }}
