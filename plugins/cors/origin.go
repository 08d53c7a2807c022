package cors

import (
	"fmt"
	"github.com/weirgw/weir/internal/charset"
	"strings"

	"github.com/weirgw/weir/internal/httpsyntax"
)

// originPattern is one compiled entry of `origins`. An origin is the
// serialization scheme "://" host [":" port] of RFC 6454 §6.2, which is what
// browsers send in the Origin header (lower case, default port omitted).
type originPattern struct {
	null   bool   // the literal "null" origin (sandboxed frames, file: URLs)
	scheme string // lower case; "" = http or https
	host   string // lower case; for a wildcard, the suffix with its leading "."
	wild   bool   // host is a suffix: "*.example.com"
	port   string // "" = none (the default port); "*" = any
}

const originSyntax = "write scheme://host[:port], https://*.example.com or *.example.com"

// parseOriginPattern compiles one `origins` entry (not "*", handled by the
// caller).
func parseOriginPattern(s string) (originPattern, error) {
	if s == "null" {
		return originPattern{null: true}, nil
	}
	var p originPattern
	rest := s
	if i := strings.Index(s, "://"); i >= 0 {
		p.scheme = strings.ToLower(s[:i])
		rest = s[i+3:]
		if !isScheme(p.scheme) {
			return p, fmt.Errorf("%q has an invalid scheme; %s", s, originSyntax)
		}
	}
	if strings.ContainsAny(rest, "/?#") {
		return p, fmt.Errorf("%q has a path; an origin is scheme://host[:port] with no trailing slash", s)
	}
	host, port, ok := splitHostPort(rest)
	if !ok {
		return p, fmt.Errorf("%q is not an origin; %s", s, originSyntax)
	}
	if port == "*" {
		p.port = "*"
	} else if port != "" {
		if !isPort(port) {
			return p, fmt.Errorf("%q has an invalid port; %s", s, originSyntax)
		}
		p.port = strings.TrimLeft(port, "0")
	}
	host = strings.ToLower(host)
	if suffix, ok := strings.CutPrefix(host, "*"); ok {
		if !strings.HasPrefix(suffix, ".") || len(suffix) < 2 {
			return p, fmt.Errorf("%q: a wildcard must be a whole leading label, as in *.example.com", s)
		}
		p.wild, host = true, suffix
	}
	if strings.Contains(host, "*") {
		return p, fmt.Errorf("%q: only a leading \"*.\" wildcard is supported", s)
	}
	if !isHost(host, p.wild) {
		return p, fmt.Errorf("%q is not an origin; %s", s, originSyntax)
	}
	if p.scheme == "" && !p.wild {
		return p, fmt.Errorf("%q has no scheme; write https://%s", s, rest)
	}
	p.host = host
	// Browsers omit the scheme's default port (RFC 6454 §6.2), so a pattern
	// naming it would never match: drop it.
	if p.port == defaultPort(p.scheme) {
		p.port = ""
	}
	return p, nil
}

// match reports whether an origin split by parseOrigin matches p.
// Comparisons ignore ASCII case. It does not allocate.
func (p *originPattern) match(scheme, host, port []byte, null bool) bool {
	if p.null || null {
		return p.null && null
	}
	if p.scheme == "" {
		if !httpsyntax.EqualFoldLower(scheme, "http") && !httpsyntax.EqualFoldLower(scheme, "https") {
			return false
		}
	} else if !httpsyntax.EqualFoldLower(scheme, p.scheme) {
		return false
	}
	if p.port != "*" && string(port) != p.port {
		return false
	}
	if p.wild {
		// At least one label before the suffix: *.example.com does not match
		// example.com itself.
		return len(host) > len(p.host) && httpsyntax.EqualFoldLower(host[len(host)-len(p.host):], p.host)
	}
	return httpsyntax.EqualFoldLower(host, p.host)
}

// parseOrigin splits an Origin header value. ok is false for anything that
// is not a well-formed serialized origin, so that junk never matches a
// pattern. The default port of http and https is treated as absent.
func parseOrigin(o []byte) (scheme, host, port []byte, null, ok bool) {
	if string(o) == "null" {
		return nil, nil, nil, true, true
	}
	i := indexSchemeSep(o)
	if i <= 0 {
		return nil, nil, nil, false, false
	}
	scheme, rest := o[:i], o[i+3:]
	if !isScheme(b2s(scheme)) {
		return nil, nil, nil, false, false
	}
	h, p, ok := splitHostPort(b2s(rest))
	if !ok || (p != "" && !isPort(p)) || !isHost(h, false) {
		return nil, nil, nil, false, false
	}
	host = rest[:len(h)]
	if p != "" {
		port = rest[len(rest)-len(p):]
		for len(port) > 1 && port[0] == '0' {
			port = port[1:]
		}
		if string(port) == defaultPort(lowerScheme(scheme)) {
			port = nil
		}
	}
	return scheme, host, port, false, true
}

func lowerScheme(s []byte) string {
	switch {
	case httpsyntax.EqualFoldLower(s, "https"):
		return "https"
	case httpsyntax.EqualFoldLower(s, "http"):
		return "http"
	}
	return ""
}

func defaultPort(scheme string) string {
	switch scheme {
	case "http":
		return "80"
	case "https":
		return "443"
	}
	return "\x00" // no default: never equal to a port
}

func indexSchemeSep(b []byte) int {
	for i := 0; i+3 <= len(b); i++ {
		if b[i] == ':' {
			if b[i+1] == '/' && b[i+2] == '/' {
				return i
			}
			return -1
		}
	}
	return -1
}

// splitHostPort splits "host", "host:port" or "[v6]:port". The port may be
// "*" (patterns only; isPort refuses it for requests).
func splitHostPort(s string) (host, port string, ok bool) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", "", false
		}
		host, s = s[:end+1], s[end+1:]
		if s == "" {
			return host, "", true
		}
		if s[0] != ':' || len(s) == 1 {
			return "", "", false
		}
		return host, s[1:], true
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return s, "", s != ""
	}
	if i == 0 || i == len(s)-1 {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}

// isScheme checks RFC 3986 §3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
func isScheme(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !charset.IsDigit(c) && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// isHost accepts a DNS name or IPv4 address (letters, digits, "-", ".", "_")
// or a bracketed IPv6 literal. A wildcard suffix starts with ".".
func isHost(s string, suffix bool) bool {
	if s == "" {
		return false
	}
	if s[0] == '[' {
		if suffix || len(s) < 4 || s[len(s)-1] != ']' {
			return false
		}
		for i := 1; i < len(s)-1; i++ {
			c := s[i]
			if !charset.IsHex(c) && c != ':' && c != '.' {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !charset.IsDigit(c) && c != '-' && c != '.' && c != '_' {
			return false
		}
	}
	return true
}

func isPort(s string) bool {
	if s == "" || len(s) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if !charset.IsDigit(s[i]) {
			return false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n > 0 && n <= 65535
}

func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
