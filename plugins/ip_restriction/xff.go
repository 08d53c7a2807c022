package iprestriction

import (
	"net/netip"

	"github.com/weirgw/weir/sdk"
)

// maxXFFEntryLen bounds one X-Forwarded-For element: the longest address we
// accept, "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535", is 53
// bytes. Anything longer is malformed and never reaches the parser.
const maxXFFEntryLen = 53

// clientFromXFF finds the client address of a request that arrived from a
// trusted proxy. values are the X-Forwarded-For header fields in the order
// received (several fields form one comma-separated list, RFC 9110 §5.3).
//
// Each proxy appends the address it received the request from, so only the
// right end of the list is written by parties we trust; the left end is
// whatever the client sent and is spoofable. The list is therefore walked
// from the right, skipping addresses of trusted proxies, and the first
// untrusted address is the client. When every listed hop is trusted the
// leftmost one is the origin; with no list at all the peer is.
//
// ok is false when an element that had to be read is not an IP address
// ("unknown", a host name, garbage): the client cannot be identified and the
// caller fails closed. Elements left of the client are never read, so junk a
// client puts there cannot affect the answer. Empty elements are skipped, as
// list syntax requires (RFC 9110 §5.6.1).
//
// It does not allocate for well-formed input.
func clientFromXFF(values [][]byte, trusted *prefixSet, peer netip.Addr) (client netip.Addr, ok bool) {
	last := peer
	for i := len(values) - 1; i >= 0; i-- {
		v := values[i]
		end := len(v)
		for end >= 0 {
			start := lastIndexComma(v[:end]) + 1
			elem := trimOWS(v[start:end])
			end = start - 1
			if len(elem) == 0 {
				continue
			}
			ip, good := parseXFFAddr(elem)
			if !good {
				return netip.Addr{}, false
			}
			if !trusted.contains(ip) {
				return ip, true
			}
			last = ip
		}
	}
	return last, true
}

func lastIndexComma(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == ',' {
			return i
		}
	}
	return -1
}

// trimOWS strips optional whitespace (SP / HTAB, RFC 9110 §5.6.3).
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// parseXFFAddr parses one X-Forwarded-For element: an IPv4 or IPv6 address,
// optionally with a port ("192.0.2.1:443", "[2001:db8::1]:443", which some
// load balancers add). Zones are refused: they are meaningless across hosts.
// The result is unmapped so that "::ffff:192.0.2.1" is 192.0.2.1.
//
// The byte classes are checked first so that the common junk ("unknown",
// host names) is refused without calling netip, whose errors allocate; the
// parser sees a zero-copy view of the header bytes and keeps nothing.
func parseXFFAddr(b []byte) (netip.Addr, bool) {
	if len(b) > maxXFFEntryLen {
		return netip.Addr{}, false
	}
	colons := 0
	for _, ch := range b {
		switch {
		case ch >= '0' && ch <= '9', ch >= 'a' && ch <= 'f', ch >= 'A' && ch <= 'F', ch == '.':
		case ch == ':':
			colons++
		case ch == '[' || ch == ']':
		default:
			return netip.Addr{}, false
		}
	}
	s := sdk.B2S(b)
	var ip netip.Addr
	switch {
	case b[0] == '[' || colons == 1: // [v6]:port or v4:port
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}, false
		}
		ip = ap.Addr()
	default: // v4 (no colon) or v6 (two or more)
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Addr{}, false
		}
		ip = a
	}
	return ip.Unmap(), true
}
