package proxy

import (
	"bytes"
	"encoding/base64"
	"io"
	"testing"
	"testing/iotest"
)

func TestGRPCWebOf(t *testing.T) {
	for ct, want := range map[string]grpcWebMode{
		"application/grpc-web": grpcWebBinary, "application/grpc-web+proto": grpcWebBinary,
		"application/grpc-web;charset=x": grpcWebBinary, "application/grpc-web-text": grpcWebText,
		"application/grpc-web-text+proto": grpcWebText, "application/grpc": 0, "application/grpc+proto": 0,
		"application/grpc-webx": 0, "application/grpc-web-textual": 0, "": 0,
	} {
		if got := grpcWebOf([]byte(ct)); got != want {
			t.Errorf("grpcWebOf(%q) = %d, want %d", ct, got, want)
		}
	}
}

// TestGRPCWebTextDecoding: base64 in padded pieces, one after another,
// buffered or streamed in reads that split quanta anywhere.
func TestGRPCWebTextDecoding(t *testing.T) {
	pieces := [][]byte{{0, 0, 0, 0, 1, 'a'}, {0, 0, 0, 0, 2, 'b', 'c'}, []byte("0123456789")}
	var text, want []byte
	for _, p := range pieces {
		text = base64.StdEncoding.AppendEncode(text, p)
		want = append(want, p...)
	}
	out, rest, err := appendTextDecoded(nil, text)
	if err != nil || len(rest) != 0 || !bytes.Equal(out, want) {
		t.Fatalf("buffered: %q %q %v, want %q", out, rest, err, want)
	}
	got, err := io.ReadAll(&grpcWebTextBody{r: iotest.OneByteReader(bytes.NewReader(text))})
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("streamed a byte at a time: %q %v, want %q", got, err, want)
	}
	for _, bad := range []string{"!!!!", "AAA", "AA=A"} {
		if _, err := io.ReadAll(&grpcWebTextBody{r: bytes.NewReader([]byte(bad))}); err != errGRPCWebText {
			t.Errorf("streamed %q: err %v, want errGRPCWebText", bad, err)
		}
	}
}
