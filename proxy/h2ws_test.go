package proxy

import (
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"testing"
	"time"
)

// TestH2StreamConnDeadlines: the stream stands in for a socket in the
// tunnel, so its read deadline interrupts a read and can be set again
// (x/net's own would reset the stream), and Close ends reads and lets
// the handler return.
func TestH2StreamConnDeadlines(t *testing.T) {
	pr, pw := io.Pipe()
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	c := newH2StreamConn(pr, httptest.NewRecorder(), &net.TCPConn{})
	c.local = local
	buf := make([]byte, 8)
	_ = c.SetReadDeadline(time.Unix(1, 0))
	if _, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a read past its deadline: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	if _, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("a read waiting for its deadline: %v after %v", err, time.Since(start))
	}
	_ = c.SetReadDeadline(time.Time{})
	go func() { _, _ = pw.Write([]byte("0123456789")) }()
	got := make([]byte, 0, 10)
	for len(got) < 10 {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("read after the deadline was lifted: %v", err)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != "0123456789" {
		t.Fatalf("read %q", got)
	}
	if _, err := c.Write([]byte("out")); err != nil {
		t.Fatalf("write: %v", err)
	}
	_ = c.SetWriteDeadline(time.Unix(1, 0))
	if _, err := c.Write([]byte("late")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a write past its deadline: %v", err)
	}
	done := make(chan struct{})
	go func() { c.wait(); close(done) }()
	_ = c.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("wait did not return after Close")
	}
	if _, err := c.Read(buf); err == nil {
		t.Fatal("a read after Close succeeded")
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("a write after Close: %v", err)
	}
	if c.LocalAddr() != local {
		t.Fatal("LocalAddr")
	}
}
