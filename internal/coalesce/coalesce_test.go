package coalesce

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// tcpPair is a connected loopback TCP pair.
func tcpPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		done <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-done
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// countingConn counts the writes that reach it.
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	writes int
	block  chan struct{} // when set, each write waits for it
}

func (c *countingConn) Write(p []byte) (int, error) {
	if c.block != nil {
		<-c.block
	}
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// TestOrderAndCoalescing: writes made while a send is under way reach
// the peer in order, in fewer writes than were made.
func TestOrderAndCoalescing(t *testing.T) {
	a, b := tcpPair(t)
	cc := &countingConn{Conn: a, block: make(chan struct{})}
	c := New(cc, 0)
	var want bytes.Buffer
	for i := range 100 {
		p := bytes.Repeat([]byte{byte('a' + i%26)}, 1+i)
		want.Write(p)
		if n, err := c.Write(p); n != len(p) || err != nil {
			t.Fatalf("Write: %d, %v", n, err)
		}
		if i == 0 {
			// The first send has started and waits: the other 99
			// writes queue behind it.
			time.Sleep(10 * time.Millisecond)
		}
	}
	close(cc.block)
	got := make([]byte, want.Len())
	if _, err := io.ReadFull(b, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("bytes arrived out of order or changed")
	}
	cc.mu.Lock()
	w := cc.writes
	cc.mu.Unlock()
	if w > 2 {
		t.Fatalf("%d writes reached the socket for 100 made during one send; want 2", w)
	}
}

// TestBackpressure: past MaxPending unsent bytes Write waits for the
// writer, and a byte timeout with no progress fails the next Write.
func TestBackpressure(t *testing.T) {
	a, _ := tcpPair(t) // the peer never reads
	c := New(a, 100*time.Millisecond)
	chunk := make([]byte, 16<<10)
	start := time.Now()
	var err error
	total := 0
	for time.Since(start) < 5*time.Second {
		if _, err = c.Write(chunk); err != nil {
			break
		}
		total += len(chunk)
	}
	if !isTimeout(err) {
		t.Fatalf("after %d bytes to a peer that does not read: %v; want a timeout", total, err)
	}
	// The socket buffers take some; pending never grows past MaxPending.
	cn := c.(*Conn)
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if n := cn.unsent(); n > MaxPending {
		t.Fatalf("%d bytes pending, want at most %d", n, MaxPending)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestCloseSendsPending: Close sends what Write took before closing.
func TestCloseSendsPending(t *testing.T) {
	a, b := tcpPair(t)
	cc := &countingConn{Conn: a, block: make(chan struct{})}
	c := New(cc, time.Second)
	msg := []byte("GOAWAY, last answer")
	if _, err := c.Write(msg[:6]); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(msg[6:]); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		close(cc.block)
	}()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(b)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(msg) {
		t.Fatalf("peer read %q, want %q", got, msg)
	}
	if _, err := c.Write(msg); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close: %v, want ErrClosed", err)
	}
}

// TestCloseBoundedWhenStuck: a send stuck on a peer that does not read
// does not hold Close past the byte timeout.
func TestCloseBoundedWhenStuck(t *testing.T) {
	a, _ := tcpPair(t)
	c := New(a, 200*time.Millisecond)
	chunk := make([]byte, MaxPending)
	for range 200 { // fill the socket buffers; the writer stalls
		if _, err := c.Write(chunk); err != nil {
			break
		}
	}
	start := time.Now()
	_ = c.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %s with a stuck send; want about the byte timeout", d)
	}
}

// TestTLSState: a TLS connection keeps reporting its state (x/net's
// server checks the version and cipher of a TLS connection with it).
func TestTLSState(t *testing.T) {
	a, _ := tcpPair(t)
	c := New(tls.Client(a, &tls.Config{InsecureSkipVerify: true}), 0)
	if _, ok := c.(interface{ ConnectionState() tls.ConnectionState }); !ok {
		t.Fatal("a *tls.Conn wrapped loses ConnectionState")
	}
	if _, ok := New(a, 0).(interface{ ConnectionState() tls.ConnectionState }); ok {
		t.Fatal("a plain connection claims a TLS state")
	}
}

// TestWriteAllocatesNothing: in the steady state (a burst queued and
// sent) Write allocates nothing: the pending buffer is reused.
func TestWriteAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	a, b := tcpPair(t)
	go func() { _, _ = io.Copy(io.Discard, b) }()
	c := New(a, time.Second).(*Conn)
	p := make([]byte, 200)
	idle := func() {
		for {
			c.mu.Lock()
			w := c.writing
			c.mu.Unlock()
			if !w {
				return
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
	for range 10 {
		_, _ = c.Write(p)
		idle()
	}
	allocs := testing.AllocsPerRun(200, func() {
		_, _ = c.Write(p)
		_, _ = c.Write(p)
		idle()
	})
	if allocs > 0 {
		t.Fatalf("%.1f allocations per burst, want 0", allocs)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending != nil {
		t.Fatal("an idle connection still holds a pending buffer")
	}
}

// TestUnsentLimit: the TCP connection under a wrapped connection, also
// through a NetConn chain, gets TCP_NOTSENT_LOWAT.
func TestUnsentLimit(t *testing.T) {
	a, _ := tcpPair(t)
	get := func() int {
		rc, err := a.(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		v := -1
		_ = rc.Control(func(fd uintptr) {
			v, err = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT)
		})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if get() == UnsentLimit {
		t.Fatal("the default already equals UnsentLimit: the test proves nothing")
	}
	New(tls.Client(a, &tls.Config{InsecureSkipVerify: true}), 0)
	if v := get(); v != UnsentLimit {
		t.Fatalf("TCP_NOTSENT_LOWAT %d, want %d", v, UnsentLimit)
	}
}
