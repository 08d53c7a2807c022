// Package fusedio is a TCP connection that saves system calls on the
// request/response ping-pong both sides of the gateway play: held writes
// and lazy deadlines.
//
// Held writes. Go's poller cannot wait for a socket to become readable
// without first trying to read it: preparing to wait forgets readiness seen
// before, so netFD.Read always reads once, and on a connection whose peer
// has not answered yet that read says EAGAIN — a system call that does
// nothing, paid on every request on both sides of a proxy. After Hold, the
// next writes are kept (up to MaxHeld bytes) and the next Read does, under
// one RawConn.Read, whose wait starts only after the poller was prepared:
//
//  1. after CheckBeforeSend (a pooled upstream connection), one
//     non-blocking read: EAGAIN is the only healthy answer. Bytes nobody
//     asked for (RFC 9112 §6.3) or end of stream (the peer closed it while
//     idle) mean the connection must not be used, and since nothing was
//     sent the caller may send again elsewhere (Unsent, ErrStale);
//  2. the write of the held bytes;
//  3. a wait for readability with no read — the answer can only come after
//     the write, so after the poller was prepared, and it wakes us;
//  4. the read of the answer.
//
// Lazy deadlines. Set*Deadline only record the time; it is handed to the
// runtime (a timer update under a lock) when an operation is about to
// block, and not at all while the socket already carries a deadline no more
// than the slack earlier. A server sets three deadlines per request (idle,
// read, write); most requests arrive whole and their answers fit the socket
// buffer, so only the idle one is ever applied, and rarely.
package fusedio

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// MaxHeld bounds the bytes held for a combined write; past it, writes go
// straight through.
const MaxHeld = 16 << 10

// smallHeld is the most a connection keeps of its own for held bytes (a
// request header, a small answer). Larger held bytes (a 10 KB answer) go
// into a MaxHeld buffer borrowed from heldPool and returned once sent, so
// they cost no allocation per answer and an idle keep-alive connection
// keeps no large buffer.
const smallHeld = 4 << 10

var heldPool = sync.Pool{New: func() any {
	b := make([]byte, 0, MaxHeld)
	return &b
}}

// ErrStale: CheckBeforeSend found the connection closed by the peer, or
// holding bytes nobody asked for, before anything was sent.
var ErrStale = errors.New("connection was closed by the peer or had unsolicited bytes; nothing was sent")

const (
	ioCheck  = iota // nothing may be waiting on the socket
	ioWrite         // write the held bytes
	ioAnswer        // wait for and read the answer
	ioFinish        // the write would block: finish it the blocking way
)

// Conn is a net.Conn over a TCP connection. One goroutine uses it; Close
// may come from another (a server closing idle connections at shutdown).
type Conn struct {
	net.Conn
	raw   syscall.RawConn
	slack time.Duration

	hold   bool
	check  bool
	unsent bool
	// mu guards held, sent, small and big against a Close from another
	// goroutine.
	mu    sync.Mutex
	held  []byte
	sent  int
	small []byte  // the connection's own buffer, while held is borrowed
	big   *[]byte // held's buffer when borrowed from heldPool

	// pend: bytes read ahead of a tiny read (readAhead), in pendBuf, a
	// buffer borrowed from heldPool. Only the reading goroutine uses them.
	// ahead: the read under way is a read-ahead, whose buffer readRaw
	// borrows only once there are bytes to read (into aheadBuf), so a
	// connection waiting for its next request holds none.
	pend     []byte
	pendBuf  *[]byte
	ahead    bool
	aheadBuf *[]byte
	locked   bool // Read holds mu while it writes held bytes
	// lent: the buffer that holds the body of the answer being written
	// (Lend), given back by the next Read. Only the serving goroutine
	// uses it.
	lent *[]byte

	state  int
	rbuf   []byte
	rn     int
	rerr   error
	wbuf   []byte
	wn     int
	werr   error
	ioFn   func(fd uintptr) bool // bound once: no allocation per call
	peekF  func(fd uintptr) bool
	readF  func(fd uintptr) bool
	writeF func(fd uintptr) bool
	peekE  syscall.Errno

	// expect: the next bytes read start a request (ExpectRequest);
	// bareLF: they were a header block only a bare-LF line ends.
	expect, bareLF bool

	open   *Open // the Listener's set of open connections
	closed atomic.Bool

	rdl, wdl     time.Time // wanted
	rSet, wSet   time.Time // on the socket
	rLazy, wLazy bool      // wanted differs from set
}

// New wraps nc. slack is how much earlier than asked a deadline may fire
// (0: exact). A connection without a raw descriptor (not TCP) works, with
// holding and checking turned off.
func New(nc net.Conn, slack time.Duration) *Conn {
	c := &Conn{}
	c.Reset(nc, slack)
	return c
}

// Reset rebinds a pooled Conn to nc (nil: unbound).
func (c *Conn) Reset(nc net.Conn, slack time.Duration) {
	c.Conn, c.raw, c.slack, c.open = nc, nil, slack, nil
	c.closed.Store(false)
	c.hold, c.check, c.unsent = false, false, false
	c.expect, c.bareLF, c.ahead = false, false, false
	c.lent = nil // its answer may still be written elsewhere: the collector's
	c.dropPending()
	c.mu.Lock()
	c.release()
	c.mu.Unlock()
	c.locked = false
	c.state, c.rbuf, c.rn, c.rerr, c.peekE = 0, nil, 0, nil, 0
	c.wbuf, c.wn, c.werr = nil, 0, nil
	c.rdl, c.wdl, c.rSet, c.wSet = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	c.rLazy, c.wLazy = false, false
	if c.ioFn == nil {
		c.ioFn, c.peekF, c.readF, c.writeF = c.io, c.peek, c.readRaw, c.writeRaw
	}
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			c.raw = rc
		}
	}
}

// Hold keeps the following writes for the next Read.
func (c *Conn) Hold() {
	if c.raw != nil {
		c.hold = true
	}
}

// CheckBeforeSend: before the next bytes go out, make sure the peer has
// said nothing (a pooled connection being reused).
func (c *Conn) CheckBeforeSend() {
	c.check = c.raw != nil
	c.unsent = false
}

// Unsent reports whether the last check stopped the send (ErrStale).
func (c *Conn) Unsent() bool { return c.unsent }

// Write holds p, or writes it through after any held bytes.
func (c *Conn) Write(p []byte) (int, error) {
	if c.hold {
		c.mu.Lock()
		if need := len(c.held) + len(p); need <= MaxHeld {
			if need > cap(c.held) && need > smallHeld {
				c.borrow()
			}
			c.held = append(c.held, p...)
			c.mu.Unlock()
			return len(p), nil
		}
		c.mu.Unlock()
		c.hold = false
	}
	if c.check || c.holding() {
		if err := c.Flush(); err != nil {
			return 0, err
		}
	}
	return c.writeAll(p)
}

// Flush ends holding: the check if one is owed, then the held bytes,
// written the blocking way.
func (c *Conn) Flush() error {
	c.hold = false
	if c.check {
		c.check = false
		c.applyRead() // a deadline left from an earlier use may have passed
		if !c.quiet() {
			c.unsent = true
			c.drop()
			return ErrStale
		}
	}
	if !c.holding() {
		return nil
	}
	c.mu.Lock()
	_, err := c.writeAll(c.held[c.sent:])
	c.release()
	c.mu.Unlock()
	return err
}

// holding reports whether bytes are held.
func (c *Conn) holding() bool {
	c.mu.Lock()
	n := len(c.held)
	c.mu.Unlock()
	return n > 0
}

// drop forgets the held bytes, releasing a buffer grown large.
func (c *Conn) drop() {
	c.mu.Lock()
	c.release()
	c.mu.Unlock()
}

// borrow moves the held bytes into a MaxHeld buffer from heldPool. mu is
// held.
func (c *Conn) borrow() {
	if c.big != nil {
		return // already MaxHeld: nothing larger is held
	}
	bp := heldPool.Get().(*[]byte)
	c.small = c.held[:0]
	c.big = bp
	c.held = append((*bp)[:0], c.held...)
}

// release empties held: a borrowed buffer goes back to heldPool and the
// connection's own small one is used again; an own buffer grown past
// smallHeld is let go. mu is held.
func (c *Conn) release() {
	switch {
	case c.big != nil:
		*c.big = c.held[:0]
		heldPool.Put(c.big)
		c.big, c.held, c.small = nil, c.small, nil
	case cap(c.held) > smallHeld:
		c.held = nil
	}
	c.held, c.sent = c.held[:0], 0
}

// Read sends held bytes and reads the answer in one go, or just reads.
func (c *Conn) Read(p []byte) (int, error) {
	if c.lent != nil {
		// The answer that used it has been written: a server reads the
		// next request only after that.
		ReturnBody(c.lent)
		c.lent = nil
	}
	if len(c.pend) > 0 {
		return c.readPending(p), nil
	}
	if len(p) < tinyRead && c.raw != nil {
		return c.readAhead(p)
	}
	return c.readChecked(p)
}

// tinyRead: a Read for fewer bytes than this (fasthttp's server reads a
// connection's first byte alone when it keeps no buffers between
// requests, ReduceMemoryUsage) reads ahead into a buffer borrowed from
// heldPool, so that the bytes after it cost no second system call and
// the whole block is seen by the bare-LF check.
const tinyRead = 512

// readAhead serves a tiny read from a block read ahead. The block's
// buffer is borrowed by readRaw once the socket has bytes, not before the
// wait for them: a keep-alive connection spends most of its life in this
// wait, and 10,000 of them holding a MaxHeld buffer each were 160 MiB.
func (c *Conn) readAhead(p []byte) (int, error) {
	var bp *[]byte
	var n int
	var err error
	if c.check {
		// The check before a send reads into rbuf: borrow first.
		bp = heldPool.Get().(*[]byte)
		n, err = c.readChecked((*bp)[:MaxHeld])
	} else {
		c.ahead = true
		n, err = c.readChecked(nil)
		c.ahead = false
		bp, c.aheadBuf = c.aheadBuf, nil
		if bp == nil {
			return 0, err
		}
	}
	buf := (*bp)[:MaxHeld]
	k := copy(p, buf[:n])
	if k < n {
		c.pend, c.pendBuf = buf[k:n], bp
	} else {
		heldPool.Put(bp)
	}
	if k > 0 {
		return k, nil // an error with the bytes comes again on the next read
	}
	return 0, err
}

// readPending serves bytes read ahead, giving their buffer back once they
// are all read.
func (c *Conn) readPending(p []byte) int {
	n := copy(p, c.pend)
	c.pend = c.pend[n:]
	if len(c.pend) == 0 {
		c.dropPending()
	}
	return n
}

func (c *Conn) dropPending() {
	if c.pendBuf != nil {
		heldPool.Put(c.pendBuf)
	}
	c.pend, c.pendBuf = nil, nil
}

// readChecked reads, and runs the bare-LF check on the first bytes of a
// request (ExpectRequest).
func (c *Conn) readChecked(p []byte) (int, error) {
	if c.bareLF {
		return 0, ErrBareLF
	}
	if !c.expect {
		return c.read(p)
	}
	n, err := c.read(p)
	if n > 0 {
		if c.aheadBuf != nil {
			p = *c.aheadBuf
		}
		c.expect = false
		c.bareLF = bareLFBlock(p[:n])
	}
	return n, err
}

func (c *Conn) read(p []byte) (int, error) {
	c.hold = false
	c.mu.Lock()
	held := len(c.held) > 0
	c.mu.Unlock()
	if !held {
		if c.check { // nothing held, but a check owed: do it now
			if err := c.Flush(); err != nil {
				return 0, err
			}
		}
		return c.readSome(p)
	}
	c.rbuf, c.rn, c.rerr = p, 0, nil
	c.state = ioWrite
	if c.check {
		c.state, c.check = ioCheck, false
	}
	c.applyRead()
	// mu is held until the held bytes are written (io releases it before
	// it waits), so a Close from another goroutine either finds them sent
	// or sends them itself, never closes the socket under them.
	c.mu.Lock()
	c.locked = true
	err := c.raw.Read(c.ioFn)
	c.rbuf = nil
	if err == nil && c.state == ioFinish {
		var n int
		n, err = c.writeAll(c.held[c.sent:])
		c.sent += n
		c.unlock()
		c.drop()
		if err != nil {
			return 0, err
		}
		return c.readSome(p)
	}
	c.unlock()
	c.drop()
	if err != nil { // deadline, or closed under us
		return 0, err
	}
	if c.rerr == ErrStale {
		c.unsent = true
	}
	return c.rn, c.rerr
}

func (c *Conn) unlock() {
	if c.locked {
		c.locked = false
		c.mu.Unlock()
	}
}

// closeFlushTimeout bounds writing held bytes at Close.
const closeFlushTimeout = 5 * time.Second

// Close writes what is held (the last answer of a server shutting down),
// within closeFlushTimeout, then closes. Use Abort to close without
// writing.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.sent < len(c.held) {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
		_, _ = c.Conn.Write(c.held[c.sent:])
	}
	c.release()
	c.mu.Unlock()
	c.gone()
	return c.Conn.Close()
}

// gone takes the connection out of its Listener's set, once.
func (c *Conn) gone() {
	if c.open != nil && c.closed.CompareAndSwap(false, true) {
		c.open.remove(c)
	}
}

// Abort closes without writing what is held.
func (c *Conn) Abort() error {
	c.drop()
	c.gone()
	return c.Conn.Close()
}

// io runs under RawConn.Read: returning false waits for readability.
func (c *Conn) io(fd uintptr) bool {
	switch c.state {
	case ioCheck:
		if _, err := rawRead(fd, c.rbuf); err != syscall.EAGAIN {
			c.rerr = ErrStale // bytes, end of stream or an error
			return true
		}
		c.state = ioWrite
		fallthrough
	case ioWrite:
		for c.sent < len(c.held) {
			n, err := rawWrite(fd, c.held[c.sent:])
			if err == syscall.EAGAIN {
				c.state = ioFinish
				return true
			}
			if err != 0 {
				c.rerr = os.NewSyscallError("sendto", err)
				return true
			}
			c.sent += n
		}
		c.state = ioAnswer
		// All sent: a borrowed buffer goes back before the wait for the
		// answer, which on a keep-alive connection may last its idle
		// timeout.
		c.release()
		c.unlock() // sent: a Close may now go ahead
		return false
	default: // ioAnswer: the read of the answer, waiting for it
		return c.readRaw(fd)
	}
}

// quiet peeks without blocking: nothing to read is the only healthy answer.
func (c *Conn) quiet() bool {
	c.peekE = 0
	if err := c.raw.Read(c.peekF); err != nil {
		return false
	}
	return c.peekE == unix.EAGAIN
}

func (c *Conn) peek(fd uintptr) bool {
	var b [1]byte
	_, _, c.peekE = unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
	return true // never wait
}

// readSome is a plain read, under the lazy read deadline.
func (c *Conn) readSome(p []byte) (int, error) {
	c.applyRead()
	if c.raw == nil {
		return c.Conn.Read(p)
	}
	if len(p) == 0 && !c.ahead {
		return 0, nil
	}
	c.rbuf, c.rn, c.rerr = p, 0, nil
	err := c.raw.Read(c.readF)
	c.rbuf = nil
	if err != nil {
		return 0, err
	}
	return c.rn, c.rerr
}

func (c *Conn) readRaw(fd uintptr) bool {
	if c.ahead {
		return c.readRawAhead(fd)
	}
	n, err := rawRead(fd, c.rbuf)
	switch {
	case err == syscall.EAGAIN:
		return false // wait for readability
	case err != 0:
		c.rerr = os.NewSyscallError("recvfrom", err)
	case n == 0:
		c.rerr = io.EOF
	default:
		c.rn = n
	}
	return true
}

// readRawAhead is readRaw for a read-ahead: a buffer from heldPool for
// the read, kept in aheadBuf only when bytes came.
func (c *Conn) readRawAhead(fd uintptr) bool {
	bp := heldPool.Get().(*[]byte)
	n, err := rawRead(fd, (*bp)[:MaxHeld])
	if n > 0 {
		c.rn, c.aheadBuf = n, bp
		return true
	}
	heldPool.Put(bp)
	switch {
	case err == syscall.EAGAIN:
		return false // wait for readability, holding no buffer
	case err != 0:
		c.rerr = os.NewSyscallError("recvfrom", err)
	default:
		c.rerr = io.EOF
	}
	return true
}

// writeAll writes p whole, under the lazy write deadline.
func (c *Conn) writeAll(p []byte) (int, error) {
	c.applyWrite()
	if c.raw == nil {
		return c.Conn.Write(p)
	}
	c.wbuf, c.wn, c.werr = p, 0, nil
	err := c.raw.Write(c.writeF)
	n := c.wn
	c.wbuf = nil
	if err != nil {
		return n, err
	}
	return n, c.werr
}

func (c *Conn) writeRaw(fd uintptr) bool {
	for c.wn < len(c.wbuf) {
		n, err := rawWrite(fd, c.wbuf[c.wn:])
		if err == syscall.EAGAIN {
			return false // wait for writability
		}
		if err != 0 {
			c.werr = os.NewSyscallError("sendto", err)
			return true
		}
		c.wn += n
	}
	return true
}

// rawRead and rawWrite are socket reads and writes without the runtime's
// system-call bookkeeping (entersyscall/exitsyscall). On a non-blocking
// socket they never block, and the bookkeeping buys nothing but a risk:
// with one P (GOMAXPROCS=1, one core), sysmon hands the P of a goroutine
// that is in a system call to another thread, which then competes for the
// same core — measured here as three threads sharing the proxy's work and
// a context switch where none was needed.
//
// They are recvfrom and sendto, not read and write, as nginx's are: on a
// connected socket they do the same, without the file-position handling
// (fdget_pos, vfs) read and write go through first — 0.8 % of the proxy's
// CPU in a perf diff against nginx. sendto says MSG_NOSIGNAL: a peer gone
// is an EPIPE, never a signal.
func rawRead(fd uintptr, p []byte) (int, syscall.Errno) {
	for {
		n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)), 0, 0, 0)
		if e != syscall.EINTR {
			if e != 0 {
				return 0, e
			}
			return int(n), 0
		}
	}
}

func rawWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	for {
		n, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)), syscall.MSG_NOSIGNAL, 0, 0)
		if e != syscall.EINTR {
			if e != 0 {
				return 0, e
			}
			return int(n), 0
		}
	}
}

// SetDeadline records both deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.setRead(t)
	c.setWrite(t)
	return nil
}

// SetReadDeadline records the read deadline; it is applied when a read
// may block.
func (c *Conn) SetReadDeadline(t time.Time) error { c.setRead(t); return nil }

// SetWriteDeadline records the write deadline; it is applied when a write
// may block.
func (c *Conn) SetWriteDeadline(t time.Time) error { c.setWrite(t); return nil }

func (c *Conn) setRead(t time.Time) {
	c.rdl = t
	c.rLazy = !within(c.rSet, t, c.slack)
}

func (c *Conn) setWrite(t time.Time) {
	c.wdl = t
	c.wLazy = !within(c.wSet, t, c.slack)
}

// within: a socket carrying deadline set may stand in for want: the same,
// or at most slack earlier.
func within(set, want time.Time, slack time.Duration) bool {
	if set.IsZero() || want.IsZero() {
		return set.IsZero() == want.IsZero()
	}
	d := want.Sub(set)
	return d >= 0 && d <= slack
}

func (c *Conn) applyRead() {
	if c.rLazy {
		c.rLazy = false
		c.rSet = c.rdl
		_ = c.Conn.SetReadDeadline(c.rdl)
	}
}

func (c *Conn) applyWrite() {
	if c.wLazy {
		c.wLazy = false
		c.wSet = c.wdl
		_ = c.Conn.SetWriteDeadline(c.wdl)
	}
}

// SetKeepAlive and SetKeepAlivePeriod reach the TCP connection (fasthttp's
// TCPKeepalive looks for them).
func (c *Conn) SetKeepAlive(on bool) error {
	if k, ok := c.Conn.(interface{ SetKeepAlive(bool) error }); ok {
		return k.SetKeepAlive(on)
	}
	return nil
}

// SetKeepAlivePeriod: see SetKeepAlive.
func (c *Conn) SetKeepAlivePeriod(d time.Duration) error {
	if k, ok := c.Conn.(interface{ SetKeepAlivePeriod(time.Duration) error }); ok {
		return k.SetKeepAlivePeriod(d)
	}
	return nil
}

// Listener wraps accepted TCP connections in Conns.
type Listener struct {
	net.Listener
	Slack time.Duration
	// Open, when set, holds the accepted connections not yet closed. A
	// server that stops must wait for it to empty: an answer held on a
	// connection that closes after it is written by Close, which fasthttp
	// calls after it has already counted the connection as finished. And
	// a server whose drain time is up closes what is left through it.
	Open *Open
}

// Accept returns the next connection, wrapped.
func (l Listener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.Wrap(nc), nil
}

// Wrap wraps nc as Accept does, for a connection taken from the listening
// socket some other way (a draining server empties its accept queue
// itself before it closes the socket).
func (l Listener) Wrap(nc net.Conn) *Conn {
	c := New(nc, l.Slack)
	if l.Open != nil {
		c.open = l.Open
		l.Open.add(c)
	}
	return c
}

// Open is a set of open connections, shared by a server's Listeners.
// Adding and removing cost a lock per connection, never per request.
type Open struct {
	mu sync.Mutex
	m  map[*Conn]struct{}
}

func (o *Open) add(c *Conn) {
	o.mu.Lock()
	if o.m == nil {
		o.m = make(map[*Conn]struct{})
	}
	o.m[c] = struct{}{}
	o.mu.Unlock()
}

func (o *Open) remove(c *Conn) {
	o.mu.Lock()
	delete(o.m, c)
	o.mu.Unlock()
}

// Len is the number of connections open.
func (o *Open) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.m)
}

// AbortAll closes every open connection without writing what is held
// (Abort), and says how many it closed. A server whose drain time is up
// uses it for the connections still busy: their clients see the
// connection end, not an answer cut in the middle of a write that could
// block for closeFlushTimeout each.
func (o *Open) AbortAll() int {
	o.mu.Lock()
	conns := make([]*Conn, 0, len(o.m))
	for c := range o.m {
		conns = append(conns, c)
	}
	o.mu.Unlock()
	for _, c := range conns {
		_ = c.Abort()
	}
	return len(conns)
}
