package iprestriction

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// prefixSet is an immutable set of CIDR prefixes built when the config
// loads. Lookups probe one map per distinct prefix length present in the
// set (at most 33 for IPv4, 129 for IPv6, in practice a handful), so the
// cost does not grow with the number of entries and nothing allocates:
// netip.Prefix is a comparable value type.
type prefixSet struct {
	v4Bits []int // distinct IPv4 prefix lengths, longest first
	v6Bits []int // distinct IPv6 prefix lengths, longest first
	set    map[netip.Prefix]struct{}
}

// parsePrefixes compiles a list of CIDRs or plain addresses (a plain IPv4
// address is a /32, a plain IPv6 address a /128). key names the config key
// for error messages. Prefixes with host bits set ("10.1.2.3/8") are
// accepted and masked, as most firewalls do.
func parsePrefixes(key string, list []string) (prefixSet, error) {
	ps := prefixSet{set: make(map[netip.Prefix]struct{}, len(list))}
	// Every bad entry is reported, not just the first.
	var errs []error
	for i, raw := range list {
		p, err := parsePrefix(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %w", key, i, err))
			continue
		}
		ps.set[p] = struct{}{}
		if p.Addr().Is4() {
			ps.v4Bits = appendUnique(ps.v4Bits, p.Bits())
		} else {
			ps.v6Bits = appendUnique(ps.v6Bits, p.Bits())
		}
	}
	// Longest first: the order does not change the answer, but specific
	// entries (single hosts) are the common case in deny lists.
	slices.Sort(ps.v4Bits)
	slices.Reverse(ps.v4Bits)
	slices.Sort(ps.v6Bits)
	slices.Reverse(ps.v6Bits)
	if len(errs) > 0 {
		return prefixSet{}, errors.Join(errs...)
	}
	return ps, nil
}

func parsePrefix(raw string) (netip.Prefix, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return netip.Prefix{}, fmt.Errorf("empty entry; write an address or CIDR such as 10.0.0.0/8 or 2001:db8::/32")
	}
	var p netip.Prefix
	if strings.IndexByte(s, '/') >= 0 {
		var err error
		p, err = netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR; write it as 10.0.0.0/8 or 2001:db8::/32", raw)
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR; write it as 192.0.2.7, 10.0.0.0/8 or 2001:db8::/32", raw)
		}
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q has an IPv6 zone; remove the %%zone part", raw)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	// Client addresses are unmapped before lookup (sdk.Ctx.ClientIP does the
	// same), so an IPv4-mapped IPv6 prefix could never match: refuse it
	// rather than let an operator believe it protects something.
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%q is an IPv4-mapped IPv6 address; write it in IPv4 form", raw)
	}
	return p.Masked(), nil
}

func appendUnique(list []int, v int) []int {
	if slices.Contains(list, v) {
		return list
	}
	return append(list, v)
}

// empty reports whether the set has no prefixes.
func (ps *prefixSet) empty() bool { return len(ps.set) == 0 }

// contains reports whether ip falls in one of the set's prefixes. ip must be
// unmapped and zone-less (callers guarantee it).
func (ps *prefixSet) contains(ip netip.Addr) bool {
	bits := ps.v6Bits
	if ip.Is4() {
		bits = ps.v4Bits
	}
	for _, b := range bits {
		p, err := ip.Prefix(b)
		if err != nil {
			continue
		}
		if _, ok := ps.set[p]; ok {
			return true
		}
	}
	return false
}
