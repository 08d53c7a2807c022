package jsonesc

import "testing"

func TestAppend(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", `"plain"`},
		{"a\"b\\c", `"a\"b\\c"`},
		{"line\r\nnext\t", `"line\r\nnext\t"`},
		{"\x00\x1b\x7f", `"\u0000\u001b\u007f"`},
		{"café", `"café"`},
		{"bad \xff\xc3", `"bad \ufffd\ufffd"`},
	} {
		if got := string(Append(nil, tc.in)); got != tc.want {
			t.Errorf("%q: got %s, want %s", tc.in, got, tc.want)
		}
		if got := string(Append(nil, []byte(tc.in))); got != tc.want {
			t.Errorf("%q as bytes: got %s, want %s", tc.in, got, tc.want)
		}
	}
}
