package config

import (
	"testing"

	"github.com/weirgw/weir/internal/httpsyntax"
)

func TestCanonicalTargetURL(t *testing.T) {
	cases := []struct{ in, out, err string }{
		{in: "http://127.0.0.1:9001", out: "http://127.0.0.1:9001"},
		{in: "http://127.0.0.1", out: "http://127.0.0.1:80"},
		{in: "https://Api.Example.COM/", out: "https://api.example.com:443"},
		{in: "HTTPS://h:0443", out: "https://h:443"},
		{in: "http://[::1]:8080", out: "http://[::1]:8080"},
		{in: "http://[::1]", out: "http://[::1]:80"},
		{in: "http://svc_internal.local:1", out: "http://svc_internal.local:1"},
		{in: "", err: "a target needs a url: write it as http://HOST:PORT, such as http://10.0.0.7:9001"},
		{in: "127.0.0.1:9001", err: `"127.0.0.1:9001" has no scheme: write "http://127.0.0.1:9001"`},
		{in: "users", err: `"users" has no scheme: write it as http://HOST:PORT, such as http://10.0.0.7:9001`},
		{in: "ftp://h:1", err: `scheme "ftp" of "ftp://h:1" is not supported: use http or https (HTTP/1.1), h2c or grpc (HTTP/2 cleartext), h2 or grpcs (HTTP/2 over TLS)`},
		{in: "://h", err: `"://h" is not a URL: write it as http://HOST:PORT, such as http://10.0.0.7:9001`},
		{in: "http://", err: `"http://" has no host: write it as http://HOST:PORT, such as http://10.0.0.7:9001`},
		{in: "http://:80", err: `"http://:80": the host is empty`},
		{in: "http://u:p@h", err: `"http://u:p@h" holds user info: targets take no credentials in the URL; add an Authorization header with the request_transformer plugin instead`},
		{in: "http://h/api", err: `"http://h/api" has a path: a target is scheme://host:port only; use strip_path or the request_transformer plugin to change paths`},
		{in: "http://h?", err: `"http://h?" has a query: a target is scheme://host:port only`},
		{in: "http://h#f", err: `"http://h#f" has a fragment: a target is scheme://host:port only`},
		{in: "http://h:0", err: `"http://h:0": port "0" is not a number from 1 to 65535`},
		{in: "http://h:65536", err: `"http://h:65536": port "65536" is not a number from 1 to 65535`},
		{in: "http://-h-:1", err: `"http://-h-:1": host "-h-" is not an IP address or host name`},
		{in: "http://[fe80::1%25eth0]:1", err: `"http://[fe80::1%25eth0]:1": host "fe80::1%eth0" is not an IP address or host name (IPv6 zones are not supported)`},
	}
	for _, tc := range cases {
		out, err := CanonicalTargetURL(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("CanonicalTargetURL(%q) error = %v\nwant %s", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || out != tc.out {
			t.Errorf("CanonicalTargetURL(%q) = %q, %v; want %q", tc.in, out, err, tc.out)
		}
	}
}

func TestCheckListenAddr(t *testing.T) {
	good := []string{":8080", "0.0.0.0:80", "127.0.0.1:0", "[::1]:8080", "[::]:443", "localhost:65535", "gw.internal:8080"}
	for _, a := range good {
		if err := checkListenAddr(a); err != nil {
			t.Errorf("checkListenAddr(%q): %v", a, err)
		}
	}
	bad := map[string]string{
		"":             `the address is empty: write ":8080" to listen on every interface or "127.0.0.1:8080" for this host only`,
		"8080":         `"8080" is not host:port: write ":8080" to listen on port 8080 on every interface`,
		"localhost":    `"localhost" is not host:port: write it as ":8080" or "127.0.0.1:8080"`,
		":http":        `port "http" of ":http" is not a number from 0 to 65535`,
		":+80":         `port "+80" of ":+80" is not a number from 0 to 65535`,
		":99999":       `port "99999" of ":99999" is not a number from 0 to 65535`,
		"a b:80":       `"a b:80": host "a b" is not an IP address or host name`,
		"[::1%lo]:80":  `"[::1%lo]:80": host "::1%lo" is not an IP address or host name (IPv6 zones are not supported)`,
		"1.2.3.4.5:80": "", // a valid host name syntactically
	}
	for a, want := range bad {
		err := checkListenAddr(a)
		if want == "" {
			if err != nil {
				t.Errorf("checkListenAddr(%q): %v", a, err)
			}
			continue
		}
		if err == nil || err.Error() != want {
			t.Errorf("checkListenAddr(%q) = %v\nwant %s", a, err, want)
		}
	}
}

func TestLoopbackAndCollisions(t *testing.T) {
	for a, want := range map[string]bool{
		"127.0.0.1:1": true, "127.0.0.2:1": true, "[::1]:1": true, "localhost:1": true, "LOCALHOST:1": true,
		":1": false, "0.0.0.0:1": false, "[::]:1": false, "10.0.0.1:1": false, "example.com:1": false, "bad": false,
	} {
		if isLoopback(a) != want {
			t.Errorf("isLoopback(%q) = %v", a, !want)
		}
	}
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{":8080", ":8080", true},
		{":8080", "127.0.0.1:8080", true},
		{"0.0.0.0:8080", "10.0.0.1:8080", true},
		{"[::]:8080", "127.0.0.1:8080", true},
		{"127.0.0.1:8080", "10.0.0.1:8080", false},
		{":8080", ":8081", false},
		{":0", ":0", false}, // each gets its own free port
	} {
		if got := sameListener(tc.a, tc.b); got != tc.want {
			t.Errorf("sameListener(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}

func TestCheckRouteHost(t *testing.T) {
	good := []string{"api.example.com", "*.example.org", "API.Example.com", "localhost", "127.0.0.1", "api.example.com:8443", "[::1]", "[::1]:80", "a-b.c_d.e"}
	for _, h := range good {
		if err := checkRouteHost(h); err != nil {
			t.Errorf("checkRouteHost(%q): %v", h, err)
		}
	}
	bad := map[string]string{
		"":                       `the host is empty: write a host name such as "api.example.com" or "*.example.com"`,
		"*":                      `"*" is not a host pattern: leave hosts out to match every host`,
		"*.":                     `"*." is not a host name: write a host name such as "api.example.com" or "*.example.com"`,
		"a.*.com":                `"a.*.com": a wildcard is only allowed as the first label, as in "*.example.com"`,
		"**.com":                 `"**.com": a wildcard is only allowed as the first label, as in "*.example.com"`,
		"a..com":                 `"a..com" is not a host name: write a host name such as "api.example.com" or "*.example.com"`,
		"h:0":                    `"h:0" has an invalid port: write a host name such as "api.example.com" or "*.example.com"`,
		"h:x":                    `"h:x" has an invalid port: write a host name such as "api.example.com" or "*.example.com"`,
		"[::1":                   `"[::1" has an unclosed [: write IPv6 addresses as [::1]`,
		"[zz]":                   `"[zz]" is not an IPv6 address`,
		"[::1]x":                 `"[::1]x" has an invalid port`,
		"https://a.com":          `"https://a.com" has an invalid port: write a host name such as "api.example.com" or "*.example.com"`,
		"a.com/x":                `"a.com/x" is not a host name: write a host name such as "api.example.com" or "*.example.com"`,
		"-a.com":                 `"-a.com" is not a host name: write a host name such as "api.example.com" or "*.example.com"`,
		"x" + string(rune(0xe9)): `"xé" is not a host name: write a host name such as "api.example.com" or "*.example.com"`,
	}
	for h, want := range bad {
		err := checkRouteHost(h)
		if err == nil || err.Error() != want {
			t.Errorf("checkRouteHost(%q) = %v\nwant %s", h, err, want)
		}
	}
}

func TestCheckHashOn(t *testing.T) {
	for _, s := range []string{"ip", "consumer", "path", "header:X-User-Id", "cookie:session_id"} {
		if err := checkHashOn(s); err != nil {
			t.Errorf("checkHashOn(%q): %v", s, err)
		}
	}
	bad := map[string]string{
		"":           `invalid hash_on "": use ip, consumer, path, header:NAME or cookie:NAME`,
		"IP":         `invalid hash_on "IP": use ip, consumer, path, header:NAME or cookie:NAME`,
		"header:":    `hash_on "header:": "" is not a header name`,
		"header:a b": `hash_on "header:a b": "a b" is not a header name`,
		"cookie:":    `hash_on "cookie:": "" is not a cookie name`,
		"cookie:a=b": `hash_on "cookie:a=b": "a=b" is not a cookie name`,
		"query:x":    `invalid hash_on "query:x": use ip, consumer, path, header:NAME or cookie:NAME`,
	}
	for s, want := range bad {
		err := checkHashOn(s)
		if err == nil || err.Error() != want {
			t.Errorf("checkHashOn(%q) = %v\nwant %s", s, err, want)
		}
	}
}

func TestTokensAndNames(t *testing.T) {
	for s, want := range map[string]bool{"X-Version": true, "x_y.z!#$%&'*+^`|~": true, "": false, "a b": false, "a:b": false, "a\n": false, "é": false} {
		if httpsyntax.IsToken(s) != want {
			t.Errorf("isToken(%q) = %v", s, !want)
		}
	}
	for s, want := range map[string]bool{"users-v2.api_1": true, "": false, "a b": false, "a/b": false, "é": false} {
		if validName(s) != want {
			t.Errorf("validName(%q) = %v", s, !want)
		}
	}
	for s, want := range map[string]bool{"v2": true, "a\tb": true, "": true, "a\r\nb": false, "a\x00": false, "a\x7f": false} {
		if httpsyntax.ValidFieldValue(s) != want {
			t.Errorf("validHeaderValue(%q) = %v", s, !want)
		}
	}
}
