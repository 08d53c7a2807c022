package fusedio

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// pair returns a wrapped client end and the raw server end of a loopback
// TCP connection.
// peerReceived is all the peer got until the connection closed (within a
// second).
func peerReceived(t *testing.T, srv net.Conn) []byte {
	t.Helper()
	_ = srv.SetReadDeadline(time.Now().Add(time.Second))
	b, err := io.ReadAll(srv)
	if err != nil {
		t.Fatalf("peer read: %v (the connection did not close)", err)
	}
	return b
}

func pair(t testing.TB, slack time.Duration) (*Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		ch <- c
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	srv := <-ch
	if srv == nil {
		t.Fatal("accept failed")
	}
	c := New(nc, slack)
	t.Cleanup(func() { _ = c.Abort(); _ = srv.Close() })
	if c.raw == nil {
		t.Fatal("a TCP connection should have a raw descriptor")
	}
	return c, srv
}

// answerer reads lines on srv and answers each with "re:" + line.
func answerer(srv net.Conn) <-chan []string {
	got := make(chan []string, 1)
	go func() {
		var lines []string
		br := bufio.NewReader(srv)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				got <- lines
				return
			}
			lines = append(lines, l)
			if _, err := io.WriteString(srv, "re:"+l); err != nil {
				got <- lines
				return
			}
		}
	}()
	return got
}

func TestHeldWriteSentByRead(t *testing.T) {
	c, srv := pair(t, 0)
	got := answerer(srv)
	br := bufio.NewReader(c)
	for i, msg := range []string{"one\n", "two\n", "three\n"} {
		if i > 0 {
			c.CheckBeforeSend() // a reused connection proves quiet first
		}
		c.Hold()
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		if !c.hold || !c.holding() {
			t.Fatal("the write should be held")
		}
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if line != "re:"+msg {
			t.Fatalf("round %d: got %q", i, line)
		}
		if c.holding() {
			t.Fatal("held bytes should be gone once sent")
		}
	}
	_ = c.Abort()
	if lines := <-got; len(lines) != 3 {
		t.Fatalf("server saw %q", lines)
	}
}

func TestCheckFindsUnsolicitedBytes(t *testing.T) {
	c, srv := pair(t, 0)
	if _, err := srv.Write([]byte("garbage")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // let it land
	c.CheckBeforeSend()
	c.Hold()
	if _, err := io.WriteString(c, "GET\n"); err != nil {
		t.Fatal(err)
	}
	n, err := c.Read(make([]byte, 64))
	if err != ErrStale || n != 0 || !c.Unsent() {
		t.Fatalf("got n=%d err=%v unsent=%v, want ErrStale with nothing read", n, err, c.Unsent())
	}
	// Nothing was sent: the peer sees no request.
	_ = c.Abort()
	if b := peerReceived(t, srv); len(b) != 0 {
		t.Fatalf("the request went out: %q", b)
	}
}

func TestCheckFindsClosedPeer(t *testing.T) {
	c, srv := pair(t, 0)
	_ = srv.Close()
	time.Sleep(20 * time.Millisecond)
	c.CheckBeforeSend()
	c.Hold()
	_, _ = io.WriteString(c, "GET\n")
	if _, err := c.Read(make([]byte, 64)); err != ErrStale || !c.Unsent() {
		t.Fatalf("got %v, want ErrStale", err)
	}
}

func TestCheckBeforeUnheldWrite(t *testing.T) {
	c, srv := pair(t, 0)
	_ = srv.Close()
	time.Sleep(20 * time.Millisecond)
	c.CheckBeforeSend()
	if err := c.Flush(); err != ErrStale || !c.Unsent() {
		t.Fatalf("Flush: %v, want ErrStale", err)
	}
	// A quiet connection passes the same check.
	c2, srv2 := pair(t, 0)
	got := answerer(srv2)
	c2.CheckBeforeSend()
	if _, err := io.WriteString(c2, "x\n"); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(c2).ReadString('\n'); err != nil || line != "re:x\n" {
		t.Fatalf("got %q, %v", line, err)
	}
	_ = c2.Abort()
	<-got
}

func TestLargeWritesGoThrough(t *testing.T) {
	c, srv := pair(t, 0)
	big := bytes.Repeat([]byte("a"), MaxHeld+100)
	big[len(big)-1] = '\n'
	got := answerer(srv)
	c.Hold()
	if _, err := io.WriteString(c, "small\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(big); err != nil { // past MaxHeld: both go out now
		t.Fatal(err)
	}
	if c.hold || c.holding() {
		t.Fatal("holding should have ended")
	}
	br := bufio.NewReaderSize(c, 64<<10)
	for _, want := range []string{"re:small\n", "re:" + string(big)} {
		line, err := br.ReadString('\n')
		if err != nil || line != want {
			t.Fatalf("got %d bytes, %v", len(line), err)
		}
	}
	_ = c.Abort()
	<-got
}

// TestHeldWriteThatWouldBlock: the socket cannot take the held bytes (the
// peer is not reading and the buffers are full); the rest is written the
// blocking way once the peer reads, then the answer is read.
func TestHeldWriteThatWouldBlock(t *testing.T) {
	c, srv := pair(t, 0)
	// Fill the send and receive buffers while the peer reads nothing.
	var filled int
	if err := c.raw.Write(func(fd uintptr) bool {
		chunk := make([]byte, 64<<10)
		for {
			n, err := syscall.Write(int(fd), chunk)
			if err != nil {
				return true
			}
			filled += n
		}
	}); err != nil {
		t.Fatal(err)
	}
	msg := []byte("tail\n")
	done := make(chan error, 1)
	go func() {
		time.Sleep(50 * time.Millisecond) // the peer is slow to read
		if _, err := io.CopyN(io.Discard, srv, int64(filled)); err != nil {
			done <- err
			return
		}
		l, err := bufio.NewReader(srv).ReadString('\n')
		if err == nil && l != "tail\n" {
			err = errors.New("got " + l)
		}
		if err == nil {
			_, err = io.WriteString(srv, "ok\n")
		}
		done <- err
	}()
	c.Hold()
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "ok\n" {
		t.Fatalf("got %q, %v", line, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestCloseWritesHeld(t *testing.T) {
	c, srv := pair(t, 0)
	c.Hold()
	_, _ = io.WriteString(c, "last answer\n")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if b := peerReceived(t, srv); string(b) != "last answer\n" {
		t.Fatalf("got %q", b)
	}
}

func TestAbortDropsHeld(t *testing.T) {
	c, srv := pair(t, 0)
	c.Hold()
	_, _ = io.WriteString(c, "never\n")
	_ = c.Abort()
	if b := peerReceived(t, srv); len(b) != 0 {
		t.Fatalf("got %q", b)
	}
}

func TestLazyDeadlines(t *testing.T) {
	c, _ := pair(t, 100*time.Millisecond)
	base := time.Now().Add(80 * time.Millisecond)
	_ = c.SetReadDeadline(base)
	if !c.rLazy {
		t.Fatal("a first deadline must be pending")
	}
	start := time.Now()
	_, err := c.Read(make([]byte, 8)) // nothing comes: the deadline fires
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("got %v, want a deadline error", err)
	}
	if el := time.Since(start); el < 50*time.Millisecond || el > 2*time.Second {
		t.Fatalf("fired after %v", el)
	}
	// Later by less than the slack: the socket's deadline stands in.
	_ = c.SetReadDeadline(base.Add(30 * time.Millisecond))
	if c.rLazy {
		t.Fatal("a deadline within the slack should not be re-applied")
	}
	// Earlier, much later, or none at all: applied.
	for _, d := range []time.Time{base.Add(-time.Millisecond), base.Add(time.Second), {}} {
		_ = c.SetReadDeadline(d)
		if !c.rLazy {
			t.Fatalf("deadline %v should be applied", d)
		}
		c.applyRead()
	}
	// Nothing is handed to the runtime until an operation may block: a
	// held write leaves the deadline recorded, the write that goes out
	// applies it (already past here, so it times out).
	wSet := c.wSet
	_ = c.SetWriteDeadline(time.Now().Add(-time.Second))
	c.Hold()
	if _, err := c.Write([]byte("held\n")); err != nil {
		t.Fatalf("a held write does not touch the socket: %v", err)
	}
	if !c.wLazy || !c.wSet.Equal(wSet) {
		t.Fatal("the write deadline was applied by a held write")
	}
	if err := c.Flush(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("flush under a past deadline: %v, want a deadline error", err)
	}
	_ = c.Abort()
}

// TestConcurrentCloseWhileWaiting: a server closing idle connections at
// shutdown calls Close from another goroutine while Read waits.
func TestConcurrentCloseWhileWaiting(t *testing.T) {
	for i := 0; i < 20; i++ {
		c, srv := pair(t, 0)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Hold()
			_, _ = io.WriteString(c, "req\n")
			_, _ = c.Read(make([]byte, 16)) // the peer never answers
		}()
		time.Sleep(time.Duration(i%4) * time.Millisecond)
		_ = c.Close()
		wg.Wait()
		_ = srv.Close()
	}
}

func TestListenerWrapsAndWorksWithoutRaw(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var live Open
	l := Listener{Listener: ln, Slack: time.Millisecond, Open: &live}
	defer l.Close()
	go func() {
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			_, _ = io.WriteString(nc, "hi\n")
			time.Sleep(100 * time.Millisecond)
			_ = nc.Close()
		}
	}()
	ac, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	fc, ok := ac.(*Conn)
	if !ok || fc.raw == nil {
		t.Fatalf("accepted %T, want a raw *Conn", ac)
	}
	if err := fc.SetKeepAlive(true); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(fc).ReadString('\n')
	if line != "hi\n" {
		t.Fatalf("got %q", line)
	}
	if live.Len() != 1 {
		t.Fatalf("live = %d with one connection open", live.Len())
	}
	_ = fc.Close()
	_ = fc.Close() // counted out once
	if live.Len() != 0 {
		t.Fatalf("live = %d after close", live.Len())
	}

	// Not TCP (a pipe): holding and checking are off, I/O passes through.
	a, b := net.Pipe()
	pc := New(a, 0)
	pc.Hold()
	pc.CheckBeforeSend()
	if pc.raw != nil || pc.hold {
		t.Fatal("a pipe has no raw descriptor")
	}
	go func() { _, _ = io.WriteString(pc, "x") }()
	buf := make([]byte, 1)
	if _, err := io.ReadFull(b, buf); err != nil || buf[0] != 'x' {
		t.Fatalf("pipe: %q %v", buf, err)
	}
	_ = pc.Close()
	_ = b.Close()
}

func TestReadErrorsAreReported(t *testing.T) {
	c, srv := pair(t, 0)
	_ = srv.(*net.TCPConn).SetLinger(0)
	_ = srv.Close() // RST
	time.Sleep(20 * time.Millisecond)
	c.Hold()
	_, _ = io.WriteString(c, "x\n")
	_, err := c.Read(make([]byte, 8))
	if err == nil {
		t.Fatal("want an error from a reset connection")
	}
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) && err != io.EOF &&
		!strings.Contains(err.Error(), "reset") {
		t.Fatalf("unexpected error %v", err)
	}
}

// TestCheckAfterIdleDeadline: a pooled connection whose deadline from an
// earlier request has passed is checked under the new deadline, not
// declared dead by the old one.
func TestCheckAfterIdleDeadline(t *testing.T) {
	c, srv := pair(t, 0)
	got := answerer(srv)
	_ = c.SetDeadline(time.Now().Add(10 * time.Millisecond))
	c.applyRead()
	c.applyWrite()
	time.Sleep(30 * time.Millisecond) // the old deadline passes while idle
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	c.CheckBeforeSend()
	if err := c.Flush(); err != nil {
		t.Fatalf("a quiet connection failed its check: %v", err)
	}
	if _, err := io.WriteString(c, "again\n"); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "re:again\n" {
		t.Fatalf("got %q, %v", line, err)
	}
	_ = c.Abort()
	<-got
}
