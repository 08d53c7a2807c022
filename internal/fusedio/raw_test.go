package fusedio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// TestRawConnConcurrentReadWrite: a RawConn read on one goroutine while
// another writes (rueidis' pipeline), with the TCP connection's deadlines
// and end of stream.
func TestRawConnConcurrentReadWrite(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		s, err := ln.Accept()
		if err != nil {
			return
		}
		_, _ = io.Copy(s, s) // echo until the client closes its side
		s.Close()
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := NewRaw(nc)
	if _, ok := c.(*RawConn); !ok {
		t.Fatalf("NewRaw of a TCP connection is a %T", c)
	}
	const total = 1 << 20
	msg := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB a write
	go func() {
		for sent := 0; sent < total; sent += len(msg) {
			if _, err := c.Write(msg); err != nil {
				return
			}
		}
	}()
	got := make([]byte, 0, total)
	buf := make([]byte, 7000)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for len(got) < total {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("after %d bytes: %v", len(got), err)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, bytes.Repeat(msg, total/len(msg))) {
		t.Fatal("echoed bytes differ")
	}
	// A read deadline ends a read that gets nothing.
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past its deadline: %v, want a deadline error", err)
	}
	// The peer's close is an end of stream.
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_ = c.(*RawConn).Conn.(*net.TCPConn).CloseWrite()
	if _, err := c.Read(buf); err != io.EOF {
		t.Fatalf("read after the peer closed: %v, want EOF", err)
	}
	c.Close()
}
