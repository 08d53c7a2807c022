package iprestriction

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

func build(route string) *sdk.Build {
	return &sdk.Build{Route: route, Consumers: sdk.NewConsumers(nil)}
}

func mustNew(t testing.TB, route, cfg string) *filter {
	t.Helper()
	return plugintest.New[*filter](t, New, build(route), cfg)
}

// fromPeer is a request from peer carrying the given X-Forwarded-For
// fields (one header line each).
func fromPeer(peer string, xff ...string) plugintest.Request {
	r := plugintest.Request{URI: "http://gw.test/x", Peer: peer}
	for _, v := range xff {
		r.HeaderLines = append(r.HeaderLines, headerXFF, v)
	}
	return r
}

func TestConfig(t *testing.T) {
	plugintest.Configs(t, New, build("r"), []plugintest.ConfigCase{
		{Name: "allow v4", Cfg: `{"allow":["10.0.0.0/8"]}`},
		{Name: "deny v6 and plain ips", Cfg: `{"deny":["2001:db8::/32","192.0.2.7","::1"]}`},
		{Name: "both lists", Cfg: `{"allow":["10.0.0.0/8"],"deny":["10.1.0.0/16"]}`},
		{Name: "host bits masked", Cfg: `{"allow":["10.1.2.3/8"]}`},
		{Name: "trusted proxies", Cfg: `{"allow":["0.0.0.0/0"],"trusted_proxies":["127.0.0.1","fd00::/8"]}`},
		{Name: "empty config", Cfg: ``, Err: "set allow or deny (lists of addresses or CIDRs such as 10.0.0.0/8)"},
		{Name: "null config", Cfg: `null`, Err: "set allow or deny (lists of addresses or CIDRs such as 10.0.0.0/8)"},
		{Name: "empty lists", Cfg: `{"allow":[],"deny":[]}`, Err: "set allow or deny (lists of addresses or CIDRs such as 10.0.0.0/8)"},
		{Name: "only trusted", Cfg: `{"trusted_proxies":["10.0.0.1"]}`, Err: "set allow or deny (lists of addresses or CIDRs such as 10.0.0.0/8)"},
		{Name: "unknown key", Cfg: `{"alow":["10.0.0.0/8"]}`, Err: `unknown field "alow"`},
		{Name: "not a list", Cfg: `{"allow":"10.0.0.0/8"}`, Err: "allow: expected []string, got string"},
		{Name: "bad cidr", Cfg: `{"allow":["10.0.0.0/33"]}`, Err: `allow[0]: "10.0.0.0/33" is not a CIDR; write it as 10.0.0.0/8 or 2001:db8::/32`},
		{Name: "bad address", Cfg: `{"deny":["10.0.0.0/8","example.com"]}`, Err: `deny[1]: "example.com" is not an IP address or CIDR; write it as 192.0.2.7, 10.0.0.0/8 or 2001:db8::/32`},
		{Name: "empty entry", Cfg: `{"deny":[" "]}`, Err: "deny[0]: empty entry; write an address or CIDR such as 10.0.0.0/8 or 2001:db8::/32"},
		{Name: "zone", Cfg: `{"allow":["fe80::1%eth0"]}`, Err: `allow[0]: "fe80::1%eth0" has an IPv6 zone; remove the %zone part`},
		{Name: "mapped", Cfg: `{"allow":["::ffff:10.0.0.0/104"]}`, Err: `allow[0]: "::ffff:10.0.0.0/104" is an IPv4-mapped IPv6 address; write it in IPv4 form`},
		{Name: "bad trusted", Cfg: `{"allow":["10.0.0.0/8"],"trusted_proxies":["lb"]}`, Err: `trusted_proxies[0]: "lb" is not an IP address or CIDR; write it as 192.0.2.7, 10.0.0.0/8 or 2001:db8::/32`},
		{Name: "every bad entry", Cfg: `{"allow":["10.0.0.0/33","10.0.0.0/8"," "],"trusted_proxies":["lb"]}`, Err: `allow[0]: "10.0.0.0/33" is not a CIDR; write it as 10.0.0.0/8 or 2001:db8::/32` + "\n" +
			"allow[2]: empty entry; write an address or CIDR such as 10.0.0.0/8 or 2001:db8::/32\n" +
			`trusted_proxies[0]: "lb" is not an IP address or CIDR; write it as 192.0.2.7, 10.0.0.0/8 or 2001:db8::/32`},
	})
}

func TestOnRequest(t *testing.T) {
	tests := []struct {
		name string
		cfg  string
		peer string
		xff  []string
		want int // 0: continue
	}{
		{"allowed v4", `{"allow":["10.0.0.0/8"]}`, "10.2.3.4", nil, 0},
		{"not allowed v4", `{"allow":["10.0.0.0/8"]}`, "11.2.3.4", nil, 403},
		{"allowed v6", `{"allow":["2001:db8::/32"]}`, "2001:db8::5", nil, 0},
		{"v6 not in v4 allow", `{"allow":["10.0.0.0/8"]}`, "2001:db8::5", nil, 403},
		{"mapped peer is v4", `{"allow":["10.0.0.0/8"]}`, "::ffff:10.0.0.1", nil, 0},
		{"plain ip is /32", `{"allow":["10.0.0.1"]}`, "10.0.0.2", nil, 403},
		{"masked host bits", `{"allow":["10.9.9.9/8"]}`, "10.0.0.2", nil, 0},
		{"denied", `{"deny":["192.0.2.0/24"]}`, "192.0.2.9", nil, 403},
		{"not denied", `{"deny":["192.0.2.0/24"]}`, "198.51.100.1", nil, 0},
		{"deny wins over allow", `{"allow":["10.0.0.0/8"],"deny":["10.1.0.0/16"]}`, "10.1.2.3", nil, 403},
		{"allow beside deny", `{"allow":["10.0.0.0/8"],"deny":["10.1.0.0/16"]}`, "10.2.2.3", nil, 0},
		{"allow everything v4", `{"allow":["0.0.0.0/0"]}`, "203.0.113.5", nil, 0},
		{"xff ignored without trusted proxies", `{"deny":["192.0.2.1"]}`, "10.0.0.1", []string{"192.0.2.1"}, 0},
		{"xff ignored from untrusted peer", `{"deny":["192.0.2.1"],"trusted_proxies":["10.0.0.0/8"]}`, "172.16.0.1", []string{"192.0.2.1"}, 0},
		{"xff from trusted peer", `{"deny":["192.0.2.1"],"trusted_proxies":["10.0.0.0/8"]}`, "10.0.0.1", []string{"192.0.2.1"}, 403},
		{"spoofed leftmost is not the client", `{"allow":["192.0.2.1"],"trusted_proxies":["10.0.0.0/8"]}`, "10.0.0.1", []string{"192.0.2.1, 198.51.100.7"}, 403},
		{"trusted hops skipped", `{"allow":["192.0.2.1"],"trusted_proxies":["10.0.0.0/8"]}`, "10.0.0.1", []string{"6.6.6.6, 192.0.2.1, 10.0.0.3, 10.0.0.2"}, 0},
		{"several xff fields", `{"allow":["192.0.2.1"],"trusted_proxies":["10.0.0.0/8"]}`, "10.0.0.1", []string{"6.6.6.6, 192.0.2.1", "10.0.0.2"}, 0},
		{"malformed entry fails closed", `{"deny":["192.0.2.1"],"trusted_proxies":["10.0.0.0/8"]}`, "10.0.0.1", []string{"unknown"}, 403},
		{"junk left of client is not read", `{"deny":["192.0.2.1"],"trusted_proxies":["10.0.0.0/8"]}`, "10.0.0.1", []string{"junk, 198.51.100.2"}, 0},
		{"all hops trusted: leftmost", `{"allow":["10.0.0.9"],"trusted_proxies":["10.0.0.0/8"]}`, "10.0.0.1", []string{"10.0.0.9, 10.0.0.8"}, 0},
		{"no xff: peer", `{"allow":["10.0.0.1"],"trusted_proxies":["10.0.0.0/8"]}`, "10.0.0.1", nil, 0},
		{"xff v6 with port", `{"deny":["2001:db8::1"],"trusted_proxies":["::1"]}`, "::1", []string{"[2001:db8::1]:5555"}, 403},
		{"xff v4 with port", `{"deny":["192.0.2.1"],"trusted_proxies":["::1"]}`, "::1", []string{"192.0.2.1:443"}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustNew(t, "r", tt.cfg)
			r := plugintest.Run(t, f, fromPeer(tt.peer, tt.xff...))
			if tt.want == 0 {
				if r.Status != sdk.Continue {
					t.Fatalf("status = Stop (%d %s), want Continue", r.Code, r.Body)
				}
				return
			}
			if r.Status != sdk.Stop || r.Code != tt.want {
				t.Fatalf("got %v %d, want Stop %d", r.Status, r.Code, tt.want)
			}
			if body := r.Body; !strings.Contains(body, `"error":"forbidden"`) {
				t.Fatalf("body = %s", body)
			}
		})
	}
}

func TestClientFromXFF(t *testing.T) {
	trusted, err := parsePrefixes("trusted_proxies", []string{"10.0.0.0/8", "fd00::/8"})
	if err != nil {
		t.Fatal(err)
	}
	peer := netip.MustParseAddr("10.0.0.1")
	tests := []struct {
		name   string
		values []string
		want   string // "" = not ok
	}{
		{"none", nil, "10.0.0.1"},
		{"empty field", []string{""}, "10.0.0.1"},
		{"one", []string{"192.0.2.1"}, "192.0.2.1"},
		{"rightmost untrusted", []string{"1.1.1.1, 2.2.2.2"}, "2.2.2.2"},
		{"skip trusted", []string{"1.1.1.1, 2.2.2.2, 10.1.1.1, fd00::5"}, "2.2.2.2"},
		{"no spaces", []string{"1.1.1.1,2.2.2.2,10.1.1.1"}, "2.2.2.2"},
		{"tabs", []string{"1.1.1.1,\t2.2.2.2\t"}, "2.2.2.2"},
		{"empty elements", []string{" , 2.2.2.2 , , "}, "2.2.2.2"},
		{"fields joined in order", []string{"1.1.1.1", "2.2.2.2, 10.0.0.7"}, "2.2.2.2"},
		{"trusted last field", []string{"3.3.3.3", "10.0.0.7"}, "3.3.3.3"},
		{"all trusted", []string{"10.0.0.9, 10.0.0.8"}, "10.0.0.9"},
		{"mapped", []string{"::ffff:192.0.2.3"}, "192.0.2.3"},
		{"v6", []string{"2001:db8::1"}, "2001:db8::1"},
		{"v6 port", []string{"[2001:db8::1]:80"}, "2001:db8::1"},
		{"v4 port", []string{"192.0.2.1:80"}, "192.0.2.1"},
		{"unknown", []string{"unknown"}, ""},
		{"hostname", []string{"proxy.example"}, ""},
		{"zone", []string{"fe80::1%eth0"}, ""},
		{"v6 brackets no port", []string{"[2001:db8::1]"}, ""},
		{"bad octet", []string{"192.0.2.256"}, ""},
		{"malformed behind trusted", []string{"1.1.1.1, bogus, 10.0.0.3"}, ""},
		{"junk left of client ignored", []string{"bogus, 2.2.2.2"}, "2.2.2.2"},
		{"overlong", []string{"[0000:0000:0000:0000:0000:ffff:255.255.255.255]:000065535"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var values [][]byte
			for _, v := range tt.values {
				values = append(values, []byte(v))
			}
			got, ok := clientFromXFF(values, &trusted, peer)
			if tt.want == "" {
				if ok {
					t.Fatalf("got %v, want failure", got)
				}
				return
			}
			if !ok || got != netip.MustParseAddr(tt.want) {
				t.Fatalf("got %v %v, want %s", got, ok, tt.want)
			}
		})
	}
}

func TestPrefixSetContains(t *testing.T) {
	ps, err := parsePrefixes("allow", []string{"10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::1", "0.0.0.0/32"})
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{
		"10.255.255.255": true, "11.0.0.0": false, "192.0.2.7": true, "192.0.2.8": false,
		"2001:db8:ffff::1": true, "2001:db9::": false, "::1": true, "::2": false, "0.0.0.0": true,
	} {
		if got := ps.contains(netip.MustParseAddr(addr)); got != want {
			t.Errorf("contains(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestMetrics(t *testing.T) {
	f := mustNew(t, "", `{"allow":["10.0.0.0/8"],"deny":["10.1.0.0/16"],"trusted_proxies":["127.0.0.1"]}`)
	counter := func(reason string) uint64 {
		return metrics.GetOrCreateCounter(`weir_ip_restriction_rejected_total{route="_global",reason="` + reason + `"}`).Get()
	}
	before := [3]uint64{counter("deny"), counter("not_allowed"), counter("unknown_client")}
	for _, req := range []struct {
		peer string
		xff  []string
	}{
		{"10.1.0.1", nil},                   // deny
		{"11.0.0.1", nil},                   // not_allowed
		{"127.0.0.1", []string{"nope"}},     // unknown_client
		{"10.2.0.1", nil},                   // allowed
		{"127.0.0.1", []string{"10.3.3.3"}}, // allowed via xff
	} {
		plugintest.Run(t, f, fromPeer(req.peer, req.xff...))
	}
	after := [3]uint64{counter("deny"), counter("not_allowed"), counter("unknown_client")}
	for i, name := range []string{"deny", "not_allowed", "unknown_client"} {
		if after[i]-before[i] != 1 {
			t.Errorf("%s counter moved by %d, want 1", name, after[i]-before[i])
		}
	}
}

func TestRegistered(t *testing.T) { plugintest.WantRegistered(t, "ip_restriction") }

func TestOnRequestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	f := mustNew(t, "r", `{"allow":["192.0.2.0/24","2001:db8::/32"],"deny":["192.0.2.66"],"trusted_proxies":["10.0.0.0/8"]}`)
	for _, tc := range []struct {
		name string
		xff  string
		want sdk.Status
	}{
		{"allowed through xff", "6.6.6.6, 192.0.2.1, 10.0.0.3", sdk.Continue},
		{"allowed v6 port", "[2001:db8::1]:443, 10.0.0.3", sdk.Continue},
		{"denied", "192.0.2.66", sdk.Stop},
		{"not allowed", "198.51.100.1", sdk.Stop},
		{"malformed", "unknown", sdk.Stop},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, c := plugintest.NewCtx(fromPeer("10.0.0.1", tc.xff))
			defer sdk.ReleaseCtx(c)
			plugintest.WantOnRequestAllocs(t, f, c, tc.want, 403)
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
