// Package coalesce merges the writes of an HTTP/2 connection into fewer
// system calls.
//
// golang.org/x/net/http2 flushes its frame buffer whenever its write queue
// runs empty: on a stream's HEADERS, again on its DATA, once per stream
// when many are in flight. Each flush is a write(2), and on TLS a record
// of its own. Conn takes those flushes without waiting for the socket:
// the bytes are appended to a pending buffer that one background writer
// sends, so every flush made while a send is under way (or before the
// writer first runs) goes out in the next single write. Under load the
// writes per response fall well below one; a lone request still gets its
// answer as soon as the goroutines it wakes have run, with no timer.
//
// What the connection promised stays true:
//   - order: bytes reach the socket in the order Write took them;
//   - backpressure: past MaxPending unsent bytes Write blocks until the
//     writer has made room, so a peer that stops reading stalls the
//     HTTP/2 writer exactly as before;
//   - errors: a failed send is returned by the next Write (and Close),
//     which is when x/net closes the connection;
//   - timeouts: each send must make progress within the byte timeout
//     given to New (x/net's WriteByteTimeout, which the caller then sets
//     to zero there: deadlines x/net sets on Conn are ignored);
//   - close: Close sends what is pending first (bounded by the byte
//     timeout, else closeWait), so a GOAWAY or a last answer is not lost.
package coalesce

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// MaxPending is how many unsent bytes Write takes before it waits (a
// larger write is taken alone once the previous ones are sent). It bounds
// what a peer that stops reading can make a connection hold.
const MaxPending = 32 << 10

// closeWait bounds Close's wait for pending bytes when there is no byte
// timeout.
const closeWait = time.Second

// buffer is a pooled pending buffer: a connection holds one only while it
// has bytes to send, so an idle connection holds none.
type buffer struct{ b []byte }

var buffers = sync.Pool{New: func() any { return &buffer{b: make([]byte, 0, 4<<10)} }}

func putBuffer(b *buffer) {
	if cap(b.b) > 2*MaxPending {
		return // one very large write: not worth keeping
	}
	b.b = b.b[:0]
	buffers.Put(b)
}

// Conn is a net.Conn whose writes are sent by a background writer.
type Conn struct {
	net.Conn
	timeout time.Duration

	mu      sync.Mutex
	cond    sync.Cond // writer progress, for Write and Close
	pending *buffer   // taken, not yet handed to the socket; nil: none
	writing bool      // the writer goroutine runs
	err     error     // the first failed send
	closed  bool
	sendFn  func() // send, made once: go c.send() would allocate each time
}

// TLSConn is a Conn over a *tls.Conn: it reports the TLS state (x/net
// checks the protocol and cipher suite of a TLS connection through it).
type TLSConn struct {
	*Conn
	tc *tls.Conn
}

// ConnectionState is the underlying TLS connection's.
func (c *TLSConn) ConnectionState() tls.ConnectionState { return c.tc.ConnectionState() }

// UnsentLimit is the TCP_NOTSENT_LOWAT New sets on the socket: the
// kernel takes at most this many bytes the peer's window does not yet let
// out. Without it a peer that stops reading could park the whole
// autotuned send buffer (megabytes) of densely packed frames before a
// write blocks, and x/net's own limit on queued control frames (which
// closes a connection flooding it with PINGs it never reads the answers
// to) would not be reached. Bytes in flight are not counted, so a fast
// download is not slowed.
const UnsentLimit = 128 << 10

// New wraps c. timeout is the byte timeout of every send (0: none). A
// *tls.Conn comes back as a *TLSConn. The TCP connection under c (found
// through NetConn methods) gets TCP_NOTSENT_LOWAT UnsentLimit.
func New(c net.Conn, timeout time.Duration) net.Conn {
	limitUnsent(c)
	cc := &Conn{Conn: c, timeout: timeout}
	cc.cond.L = &cc.mu
	cc.sendFn = cc.send
	if tc, ok := c.(*tls.Conn); ok {
		return &TLSConn{Conn: cc, tc: tc}
	}
	return cc
}

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("coalesce: write on a closed connection")

// Write queues p for the writer and returns; it waits only while
// MaxPending bytes are unsent.
func (c *Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	for c.err == nil && !c.closed && c.unsent() > 0 && c.unsent()+len(p) > MaxPending {
		c.cond.Wait()
	}
	if err := c.failure(); err != nil {
		c.mu.Unlock()
		return 0, err
	}
	if c.pending == nil {
		c.pending = buffers.Get().(*buffer)
	}
	c.pending.b = append(c.pending.b, p...)
	if !c.writing {
		c.writing = true
		go c.sendFn()
	}
	c.mu.Unlock()
	return len(p), nil
}

// unsent is the number of bytes taken and not yet being sent.
func (c *Conn) unsent() int {
	if c.pending == nil {
		return 0
	}
	return len(c.pending.b)
}

func (c *Conn) failure() error {
	if c.err != nil {
		return c.err
	}
	if c.closed {
		return ErrClosed
	}
	return nil
}

// send hands the pending bytes to the socket until none are left, then
// gives the buffer back.
func (c *Conn) send() {
	c.mu.Lock()
	for c.unsent() > 0 && c.err == nil {
		b := c.pending
		c.pending = nil // writes meanwhile go to another buffer
		c.mu.Unlock()
		err := c.writeAll(b.b)
		c.mu.Lock()
		if c.pending == nil {
			b.b = b.b[:0]
			c.pending = b
		} else {
			putBuffer(b)
		}
		if err != nil {
			c.err = err
		}
		c.cond.Broadcast()
	}
	if c.pending != nil {
		putBuffer(c.pending)
		c.pending = nil
	}
	c.writing = false
	c.cond.Broadcast()
	c.mu.Unlock()
}

// writeAll writes b, each write bounded by the byte timeout.
func (c *Conn) writeAll(b []byte) error { return WriteAll(c.Conn, b, c.timeout) }

// WriteAll writes b to c, each write bounded by timeout (0: none): it
// fails only when a whole timeout passes without a byte sent.
func WriteAll(c net.Conn, b []byte, timeout time.Duration) error {
	if timeout <= 0 {
		_, err := c.Write(b)
		return err
	}
	for {
		_ = c.SetWriteDeadline(time.Now().Add(timeout))
		n, err := c.Write(b)
		b = b[n:]
		if len(b) == 0 || n == 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
	}
}

// SetWriteDeadline is ignored: sends are bounded by the byte timeout.
func (c *Conn) SetWriteDeadline(time.Time) error { return nil }

// SetDeadline sets the read deadline only (see SetWriteDeadline).
func (c *Conn) SetDeadline(t time.Time) error { return c.Conn.SetReadDeadline(t) }

// Close sends what is pending, then closes the connection. A send that
// makes no progress for the byte timeout (or closeWait without one) is
// cut short by the close.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	if c.writing {
		wait := c.timeout
		if wait <= 0 {
			wait = closeWait
		}
		// cond has no timed wait: a timer closes the socket, which ends
		// the send, which signals.
		t := time.AfterFunc(wait, func() { _ = c.Conn.Close() })
		for c.writing {
			c.cond.Wait()
		}
		t.Stop()
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

// limitUnsent sets TCP_NOTSENT_LOWAT on the TCP connection under c.
func limitUnsent(c net.Conn) {
	for range 4 {
		switch x := c.(type) {
		case *net.TCPConn:
			if rc, err := x.SyscallConn(); err == nil {
				_ = rc.Control(func(fd uintptr) {
					_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, UnsentLimit)
				})
			}
			return
		case interface{ NetConn() net.Conn }:
			c = x.NetConn()
		default:
			return
		}
	}
}
