package keyauth

import (
	"testing"

	"github.com/valyala/fasthttp"
)

func TestStripQuery(t *testing.T) {
	names := []string{"apikey", "k y"}
	tests := []struct {
		in, want string
		removed  bool
	}{
		{"", "", false},
		{"a=1", "a=1", false},
		{"apikey=x", "", true},
		{"apikey", "", true},
		{"apikey=", "", true},
		{"a=1&apikey=x", "a=1", true},
		{"apikey=x&a=1", "a=1", true},
		{"a=1&apikey=x&b=2&apikey=y", "a=1&b=2", true},
		{"a=%20&apikey=x&b=+", "a=%20&b=+", true},
		{"api%6bey=x&a", "a", true},
		{"API%6Bey=x", "API%6Bey=x", false},
		{"k+y=x&k%20y=z&ky=1", "ky=1", true},
		{"apikeyx=1&xapikey=2", "apikeyx=1&xapikey=2", false},
		{"a=1&&b=2", "a=1&&b=2", false},
		{"&apikey=1&", "&", true},
		{"x=apikey", "x=apikey", false},
		{"apikey%=1", "apikey%=1", false},
	}
	for _, tt := range tests {
		got, removed := stripQuery(nil, []byte(tt.in), names)
		if string(got) != tt.want || removed != tt.removed {
			t.Errorf("stripQuery(%q) = %q %v, want %q %v", tt.in, got, removed, tt.want, tt.removed)
		}
	}
}

func TestDecodedEquals(t *testing.T) {
	tests := []struct {
		raw, name string
		want      bool
	}{
		{"apikey", "apikey", true},
		{"apikey", "apikeyx", false},
		{"apikeyx", "apikey", false},
		{"%61pikey", "apikey", true},
		{"a+b", "a b", true},
		{"a%2Bb", "a+b", true},
		{"a%zzb", "a%zzb", true},
		{"a%2", "a%2", true},
		{"a%+", "a%+", true},
		{"a%+", "a% ", false},
		{"", "", true},
	}
	for _, tt := range tests {
		if got := decodedEquals([]byte(tt.raw), tt.name); got != tt.want {
			t.Errorf("decodedEquals(%q, %q) = %v, want %v", tt.raw, tt.name, got, tt.want)
		}
	}
}

// FuzzStripQuery checks stripQuery against fasthttp's own parser: after
// stripping, no configured name is left, and every other parameter is still
// there, in order, with its value.
func FuzzStripQuery(f *testing.F) {
	for _, s := range []string{"", "a=1&apikey=x", "api%6Bey=x&b", "apikey%", "%%&&==", "k+y=1&k%20y", "a=%2", "apikey=1&apikey=2&c=%zz"} {
		f.Add(s)
	}
	names := []string{"apikey", "k y"}
	f.Fuzz(func(t *testing.T, q string) {
		out, removed := stripQuery(nil, []byte(q), names)
		var before, after fasthttp.Args
		before.Parse(q)
		after.ParseBytes(out)
		var want []string
		hadName := false
		for k, v := range before.All() {
			if string(k) == names[0] || string(k) == names[1] {
				hadName = true
				continue
			}
			want = append(want, string(k)+"\x00"+string(v))
		}
		if removed != hadName {
			t.Fatalf("stripQuery(%q) removed=%v, but the parsed query had a name: %v", q, removed, hadName)
		}
		var got []string
		for k, v := range after.All() {
			got = append(got, string(k)+"\x00"+string(v))
		}
		if len(got) != len(want) {
			t.Fatalf("stripQuery(%q) = %q: args %q, want %q", q, out, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("stripQuery(%q) = %q: args %q, want %q", q, out, got, want)
			}
		}
		if !removed && string(out) != q {
			t.Fatalf("stripQuery(%q) changed the query to %q without removing anything", q, out)
		}
	})
}
