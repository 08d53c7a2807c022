package fusedio

import "testing"

func TestBareLFBlock(t *testing.T) {
	for in, want := range map[string]bool{
		"GET / HTTP/1.1\nHost: x\n\n":                       true,
		"GET / HTTP/1.1\r\nHost: x\n\n":                     true,
		"GET / HTTP/1.1\r\nHost: x\n\r\n":                   true,
		"POST / HTTP/1.1\nContent-Length: 3\n\nabc":         true,
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n":                 false,
		"GET / HTTP/1.1\r\nHost: x\r\n":                     false, // more to come
		"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\n\n\n":  false, // the body's
		"GET / HTTP/1.1\nHost: x\n\nGET / HTTP/1.1\r\n\r\n": false, // fasthttp parses it
		"\n\n":         false, // stray line ends between requests
		"\r\n":         false,
		"GET / HTTP/1": false,
	} {
		if got := bareLFBlock([]byte(in)); got != want {
			t.Errorf("%q: %v, want %v", in, got, want)
		}
	}
}
