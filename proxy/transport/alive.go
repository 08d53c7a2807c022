package transport

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Liveness of a pooled connection before it is reused.
//
// An upstream may close a keep-alive connection while it sits in the pool
// (its idle timeout is shorter than ours), or — buggy or hostile — send
// bytes nobody asked for. Reusing the first kind fails the request; reusing
// the second would hand those bytes to the next request as its response
// (RFC 9112 §6.3: a cache poisoning vector). So before reuse we peek at the
// socket without blocking: nothing to read (EAGAIN) is the only healthy
// answer. One recvfrom(MSG_PEEK|MSG_DONTWAIT), no allocation.

// initRaw prepares the peek for a plain TCP connection; TLS connections
// rely on the buffered-bytes check alone.
func (c *conn) initRaw() {
	c.raw = nil
	if sc, ok := c.nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			c.raw = rc
			if c.peekFn == nil {
				c.peekFn = c.peek
			}
		}
	}
}

func (c *conn) peek(fd uintptr) bool {
	var b [1]byte
	n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
	c.peekN, c.peekErr = int(n), errno
	return true // never wait for readability
}

// alive reports whether an idle connection can carry a new request.
func (c *conn) alive() bool {
	if c.br.Buffered() > 0 {
		return false // unsolicited bytes already read
	}
	if c.raw == nil {
		return true
	}
	c.peekN, c.peekErr = 0, 0
	if err := c.raw.Read(c.peekFn); err != nil {
		return false
	}
	return c.peekErr == unix.EAGAIN || c.peekErr == unix.EWOULDBLOCK
}
