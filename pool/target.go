package pool

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// target is a parsed, normalized target URL.
type target struct {
	// url is the canonical form config.CanonicalTargetURL gives (scheme and
	// host in lower case, an IP in net/netip's form, the port explicit): the
	// name the proxy's transports, metrics and status know the target by.
	url  string
	host string // the Host header value (RFC 9110 §7.2): authority of url
	addr string // host:port to dial
	tls  bool
	h2   bool // HTTP/2: h2c, grpc (cleartext), h2, grpcs (TLS)
	// ip: the host is an IP literal (no DNS); ip6: an IPv6 literal, dialled
	// over "tcp" instead of fasthttp's default "tcp4".
	ip, ip6 bool
}

// parseTargetURL accepts http://host[:port] and https://host[:port] with an
// optional trailing "/", and nothing else: a path prefix belongs on the
// route (strip_path), credentials in a plugin. Hosts are lower-cased and a
// default port made explicit, so "HTTP://Api/" and "http://api:80" are the
// same target, http://api:80 (the Host field drops the default port).
func parseTargetURL(raw string) (target, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return target{}, errors.New("url must start with http://, https://, h2c://, grpc://, h2:// or grpcs://")
	}
	var t target
	defPort := ""
	switch strings.ToLower(scheme) {
	case "http":
		defPort = "80"
	case "https":
		defPort = "443"
		t.tls = true
	case "h2c", "grpc":
		defPort = "80"
		t.h2 = true
	case "h2", "grpcs":
		defPort = "443"
		t.tls, t.h2 = true, true
	default:
		return target{}, fmt.Errorf("url scheme %q is not supported (use http, https, h2c, grpc, h2 or grpcs)", scheme)
	}
	if strings.ContainsAny(rest, "@") {
		return target{}, errors.New("url must not contain user info")
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		if rest[i:] != "/" {
			return target{}, errors.New("url must not have a path, query or fragment (give scheme://host:port only)")
		}
		rest = rest[:i]
	}
	hostname, port, err := splitAuthority(rest)
	if err != nil {
		return target{}, err
	}
	if port == "" {
		port = defPort
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port[0] < '1' || port[0] > '9' {
		return target{}, fmt.Errorf("port %q must be a number between 1 and 65535", port)
	}
	hostname = strings.ToLower(hostname)
	if a, err := netip.ParseAddr(hostname); err == nil && a.Zone() == "" {
		t.ip = true
		t.ip6 = a.Is6()
		hostname = a.String()
	} else if strings.Contains(rest, "[") {
		return target{}, fmt.Errorf("host %q is not a valid IPv6 address (zones are not supported)", hostname)
	} else if err := checkHostname(hostname); err != nil {
		return target{}, err
	}
	t.addr = net.JoinHostPort(hostname, port)
	if port == defPort {
		t.host = hostname
		if t.ip6 {
			t.host = "[" + hostname + "]"
		}
	} else {
		t.host = t.addr
	}
	t.url = strings.ToLower(scheme) + "://" + t.addr
	return t, nil
}

// splitAuthority splits "host", "host:port", "[v6]" or "[v6]:port".
func splitAuthority(a string) (host, port string, err error) {
	if a == "" {
		return "", "", errors.New("url has no host")
	}
	if a[0] == '[' {
		end := strings.IndexByte(a, ']')
		if end < 0 {
			return "", "", errors.New("url has an unclosed [ in its host")
		}
		host, rest := a[1:end], a[end+1:]
		switch {
		case rest == "":
		case rest[0] != ':':
			return "", "", fmt.Errorf("url has %q after the IPv6 address", rest)
		case rest == ":":
			return "", "", errors.New("url has an empty port")
		default:
			port = rest[1:]
		}
		return host, port, nil
	}
	host = a
	if i := strings.LastIndexByte(a, ':'); i >= 0 {
		host, port = a[:i], a[i+1:]
		if port == "" {
			return "", "", errors.New("url has an empty port")
		}
		if strings.IndexByte(host, ':') >= 0 {
			return "", "", errors.New("url has an IPv6 address without [brackets]")
		}
	}
	if host == "" {
		return "", "", errors.New("url has no host")
	}
	return host, port, nil
}

// checkHostname accepts DNS names (RFC 1123 §2.1 labels, plus "_" which
// service discovery systems use).
func checkHostname(h string) error {
	if len(h) > 253 {
		return fmt.Errorf("host %q is longer than 253 characters", h)
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("host %q is not a valid host name", h)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("host %q is not a valid host name", h)
			}
		}
	}
	return nil
}
