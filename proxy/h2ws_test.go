package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// testH2WS is a WebSocket's stream on an HTTP/2 connection whose client
// reads everything, its send window win.
func testH2WS(t *testing.T, win int64) *h2WSConn {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	go func() { _, _ = io.Copy(io.Discard, b) }()
	c := &h2Conn{nc: a, streams: map[uint32]*h2Stream{}, sendWin: 1 << 20, recvWin: h2ConnWindow, peerMax: 16384}
	c.cond.L = &c.mu
	c.sendFn = c.sendAll
	st := &h2Stream{c: c, id: 1, sendWin: win, recvWin: h2StreamWindow, ws: true, long: true, cl: -1}
	st.body = newH2Pipe(c, 1)
	c.streams[1] = st
	sc := &h2WSConn{st: st, p: st.body, local: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, closed: make(chan struct{})}
	sc.rd.cancel = make(chan struct{})
	sc.p.dl = &sc.rd
	return sc
}

// TestH2WSConnDeadlines: the stream stands in for a socket in the
// tunnel, so its read deadline interrupts a read and can be set again,
// a write waiting for the client's window gives up at its deadline, and
// Close ends reads and writes.
func TestH2WSConnDeadlines(t *testing.T) {
	c := testH2WS(t, 1<<20)
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
	go c.p.write([]byte("0123456789"))
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
	_ = c.SetWriteDeadline(time.Time{})
	_ = c.Close()
	if _, err := c.Read(buf); err == nil {
		t.Fatal("a read after Close succeeded")
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("a write after Close: %v", err)
	}
	if c.LocalAddr().String() != "127.0.0.1:1" {
		t.Fatal("LocalAddr")
	}
}

// TestH2WSConnWindow: a write the client's window holds back waits for
// its WINDOW_UPDATE, and gives up at the write deadline without one.
func TestH2WSConnWindow(t *testing.T) {
	c := testH2WS(t, 0)
	_ = c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := c.Write([]byte("held")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a write without window past its deadline: %v", err)
	}
	_ = c.SetWriteDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, err := c.Write([]byte("sent"))
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a write without window returned: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	hc := c.st.c
	hc.mu.Lock()
	c.st.sendWin += 4
	hc.cond.Broadcast()
	hc.mu.Unlock()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after the window opened: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the write did not go once the window opened")
	}
}
