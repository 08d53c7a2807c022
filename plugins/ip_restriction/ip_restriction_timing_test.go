package iprestriction

import (
	"testing"

	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

func benchmarkOnRequest(b *testing.B, cfg, peer string, xff ...string) {
	f := mustNew(b, "bench", cfg)
	_, c := plugintest.NewCtx(fromPeer(peer, xff...))
	defer sdk.ReleaseCtx(c)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := f.OnRequest(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOnRequestPeerAllowed(b *testing.B) {
	benchmarkOnRequest(b, `{"allow":["10.0.0.0/8","192.168.0.0/16"],"deny":["10.6.6.6"]}`, "10.1.2.3")
}

func BenchmarkOnRequestPeerDenied(b *testing.B) {
	benchmarkOnRequest(b, `{"deny":["10.0.0.0/8"]}`, "10.1.2.3")
}

func BenchmarkOnRequestV6(b *testing.B) {
	benchmarkOnRequest(b, `{"allow":["2001:db8::/32","2001:db8:1::/48","::1"]}`, "2001:db8::77")
}

func BenchmarkOnRequestXFF(b *testing.B) {
	benchmarkOnRequest(b, `{"allow":["192.0.2.0/24"],"trusted_proxies":["10.0.0.0/8"]}`,
		"10.0.0.1", "6.6.6.6, 192.0.2.1, 10.0.0.3, 10.0.0.2")
}

// BenchmarkPrefixSetLarge checks that lookups do not grow with the list:
// 4096 /32 entries and 256 /24 entries still probe two maps.
func BenchmarkPrefixSetLarge(b *testing.B) {
	var list []string
	for i := range 4096 {
		list = append(list, "10."+itoa(i>>8)+"."+itoa(i&255)+".1")
	}
	for i := range 256 {
		list = append(list, "172.16."+itoa(i)+".0/24")
	}
	ps, err := parsePrefixes("deny", list)
	if err != nil {
		b.Fatal(err)
	}
	ip := mustAddr("192.0.2.1")
	b.ReportAllocs()
	for b.Loop() {
		if ps.contains(ip) {
			b.Fatal("unexpected match")
		}
	}
}
