package iprestriction

import (
	"net/netip"
	"strings"
	"testing"
)

// refClientFromXFF is a slow, obviously correct model of clientFromXFF built
// from strings.Split and netip, used to check it differentially.
func refClientFromXFF(values []string, trusted *prefixSet, peer netip.Addr) (netip.Addr, bool) {
	parts := strings.Split(strings.Join(values, ","), ",")
	last := peer
	for i := len(parts) - 1; i >= 0; i-- {
		e := strings.Trim(parts[i], " \t")
		if e == "" {
			continue
		}
		if len(e) > maxXFFEntryLen {
			return netip.Addr{}, false
		}
		ip, err := netip.ParseAddr(e)
		if err != nil {
			ap, err2 := netip.ParseAddrPort(e)
			if err2 != nil {
				return netip.Addr{}, false
			}
			ip = ap.Addr()
		}
		if ip.Zone() != "" {
			return netip.Addr{}, false
		}
		ip = ip.Unmap()
		if !trusted.contains(ip) {
			return ip, true
		}
		last = ip
	}
	return last, true
}

func FuzzClientFromXFF(f *testing.F) {
	for _, s := range []string{
		"", "192.0.2.1", "1.1.1.1, 2.2.2.2, 10.0.0.1", "unknown", "[2001:db8::1]:80",
		"::ffff:10.0.0.1", "fe80::1%eth0", " , ,\t", "10.0.0.1,fd00::1,2001:db8::", "1.2.3.4:5:6",
		"[::1]", "::", "1.1.1.1\x00", "0000:0000:0000:0000:0000:ffff:255.255.255.255",
	} {
		f.Add(s, "")
		f.Add(s, "10.0.0.2")
	}
	trusted, err := parsePrefixes("trusted_proxies", []string{"10.0.0.0/8", "fd00::/8", "::1"})
	if err != nil {
		f.Fatal(err)
	}
	peer := netip.MustParseAddr("10.0.0.1")
	f.Fuzz(func(t *testing.T, a, b string) {
		values := []string{a, b}
		got, ok := clientFromXFF([][]byte{[]byte(a), []byte(b)}, &trusted, peer)
		want, wantOK := refClientFromXFF(values, &trusted, peer)
		if ok != wantOK || got != want {
			t.Fatalf("clientFromXFF(%q) = %v %v, model says %v %v", values, got, ok, want, wantOK)
		}
		if ok && (!got.IsValid() || got.Zone() != "" || got.Is4In6()) {
			t.Fatalf("clientFromXFF(%q) = %v: not a plain address", values, got)
		}
	})
}
