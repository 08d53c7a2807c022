package fusedio

import (
	"io"
	"net"
	"os"
	"syscall"
)

// RawConn is a TCP connection whose reads and writes are rawRead and
// rawWrite: no system-call bookkeeping, for a client library that reads
// on one goroutine and writes on another (rueidis' pipeline to Redis).
// Through net.Conn, each of its writes and reads enters a system call the
// runtime way, and with one P (GOMAXPROCS=1) that kept sysmon on its 20 µs
// tick and handed the P to other threads: measured as two more busy
// threads costing 9 µs per rate-limited request beside the serving one.
// One goroutine may read while another writes; deadlines, Close and the
// rest are the TCP connection's.
type RawConn struct {
	net.Conn
	raw  syscall.RawConn
	r, w rawOp // each used by one goroutine at a time
}

type rawOp struct {
	buf []byte
	n   int
	err syscall.Errno
	fn  func(fd uintptr) bool // bound once: no allocation per call
}

// NewRaw wraps nc; a connection without a raw descriptor is returned as
// it is.
func NewRaw(nc net.Conn) net.Conn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nc
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nc
	}
	c := &RawConn{Conn: nc, raw: raw}
	c.r.fn, c.w.fn = c.readOnce, c.writeAll
	return c
}

// CloseWrite shuts down the writing side of the TCP connection.
func (c *RawConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// Read reads once the socket is readable, under the read deadline.
func (c *RawConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.r.buf, c.r.n, c.r.err = p, 0, 0
	err := c.raw.Read(c.r.fn)
	c.r.buf = nil
	switch {
	case err != nil: // deadline, or closed
		return 0, err
	case c.r.err != 0:
		return 0, os.NewSyscallError("recvfrom", c.r.err)
	case c.r.n == 0:
		return 0, io.EOF
	}
	return c.r.n, nil
}

func (c *RawConn) readOnce(fd uintptr) bool {
	n, e := rawRead(fd, c.r.buf)
	if e == syscall.EAGAIN {
		return false // wait for readability
	}
	c.r.n, c.r.err = n, e
	return true
}

// Write writes p whole, under the write deadline.
func (c *RawConn) Write(p []byte) (int, error) {
	c.w.buf, c.w.n, c.w.err = p, 0, 0
	err := c.raw.Write(c.w.fn)
	n := c.w.n
	c.w.buf = nil
	if err != nil {
		return n, err
	}
	if c.w.err != 0 {
		return n, os.NewSyscallError("sendto", c.w.err)
	}
	return n, nil
}

func (c *RawConn) writeAll(fd uintptr) bool {
	for c.w.n < len(c.w.buf) {
		n, e := rawWrite(fd, c.w.buf[c.w.n:])
		if e == syscall.EAGAIN {
			return false // wait for writability
		}
		if e != 0 {
			c.w.err = e
			return true
		}
		c.w.n += n
	}
	return true
}
