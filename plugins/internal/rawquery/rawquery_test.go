package rawquery

import (
	"testing"

	"github.com/valyala/fasthttp"
)

func TestStrip(t *testing.T) {
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
		{"=apikey&=", "=apikey&=", false},
	}
	for _, tt := range tests {
		got, removed := Strip(nil, []byte(tt.in), names)
		if string(got) != tt.want || removed != tt.removed {
			t.Errorf("Strip(%q) = %q %v, want %q %v", tt.in, got, removed, tt.want, tt.removed)
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
		{"token", "token", true}, {"t%6Fken", "token", true}, {"t%6fken", "token", true},
		{"a%20b", "a b", true}, {"%zz", "%zz", true},
		{"token", "tokens", false}, {"tokens", "token", false}, {"TOKEN", "token", false},
	}
	for _, tt := range tests {
		if got := DecodedEquals([]byte(tt.raw), tt.name); got != tt.want {
			t.Errorf("DecodedEquals(%q, %q) = %v, want %v", tt.raw, tt.name, got, tt.want)
		}
	}
}

func TestNextAndKey(t *testing.T) {
	tests := []struct {
		in   string
		segs []string
		keys []string
	}{
		{"", []string{""}, []string{""}},
		{"a=1", []string{"a=1"}, []string{"a"}},
		{"a=1&&b", []string{"a=1", "", "b"}, []string{"a", "", "b"}},
		{"=v&k==x&", []string{"=v", "k==x", ""}, []string{"", "k", ""}},
	}
	for _, tt := range tests {
		var segs, keys []string
		for rest := []byte(tt.in); ; {
			seg, more := Next(&rest)
			segs = append(segs, string(seg))
			keys = append(keys, string(Key(seg)))
			if !more {
				break
			}
		}
		if len(segs) != len(tt.segs) {
			t.Fatalf("%q: segments %q, want %q", tt.in, segs, tt.segs)
		}
		for i := range segs {
			if segs[i] != tt.segs[i] || keys[i] != tt.keys[i] {
				t.Fatalf("%q: segments %q keys %q, want %q %q", tt.in, segs, keys, tt.segs, tt.keys)
			}
		}
	}
}

func TestMatchesAny(t *testing.T) {
	names := []string{"apikey", "k y"}
	for key, want := range map[string]bool{
		"apikey": true, "api%6Bey": true, "k+y": true, "k%20y": true,
		"": false, "apike": false, "ky": false,
	} {
		if got := MatchesAny([]byte(key), names); got != want {
			t.Errorf("MatchesAny(%q) = %v, want %v", key, got, want)
		}
	}
}

func TestUnhex(t *testing.T) {
	for c := 0; c < 256; c++ {
		want := byte(16)
		switch {
		case '0' <= c && c <= '9':
			want = byte(c - '0')
		case 'a' <= c && c <= 'f':
			want = byte(c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			want = byte(c - 'A' + 10)
		}
		if got := Unhex(byte(c)); got != want {
			t.Errorf("Unhex(%q) = %d, want %d", byte(c), got, want)
		}
	}
}

func TestStripZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race (sync.Pool drops items); make unit runs this test")
	}
	q := []byte("a=1&apikey=x&b=%20&api%6Bey=y&c")
	names := []string{"apikey"}
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { buf, _ = Strip(buf[:0], q, names) }); n != 0 {
		t.Fatalf("%v allocations, want 0", n)
	}
	if string(buf) != "a=1&b=%20&c" {
		t.Fatalf("Strip = %q", buf)
	}
}

// FuzzStrip checks Strip against fasthttp's own parser: after stripping,
// no configured name is left, and every other parameter is still there,
// in order, with its value.
func FuzzStrip(f *testing.F) {
	for _, s := range []string{"", "a=1&apikey=x", "api%6Bey=x&b", "apikey%", "%%&&==", "k+y=1&k%20y", "a=%2", "apikey=1&apikey=2&c=%zz"} {
		f.Add(s)
	}
	names := []string{"apikey", "k y"}
	f.Fuzz(func(t *testing.T, q string) {
		out, removed := Strip(nil, []byte(q), names)
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
			t.Fatalf("Strip(%q) removed=%v, but the parsed query had a name: %v", q, removed, hadName)
		}
		var got []string
		for k, v := range after.All() {
			got = append(got, string(k)+"\x00"+string(v))
		}
		if len(got) != len(want) {
			t.Fatalf("Strip(%q) = %q: args %q, want %q", q, out, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("Strip(%q) = %q: args %q, want %q", q, out, got, want)
			}
		}
		if !removed && string(out) != q {
			t.Fatalf("Strip(%q) changed the query to %q without removing anything", q, out)
		}
	})
}
