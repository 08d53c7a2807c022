package router

import "testing"

func TestNormalizeHost(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"example.com", "example.com"},
		{"Example.COM", "example.com"},
		{"example.com:8080", "example.com"},
		{"example.com.", "example.com"},
		{"example.com.:443", "example.com"},
		{"example.com..", "example.com"},
		{"127.0.0.1:80", "127.0.0.1"},
		{"[::1]", "[::1]"},
		{"[::1]:8080", "[::1]"},
		{"[0:0:0:0:0:0:0:1]", "[::1]"},
		{"[2001:DB8::A]:443", "[2001:db8::a]"},
		{"[::ffff:0:0]", "[::ffff:0.0.0.0]"},
		{"[fe80::1%25eth0]", "[fe80::1%25eth0]"},
		{"[NOT-V6]:80", "[not-v6]"},
		{"[unclosed", "[unclosed"},
		{"::1", "::1"},
		{"a:b:c", "a:b:c"},
		{":80", ""},
		{"UPPER_case.Test:1", "upper_case.test"},
	}
	for _, tt := range tests {
		if got := string(NormalizeHost(nil, []byte(tt.in))); got != tt.want {
			t.Errorf("NormalizeHost(%q) = %q, want %q", tt.in, got, tt.want)
		}
		// In place, and appending to a non-empty dst.
		b := []byte(tt.in)
		if got := string(NormalizeHost(b[:0], b)); got != tt.want {
			t.Errorf("NormalizeHost(%q) in place = %q, want %q", tt.in, got, tt.want)
		}
		if got := string(NormalizeHost([]byte("x"), []byte(tt.in))); got != "x"+tt.want {
			t.Errorf("NormalizeHost(\"x\", %q) = %q, want %q", tt.in, got, "x"+tt.want)
		}
	}
}

func TestNormalizeHostAllocs(t *testing.T) {
	buf := make([]byte, 0, 64)
	for _, h := range []string{"API.Example.com:8080", "[0:0::1]:80"} {
		in := []byte(h)
		if n := testing.AllocsPerRun(100, func() { buf = NormalizeHost(buf[:0], in) }); n != 0 {
			t.Errorf("NormalizeHost(%q) allocates %v times", h, n)
		}
	}
}

// Configured hosts are canonicalized like request hosts, so both meet.
func TestHostForms(t *testing.T) {
	r := mustCompile(t, []Spec{
		0: {Hosts: []string{"API.Example.COM."}},
		1: {Hosts: []string{"[0:0::1]"}},
		2: {Hosts: []string{"*.Example.ORG"}},
		3: {Hosts: []string{"*.b.example.org"}},
		4: {Hosts: []string{"10.0.0.1"}},
	})
	tests := []struct{ host, want string }{
		{"api.example.com", "Found route=0 path=0 strip=0 params="},
		{"API.EXAMPLE.COM:1", "Found route=0 path=0 strip=0 params="},
		{"api.example.com.", "Found route=0 path=0 strip=0 params="},
		{"[::1]:9", "Found route=1 path=0 strip=0 params="},
		{"a.example.org", "Found route=2 path=0 strip=0 params="},
		{"a.b.example.org", "Found route=3 path=0 strip=0 params="},
		{"x.a.b.example.org", "Found route=3 path=0 strip=0 params="},
		{"b.example.org", "Found route=2 path=0 strip=0 params="},
		{"example.org", "NotFound"},
		{"xexample.org", "NotFound"},
		{"10.0.0.1:8080", "Found route=4 path=0 strip=0 params="},
		{"1.10.0.0.1", "NotFound"},
		{"", "NotFound"},
		{"[::2]", "NotFound"},
	}
	for _, tt := range tests {
		if got := doMatch(r, tt.host, "GET", "/", nil); got != tt.want {
			t.Errorf("host %q: got %s, want %s", tt.host, got, tt.want)
		}
	}
}
