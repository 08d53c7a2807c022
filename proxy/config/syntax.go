package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/weirgw/weir/internal/httpsyntax"
)

// CanonicalTargetURL checks a service target URL and returns its canonical
// form, "scheme://host:port" with scheme and host in lower case, an IP
// address in its shortest form (net/netip's) and the port explicit (80 for http, h2c and grpc, 443 for https, h2 and grpcs). A target has no path, query,
// fragment or user info: the request's path is what goes upstream, and
// strip_path or plugins rewrite it. The admin API uses this for targets
// registered at run time, so both paths agree on what a target is.
func CanonicalTargetURL(s string) (string, error) {
	const example = "write it as http://HOST:PORT, such as http://10.0.0.7:9001"
	if s == "" {
		return "", fmt.Errorf("a target needs a url: %s", example)
	}
	if !strings.Contains(s, "://") {
		if checkDialAddr(s) == nil {
			return "", fmt.Errorf("%q has no scheme: write \"http://%s\"", s, s)
		}
		return "", fmt.Errorf("%q has no scheme: %s", s, example)
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL: %s", s, example)
	}
	scheme := strings.ToLower(u.Scheme)
	var defPort string
	switch scheme {
	case "http", "h2c", "grpc":
		defPort = "80"
	case "https", "h2", "grpcs":
		defPort = "443"
	case "":
		return "", fmt.Errorf("%q has no scheme: %s", s, example)
	default:
		return "", fmt.Errorf("scheme %q of %q is not supported: use http or https (HTTP/1.1), h2c or grpc (HTTP/2 cleartext), h2 or grpcs (HTTP/2 over TLS)", u.Scheme, s)
	}
	if u.Opaque != "" || u.Host == "" {
		return "", fmt.Errorf("%q has no host: %s", s, example)
	}
	if u.User != nil {
		return "", fmt.Errorf("%q holds user info: targets take no credentials in the URL; add an Authorization header with the request_transformer plugin instead", s)
	}
	if u.Path != "" && u.Path != "/" || u.RawPath != "" {
		return "", fmt.Errorf("%q has a path: a target is scheme://host:port only; use strip_path or the request_transformer plugin to change paths", s)
	}
	if u.RawQuery != "" || u.ForceQuery {
		return "", fmt.Errorf("%q has a query: a target is scheme://host:port only", s)
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return "", fmt.Errorf("%q has a fragment: a target is scheme://host:port only", s)
	}
	host, port := u.Hostname(), u.Port()
	if err := checkHost(host); err != nil {
		return "", fmt.Errorf("%q: %v", s, err)
	}
	if port == "" {
		port = defPort
	} else if n, ok := parsePort(port); !ok || n < 1 {
		return "", fmt.Errorf("%q: port %q is not a number from 1 to 65535", s, port)
	} else {
		port = strconv.Itoa(n) // drop leading zeros
	}
	host = strings.ToLower(host)
	if a, err := netip.ParseAddr(host); err == nil {
		host = a.String() // one spelling of an address: "::1", never "0:0:0:0:0:0:0:1"
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}

// checkHost accepts an IP address (IPv6 without brackets and without a
// zone) or a DNS host name.
func checkHost(h string) error {
	if h == "" {
		return fmt.Errorf("the host is empty")
	}
	if strings.Contains(h, ":") || strings.Contains(h, "%") {
		a, err := netip.ParseAddr(h)
		if err != nil || a.Zone() != "" {
			return fmt.Errorf("host %q is not an IP address or host name (IPv6 zones are not supported)", h)
		}
		return nil
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return nil
	}
	if !validHostname(h) {
		return fmt.Errorf("host %q is not an IP address or host name", h)
	}
	return nil
}

// validHostname checks DNS name syntax (RFC 1123 §2.1), also allowing "_"
// which internal names often use.
func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// checkListenAddr checks a listener address, "host:port" with an optional
// host (all interfaces) and port 0 allowed (a free port, handy in tests).
func checkListenAddr(a string) error {
	if a == "" {
		return fmt.Errorf(`the address is empty: write ":8080" to listen on every interface or "127.0.0.1:8080" for this host only`)
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		if _, perr := strconv.Atoi(a); perr == nil {
			return fmt.Errorf("%q is not host:port: write \":%s\" to listen on port %s on every interface", a, a, a)
		}
		return fmt.Errorf("%q is not host:port: write it as \":8080\" or \"127.0.0.1:8080\"", a)
	}
	if _, ok := parsePort(port); !ok {
		return fmt.Errorf("port %q of %q is not a number from 0 to 65535", port, a)
	}
	if host != "" {
		if err := checkHost(host); err != nil {
			return fmt.Errorf("%q: %v", a, err)
		}
	}
	return nil
}

// checkDialAddr checks an address to connect to: host and port required.
func checkDialAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil || host == "" {
		return fmt.Errorf("%q is not host:port: write it as \"127.0.0.1:6379\"", a)
	}
	if n, ok := parsePort(port); !ok || n < 1 {
		return fmt.Errorf("port %q of %q is not a number from 1 to 65535", port, a)
	}
	if err := checkHost(host); err != nil {
		return fmt.Errorf("%q: %v", a, err)
	}
	return nil
}

// isLoopback reports whether a listen address only accepts connections
// from this host.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// sameListener reports whether two listen addresses would collide: same
// port, and the same host or one of them on every interface.
func sameListener(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb || pa == "0" {
		return false
	}
	return ha == hb || anyHost(ha) || anyHost(hb)
}

func anyHost(h string) bool {
	if h == "" {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.IsUnspecified()
}

// validName is the syntax of service and route names: they appear in
// metric labels, admin API paths and logs.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// visibleASCII is the syntax of consumer names and groups: they are sent
// upstream in X-Consumer-Name and X-Consumer-Groups.
func visibleASCII(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// checkRouteHost checks a route's host pattern: a host name, optionally
// starting with "*." to match any subdomain, an IP address, or either with
// ":port".
func checkRouteHost(h string) error {
	const fix = `write a host name such as "api.example.com" or "*.example.com"`
	switch h {
	case "":
		return fmt.Errorf("the host is empty: %s", fix)
	case "*":
		return fmt.Errorf(`"*" is not a host pattern: leave hosts out to match every host`)
	}
	host := h
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return fmt.Errorf("%q has an unclosed [: write IPv6 addresses as [::1]", h)
		}
		if _, err := netip.ParseAddr(h[1:end]); err != nil {
			return fmt.Errorf("%q is not an IPv6 address", h)
		}
		rest := h[end+1:]
		if rest == "" {
			return nil
		}
		if rest[0] != ':' || !validPort(rest[1:]) {
			return fmt.Errorf("%q has an invalid port", h)
		}
		return nil
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		if !validPort(h[i+1:]) {
			return fmt.Errorf("%q has an invalid port: %s", h, fix)
		}
		host = h[:i]
	}
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		host = rest
	}
	if strings.Contains(host, "*") {
		return fmt.Errorf("%q: a wildcard is only allowed as the first label, as in \"*.example.com\"", h)
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if !validHostname(host) {
		return fmt.Errorf("%q is not a host name: %s", h, fix)
	}
	return nil
}

func validPort(p string) bool {
	n, ok := parsePort(p)
	return ok && n >= 1
}

// parsePort reads a decimal port number, 0 to 65535, digits only.
func parsePort(p string) (int, bool) {
	if p == "" || len(p) > 5 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return 0, false
		}
		n = n*10 + int(p[i]-'0')
	}
	return n, n <= 65535
}

// checkHashOn checks the consistent_hash key grammar:
// ip | consumer | path | header:NAME | cookie:NAME.
func checkHashOn(s string) error {
	switch s {
	case "ip", "consumer", "path":
		return nil
	}
	if name, ok := strings.CutPrefix(s, "header:"); ok {
		if !httpsyntax.IsToken(name) {
			return fmt.Errorf("hash_on %q: %q is not a header name", s, name)
		}
		return nil
	}
	if name, ok := strings.CutPrefix(s, "cookie:"); ok {
		// A cookie name is a token (RFC 6265 §4.1.1).
		if !httpsyntax.IsToken(name) {
			return fmt.Errorf("hash_on %q: %q is not a cookie name", s, name)
		}
		return nil
	}
	return fmt.Errorf("invalid hash_on %q: use ip, consumer, path, header:NAME or cookie:NAME", s)
}
