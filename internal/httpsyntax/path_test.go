package httpsyntax

import "testing"

func TestValidPath(t *testing.T) {
	for p, want := range map[string]bool{
		"/": true, "/a/b?": true, "/a b": true, "": false, "a/b": false,
		"/a\x00b": false, "/a\rb": false, "/a\nb": false, "/a\x7fb": false, `/a\b`: false,
	} {
		if got := ValidPath([]byte(p)); got != want {
			t.Errorf("ValidPath(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestAppendEscapedPath(t *testing.T) {
	for in, want := range map[string]string{
		"/a b/c:d@e":   "/a%20b/c:d@e",
		"/x?y#z":       "/x%3Fy%23z",
		"/ü":           "/%C3%BC",
		"/-._~!$&'()*": "/-._~!$&'()*",
		"/%":           "/%25",
	} {
		if got := string(AppendEscapedPath([]byte("pre"), []byte(in))); got != "pre"+want {
			t.Errorf("AppendEscapedPath(%q) = %q, want %q", in, got, "pre"+want)
		}
	}
}
