package router

import (
	"fmt"
	"net/netip"
	"strings"
)

// NormalizeHost appends the canonical form of a Host header value (or
// :authority) to dst and returns the extended slice; dst may be host[:0]
// to normalize in place. The canonical form is what Match expects:
//
//   - ASCII lowercase (host names are case-insensitive, RFC 4343);
//   - without ":port" (routes match every port);
//   - without trailing dots ("example.com." is the same name, RFC 1034 §3.1);
//   - an IPv6 literal stays in brackets with its address in RFC 5952 form
//     ("[0:0::1]:8080" → "[::1]"); a bracketed value that is not an IPv6
//     address is only lowercased and cannot match any route.
//
// A value with several colons and no brackets is not a valid authority
// (RFC 3986 §3.2.2); it is lowercased and left alone.
func NormalizeHost(dst, host []byte) []byte {
	if len(host) > 0 && host[0] == '[' {
		if end := indexByte(host, ']'); end > 0 {
			if a, err := netip.ParseAddr(b2s(host[1:end])); err == nil && a.Is6() && a.Zone() == "" {
				dst = append(dst, '[')
				dst = a.AppendTo(dst)
				return append(dst, ']')
			}
			host = host[:end+1]
		}
		return appendLower(dst, host)
	}
	if c := indexByte(host, ':'); c >= 0 && indexByte(host[c+1:], ':') < 0 {
		host = host[:c]
	}
	for len(host) > 0 && host[len(host)-1] == '.' {
		host = host[:len(host)-1]
	}
	return appendLower(dst, host)
}

func appendLower(dst, s []byte) []byte {
	for _, c := range s {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

func indexByte(b []byte, c byte) int {
	for i := range b {
		if b[i] == c {
			return i
		}
	}
	return -1
}

// parseHost validates one configured host and returns its canonical form
// and whether it is a wildcard; for a wildcard the canonical form is the
// suffix after "*.". msg is the error for RouteError.Msg.
func parseHost(h string) (name string, wildcard bool, msg string) {
	q := fmt.Sprintf("%q", h)
	switch {
	case h == "":
		return "", false, `"" is empty; remove it or write a host name like "api.example.com"`
	case h == "*" || h == "*.":
		return "", false, q + " matches every host; leave hosts empty instead"
	case strings.Contains(h, "://") || strings.ContainsAny(h, "/?#@"):
		return "", false, q + ` is not a host name; write only the host, like "api.example.com"`
	}
	if h[0] == '[' {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", false, q + ` has an unclosed "["; write an IPv6 address as "[::1]"`
		}
		if end != len(h)-1 {
			return "", false, fmt.Sprintf("%s has a port or extra text after \"]\"; write the host without it (%q), a route matches every port", q, h[:end+1])
		}
		a, err := netip.ParseAddr(h[1:end])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", false, q + ` is not a valid IPv6 address in brackets, like "[2001:db8::1]"`
		}
		return "[" + a.String() + "]", false, ""
	}
	if n := strings.Count(h, ":"); n > 1 {
		return "", false, fmt.Sprintf("%s looks like an IPv6 address; write it in brackets, like %q", q, "["+h+"]")
	} else if n == 1 {
		return "", false, fmt.Sprintf("%s has a port; write the host without it (%q), a route matches every port", q, h[:strings.IndexByte(h, ':')])
	}
	name = strings.ToLower(h)
	if strings.HasPrefix(name, "*.") {
		wildcard = true
		name = name[2:]
	}
	if strings.IndexByte(name, '*') >= 0 {
		return "", false, q + ` has a "*" that is not a leading "*."; a wildcard is written like "*.example.com"`
	}
	name = strings.TrimSuffix(name, ".")
	if name == "" {
		return "", false, q + ` has no name after the wildcard; write it like "*.example.com"`
	}
	if len(name) > 253 {
		return "", false, q + " is longer than 253 characters (RFC 1035 §2.3.4)"
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return "", false, fmt.Sprintf(`%s has the invalid character %q; a host name has only letters, digits, "-", "_" and "."`, q, c)
		}
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" {
			return "", false, q + ` has an empty label; remove the extra "."`
		}
		if len(label) > 63 {
			return "", false, q + " has a label longer than 63 characters (RFC 1035 §2.3.4)"
		}
	}
	return name, wildcard, ""
}
