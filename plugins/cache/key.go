package cache

import (
	"encoding/binary"
	"errors"
	"github.com/weirgw/weir/internal/charset"
	"strings"

	"github.com/weirgw/weir/sdk"
)

// Cache keys.
//
// The primary key is the URL the client asked for, without the scheme:
//
//	lowercase(Host) + normalised path + "?" + raw query (when there is one)
//
// The path is c.Path(), the gateway's single normalised reading of the
// path (percent-decoded, dot segments and duplicate slashes resolved), so
// "/a/../b" and "/b" share an entry. The query string is kept byte for
// byte: reordering parameters could merge resources an origin tells
// apart. The scheme is left out on purpose: a gateway behind a TLS
// terminator sees plain HTTP for https URLs, and purging
// "https://host/x" must reach what was stored from "http://host/x".
// GET and HEAD share keys, so a HEAD is answered from a stored GET.
//
// A response with Vary is stored under
//
//	primary + 0x00 + marker id (8 bytes) + 0x00 + secondary key
//
// (see vary.go), so every key of a URL starts with its primary key.

// appendPrimaryKey appends the request's primary key. The host is
// c.Host(), the client's, not the request's Host field: after
// forwarding (when OnResponse invalidates) that field holds the target's
// host (preserve_host: false) or whatever a plugin set, and lookup and
// invalidation must compute the same key.
func appendPrimaryKey(dst []byte, c *sdk.Ctx) []byte {
	req := c.Request()
	dst = appendLower(dst, c.Host())
	p := c.Path()
	if len(p) == 0 {
		p = req.URI().Path()
	}
	dst = append(dst, p...)
	if q := req.URI().QueryString(); len(q) > 0 {
		dst = append(dst, '?')
		dst = append(dst, q...)
	}
	return dst
}

func appendVariantKey(dst, primary []byte, markerID uint64, names []byte, r requestHeaders) []byte {
	dst = append(dst, primary...)
	dst = append(dst, 0)
	dst = binary.LittleEndian.AppendUint64(dst, markerID)
	dst = append(dst, 0)
	return appendSecondaryKey(dst, names, r)
}

var errPurgeURL = errors.New("cache: purge needs an absolute URL such as https://api.example.com/users/7")

// urlKey turns a URL given to the purge API ("https://Host/a/b?x=1",
// "//host/a" or "host/a") into the primary key the proxy would compute for
// it. prefix allows an empty path ("https://host" purges the whole host).
func urlKey(u string, prefix bool) ([]byte, error) {
	s := strings.TrimSpace(u)
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	} else {
		s = strings.TrimPrefix(s, "//")
	}
	if s == "" || s[0] == '/' {
		return nil, errPurgeURL
	}
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s = s[:i]
	}
	hostEnd := strings.IndexAny(s, "/?")
	host, rest := s, ""
	if hostEnd >= 0 {
		host, rest = s[:hostEnd], s[hostEnd:]
	}
	if host == "" || strings.ContainsAny(host, " \t") {
		return nil, errPurgeURL
	}
	path, query := rest, ""
	hasQuery := false
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		path, query, hasQuery = rest[:i], rest[i+1:], true
	}
	key := appendLower(nil, []byte(host))
	if path == "" && (hasQuery || !prefix) {
		path = "/"
	}
	if path != "" {
		key = append(key, normalizePath([]byte(path))...)
	}
	if hasQuery && query != "" {
		key = append(key, '?')
		key = append(key, query...)
	}
	return key, nil
}

// normalizePath mirrors the proxy's path normalisation for URLs that do not
// come through it (purge requests, Location headers): percent-decoding,
// duplicate slashes collapsed, "." and ".." segments resolved (RFC 3986
// §5.2.4). A trailing slash is kept.
func normalizePath(p []byte) []byte {
	dec := make([]byte, 0, len(p)+1)
	if len(p) == 0 || p[0] != '/' {
		dec = append(dec, '/')
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' && i+2 < len(p) && charset.IsHex(p[i+1]) && charset.IsHex(p[i+2]) {
			c = unhex(p[i+1])<<4 | unhex(p[i+2])
			i += 2
		}
		dec = append(dec, c)
	}
	out := make([]byte, 0, len(dec))
	segStart := 0
	for i := 0; i <= len(dec); i++ {
		if i < len(dec) && dec[i] != '/' {
			continue
		}
		seg := dec[segStart:i]
		last := i == len(dec)
		switch {
		case segStart == 0 && len(seg) == 0:
			// leading slash
		case len(seg) == 0:
			if last {
				out = append(out, '/')
			}
		case len(seg) == 1 && seg[0] == '.':
			if last {
				out = append(out, '/')
			}
		case len(seg) == 2 && seg[0] == '.' && seg[1] == '.':
			if j := lastSlash(out); j >= 0 {
				out = out[:j]
			}
			if last {
				out = append(out, '/')
			}
		default:
			out = append(out, '/')
			out = append(out, seg...)
		}
		segStart = i + 1
	}
	if len(out) == 0 {
		out = append(out, '/')
	}
	return out
}

func lastSlash(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '/' {
			return i
		}
	}
	return -1
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// locationKey resolves a Location / Content-Location value against the
// request (host, path) and returns its primary key, or nil when it names
// another host: RFC 9111 §4.4 forbids invalidating those, as a defence
// against one origin evicting another's objects.
func locationKey(v, reqHost, reqPath []byte) []byte {
	s := string(trimOWS(v))
	if s == "" {
		return nil
	}
	var host, rest string
	switch {
	case strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "//"):
		s = s[strings.Index(s, "//")+2:]
		end := strings.IndexAny(s, "/?#")
		if end < 0 {
			host, rest = s, "/"
		} else {
			host, rest = s[:end], s[end:]
		}
		if !strings.EqualFold(host, string(reqHost)) {
			return nil
		}
	case s[0] == '/':
		host, rest = string(reqHost), s
	case strings.Contains(s, ":") && strings.IndexByte(s, ':') < strings.IndexAny(s+"/", "/?#"):
		return nil // another scheme
	default:
		dir := reqPath
		if j := lastSlash(dir); j >= 0 {
			dir = dir[:j+1]
		}
		host, rest = string(reqHost), string(dir)+s
	}
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		rest = rest[:i]
	}
	path, query := rest, ""
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		path, query = rest[:i], rest[i+1:]
	}
	key := appendLower(nil, []byte(host))
	key = append(key, normalizePath([]byte(path))...)
	if query != "" {
		key = append(key, '?')
		key = append(key, query...)
	}
	return key
}
