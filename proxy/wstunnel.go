package proxy

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/VictoriaMetrics/metrics"
	"github.com/weirgw/weir/internal/fusedio"
	"github.com/weirgw/weir/proxy/tlsfront"
	"golang.org/x/sys/unix"
)

// A tunnel joins a client's hijacked connection to the upstream's after
// a WebSocket handshake: two pumps, one each way, each reading a chunk
// and writing it whole before it reads again, so a side that stops
// reading stops the other from being read (backpressure: TCP's windows
// fill up to the sender). Bytes pass untouched; each pump follows the
// frame boundaries (frames) so that, when the gateway closes a tunnel
// itself (websocket.idle_timeout, or a drain), it can put a close frame
// with 1001 "going away" between two frames toward both sides, wait a
// moment for their close frames (RFC 6455 §5.5.1), and then close.

const (
	// wsBufSize is each pump's buffer: a small message (the common case)
	// in one read, a large one in several, without holding much per idle
	// WebSocket.
	wsBufSize = 8 << 10
	// wsCloseWait bounds the close the gateway starts: finishing the
	// frame under way, then waiting for the peer's close frame.
	wsCloseWait = 2 * time.Second
	// wsStartWait bounds the time between the 101 being handed to
	// fasthttp and the tunnel starting: fasthttp does not start it when
	// it could not write the 101 (the client left), and the upstream
	// connection must not wait forever then.
	wsStartWait = 30 * time.Second
)

// Close codes the gateway sends (RFC 6455 §7.4.1).
const wsGoingAway = 1001

// wsRegistry counts and lists a server's WebSockets: max_websockets
// bounds them, and a drain tells each to go away.
type wsRegistry struct {
	n     atomic.Int64 // open tunnels plus handshakes under way
	max   atomic.Int64
	mu    sync.Mutex
	open  map[*tunnel]struct{}
	going bool // draining: every tunnel, and each that starts, goes away
}

func (w *wsRegistry) reserve() bool {
	if w.n.Add(1) > w.max.Load() {
		w.n.Add(-1)
		return false
	}
	return true
}

func (w *wsRegistry) unreserve() { w.n.Add(-1) }

// add lists a started tunnel; false when the server is draining.
func (w *wsRegistry) add(t *tunnel) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.going {
		return false
	}
	if w.open == nil {
		w.open = map[*tunnel]struct{}{}
	}
	w.open[t] = struct{}{}
	return true
}

func (w *wsRegistry) remove(t *tunnel) {
	w.mu.Lock()
	delete(w.open, t)
	w.mu.Unlock()
}

// goingAway starts closing every tunnel with 1001 (a drain).
func (w *wsRegistry) goingAway() {
	w.mu.Lock()
	w.going = true
	list := make([]*tunnel, 0, len(w.open))
	for t := range w.open {
		list = append(list, t)
	}
	w.mu.Unlock()
	for _, t := range list {
		t.shut(closeDrain)
	}
}

// wsMetrics are a route's WebSocket series, made at its first WebSocket.
type wsMetrics struct {
	conns  *metrics.Gauge   // weir_websocket_connections{route}
	fromCl *metrics.Counter // bytes clients sent through the route's WebSockets
	toCl   *metrics.Counter // bytes sent to clients
}

func (m *routeMetrics) websocket(route string) *wsMetrics {
	w := m.ws.Load()
	if w == nil {
		w = &wsMetrics{
			conns:  metrics.GetOrCreateGauge(`weir_websocket_connections{route="`+route+`"}`, nil),
			fromCl: metrics.GetOrCreateCounter(`weir_websocket_bytes_total{route="` + route + `",direction="upstream"}`),
			toCl:   metrics.GetOrCreateCounter(`weir_websocket_bytes_total{route="` + route + `",direction="downstream"}`),
		}
		if !m.ws.CompareAndSwap(nil, w) {
			w = m.ws.Load()
		}
	}
	return w
}

// Why the gateway closes a tunnel itself.
const (
	closeNone = iota
	closeIdle
	closeDrain
)

type tunnel struct {
	reg  *wsRegistry
	log  *slog.Logger
	m    *wsMetrics
	idle time.Duration
	up   net.Conn
	rest []byte // what the upstream sent after its 101

	// client is the hijacked connection as fasthttp hands it; cl is the
	// connection under it that both pumps use (see run).
	cl net.Conn

	started atomic.Bool
	guard   *time.Timer
	born    time.Time
	last    atomic.Int64 // when a byte last passed, either way: nanoseconds since born
	reason  atomic.Int32 // closeNone, or why the gateway closes
	ended   sync.Once
}

func (w *wsRegistry) newTunnel(up net.Conn, rest []byte, r *route, log *slog.Logger) *tunnel {
	t := &tunnel{reg: w, log: log, m: r.m.websocket(r.name), idle: r.wsIdle, up: up, rest: rest, born: time.Now()}
	t.guard = time.AfterFunc(wsStartWait, func() {
		if t.started.CompareAndSwap(false, true) {
			_ = t.up.Close()
			t.reg.unreserve()
		}
	})
	return t
}

// run is the fasthttp hijack handler. It takes what fasthttp has read
// past the handshake (its buffered reader, behind hc) with a read that
// cannot wait, and the connection under fasthttp's wrappers, whose reads
// and writes may run in two goroutines and whose deadlines a third may
// set (shut); then it returns, so that fasthttp's request context goes
// back to its pool and its read buffer to the garbage collector (the
// server keeps hijacked connections open: KeepHijackedConns), and relay
// goes on in a goroutine of its own.
func (t *tunnel) run(hc net.Conn) {
	if !t.started.CompareAndSwap(false, true) {
		_ = hc.Close() // the guard gave up on it
		return
	}
	t.guard.Stop()
	first, err := drainBuffered(hc)
	t.cl = underlying(hc)
	// The tunnel keeps the connection under hc, not hc, which holds
	// fasthttp's read buffer; closing it releases its per-IP count and
	// takes it out of the server's open connections, which a drain
	// waits for.
	closer := hc
	if u, ok := hc.(interface{ UnsafeConn() net.Conn }); ok {
		closer = u.UnsafeConn()
	}
	if err != nil {
		_ = closer.Close()
		_ = t.up.Close()
		t.reg.unreserve()
		return
	}
	go t.relay(first, closer)
}

// relay runs the two pumps until both end, then closes everything.
func (t *tunnel) relay(first []byte, closer net.Conn) {
	defer t.reg.unreserve()
	defer t.up.Close()
	defer closer.Close()
	t.m.conns.Inc()
	defer t.m.conns.Dec()
	t.touch()
	// Listed once cl is set: shut, which a drain calls on the listed
	// tunnels, reads it.
	if !t.reg.add(t) {
		t.reason.Store(closeDrain)
	}
	defer t.reg.remove(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t.pump(t.up, t.cl, t.rest, false, t.m.toCl)
	}()
	t.pump(t.cl, t.up, first, true, t.m.fromCl)
	<-done
}

// drainBuffered reads, without waiting, what hc holds already.
func drainBuffered(hc net.Conn) ([]byte, error) {
	_ = hc.SetReadDeadline(time.Unix(1, 0))
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := hc.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return got, nil
			}
			return got, err
		}
	}
}

// underlying finds, under fasthttp's wrappers (its hijacked and per-IP
// connections, which keep the connection in an embedded field named
// Conn), the connection Serve accepted: a fusedio.Conn, whose TCP
// connection is used directly (fusedio's deferred deadlines are for one
// goroutine), or a TLS connection.
func underlying(c net.Conn) net.Conn {
	for range 4 {
		switch x := c.(type) {
		case *fusedio.Conn:
			return x.Conn
		case *tlsfront.Conn:
			return x.Conn
		case *net.TCPConn:
			return x
		case interface{ UnsafeConn() net.Conn }:
			c = x.UnsafeConn()
			continue
		}
		v := reflect.ValueOf(c)
		if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
			break
		}
		f := v.Elem().FieldByName("Conn")
		if !f.IsValid() || !f.CanInterface() {
			break
		}
		inner, ok := f.Interface().(net.Conn)
		if !ok || inner == nil {
			break
		}
		c = inner
	}
	return c
}

func (t *tunnel) touch() { t.last.Store(int64(time.Since(t.born))) }

// idleFor is how long no byte has passed either way.
func (t *tunnel) idleFor() time.Duration {
	return time.Since(t.born) - time.Duration(t.last.Load())
}

// shut starts the gateway's close: both pumps wake (a read deadline in
// the past), finish the frame they are in and send the close frame.
func (t *tunnel) shut(why int32) {
	if !t.reason.CompareAndSwap(closeNone, why) {
		return
	}
	past := time.Unix(1, 0)
	if t.cl != nil {
		_ = t.cl.SetReadDeadline(past)
	}
	_ = t.up.SetReadDeadline(past)
}

// end closes both connections: either side closed or failed.
func (t *tunnel) end() {
	t.ended.Do(func() {
		_ = t.up.Close()
		if t.cl != nil {
			_ = t.cl.Close()
		}
	})
}

// pump copies src to dst until src ends or the gateway closes the
// tunnel; first is what was read from src before. toUpstream: dst is the
// upstream, to which a client's frames are masked.
func (t *tunnel) pump(src, dst net.Conn, first []byte, toUpstream bool, count *metrics.Counter) {
	var f frames
	if len(first) > 0 {
		f.skip(first)
		if _, err := dst.Write(first); err != nil {
			t.end()
			return
		}
		count.Add(len(first))
	}
	// A socket is waited on without a buffer (readable), which is taken
	// from wsBufs only when bytes are there: an idle WebSocket holds
	// none. A connection that is no socket (TLS) keeps its own.
	w := newReadable(src)
	var buf []byte
	if w == nil {
		buf = make([]byte, wsBufSize)
	}
	_ = src.SetReadDeadline(time.Now().Add(t.idle))
	// The write deadline moves only once half of the timeout is spent, so
	// a stream of small messages does not reset a timer per message: a
	// write that makes no progress is cut after idle/2 to idle.
	var wdl time.Time
	for {
		if t.reason.Load() != closeNone {
			t.closeSide(src, dst, &f, nil, make([]byte, wsBufSize), toUpstream)
			return
		}
		var n int
		var err error
		if w != nil {
			if err = w.wait(); err == nil {
				bp := wsBufs.Get().(*[]byte)
				buf = *bp
				n, err = src.Read(buf)
				if n > 0 && t.reason.Load() == closeNone {
					err = t.forward(dst, &f, buf[:n], &wdl, count, err)
					n = 0
				}
				if n == 0 {
					wsBufs.Put(bp)
				}
			}
		} else {
			n, err = src.Read(buf)
			if n > 0 && t.reason.Load() == closeNone {
				err = t.forward(dst, &f, buf[:n], &wdl, count, err)
				n = 0
			}
		}
		if n > 0 { // read as the close began: closeSide sends what is due
			t.closeSide(src, dst, &f, buf[:n], buf, toUpstream)
			return
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.end() // closed, reset, or the other pump ended the tunnel
			return
		}
		if t.reason.Load() != closeNone {
			continue // woken by shut
		}
		if idle := t.idleFor(); idle < t.idle {
			// The other way was busy: wait for the rest of the timeout.
			// A shut between the test above and this deadline would be
			// undone by it, so the loop looks at the reason again first.
			_ = src.SetReadDeadline(time.Now().Add(t.idle - idle))
			continue
		}
		t.shut(closeIdle)
	}
}

// forward writes p, just read, to dst; rerr is the read's error, which it
// returns unless the write fails.
func (t *tunnel) forward(dst net.Conn, f *frames, p []byte, wdl *time.Time, count *metrics.Counter, rerr error) error {
	now := time.Now()
	t.last.Store(int64(now.Sub(t.born)))
	f.skip(p)
	if wdl.Sub(now) < t.idle/2 {
		*wdl = now.Add(t.idle)
		_ = dst.SetWriteDeadline(*wdl)
	}
	if _, err := dst.Write(p); err != nil {
		return err
	}
	count.Add(len(p))
	return rerr
}

// wsBufs are the pumps' buffers, held only while bytes pass.
var wsBufs = sync.Pool{New: func() any { b := make([]byte, wsBufSize); return &b }}

// readable waits until a socket has bytes to read (or its end, an
// error, or its read deadline), without reading them. The first look is
// a peek that does not wait; when it finds nothing, the runtime's poller
// waits for the socket to become readable, and the next look trusts it
// (a wake-up that finds nothing after all only makes the Read that
// follows wait in its turn). So a message costs the same system calls as
// a plain Read that waits (a read that finds nothing, then the read).
type readable struct {
	rc    syscall.RawConn
	looks int
	look  func(fd uintptr) bool // bound once: no allocation per wait
}

func newReadable(c net.Conn) *readable {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	r := &readable{rc: rc}
	r.look = func(fd uintptr) bool {
		r.looks++
		if r.looks > 1 {
			return true // the poller said readable
		}
		var b [1]byte
		_, _, e := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
			unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
		return e != unix.EAGAIN
	}
	return r
}

func (r *readable) wait() error {
	r.looks = 0
	return r.rc.Read(r.look)
}

// closeSide is one pump's part of a close the gateway starts: the rest of
// the frame under way (pending holds bytes already read), then a close
// frame with 1001 to dst, then src is read until its own close frame
// comes (its peer answering the close the other pump sent it), ends, or
// wsCloseWait passes.
func (t *tunnel) closeSide(src, dst net.Conn, f *frames, pending, buf []byte, toUpstream bool) {
	deadline := time.Now().Add(wsCloseWait)
	_ = src.SetReadDeadline(deadline)
	_ = dst.SetWriteDeadline(deadline)
	var after []byte // read past the frame's end: not sent
	for !f.atBoundary() {
		if len(pending) == 0 {
			n, err := src.Read(buf)
			if err != nil && n == 0 {
				return // the frame cannot end: no close frame fits
			}
			pending = buf[:n]
		}
		k := f.next(pending)
		if _, err := dst.Write(pending[:k]); err != nil {
			return
		}
		pending, after = pending[k:], pending[k:]
		if f.atBoundary() {
			break
		}
		pending = nil
	}
	if after == nil {
		after = pending // already at a boundary when the close began
	}
	reason := "going away"
	if t.reason.Load() == closeIdle {
		reason = "idle timeout"
	}
	if _, err := dst.Write(closeFrame(wsGoingAway, reason, toUpstream)); err != nil {
		return
	}
	// The peer's close frame may be among the bytes not sent.
	f.closed = false
	f.skip(after)
	for !f.closed {
		n, err := src.Read(buf)
		f.skip(buf[:n])
		if err != nil {
			return
		}
	}
	// Both closes are on their way: the connections close when the
	// other pump is done too (run), at the latest at its deadline.
}

// closeFrame is a close frame with code and reason (at most 123 bytes),
// masked when it goes to the upstream (RFC 6455 §5.3: a client masks).
func closeFrame(code uint16, reason string, masked bool) []byte {
	payload := make([]byte, 2, 2+len(reason))
	binary.BigEndian.PutUint16(payload, code)
	payload = append(payload, reason...)
	if !masked {
		return append([]byte{0x88, byte(len(payload))}, payload...)
	}
	var key [4]byte
	_, _ = io.ReadFull(rand.Reader, key[:])
	out := append([]byte{0x88, 0x80 | byte(len(payload))}, key[:]...)
	for i, b := range payload {
		out = append(out, b^key[i&3])
	}
	return out
}

// frames follows frame boundaries in a byte stream (RFC 6455 §5.2) without
// keeping the payload: the header of the frame under way, then how much
// of its payload is still to come.
type frames struct {
	hdr    [14]byte
	hn     int    // header bytes of the frame under way seen so far
	left   uint64 // its payload bytes still to come, once hn == hlen()
	closed bool   // a whole close frame has gone by
}

// hlen is the length of the frame under way's header, as far as it is
// known from the bytes seen.
func (f *frames) hlen() int {
	if f.hn < 2 {
		return 2
	}
	n := 2
	switch f.hdr[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if f.hdr[1]&0x80 != 0 {
		n += 4
	}
	return n
}

func (f *frames) atBoundary() bool { return f.hn == 0 }

// next reads p up to the end of the frame under way and says how many
// bytes of p that took (all of p when the frame goes on past it).
func (f *frames) next(p []byte) int {
	i := 0
	for f.hn < f.hlen() {
		if i == len(p) {
			return i
		}
		f.hdr[f.hn] = p[i]
		f.hn++
		i++
		if f.hn == f.hlen() {
			switch n := f.hdr[1] & 0x7f; n {
			case 126:
				f.left = uint64(binary.BigEndian.Uint16(f.hdr[2:]))
			case 127:
				f.left = binary.BigEndian.Uint64(f.hdr[2:])
			default:
				f.left = uint64(n)
			}
		}
	}
	take := uint64(len(p) - i)
	if take > f.left {
		take = f.left
	}
	i += int(take)
	f.left -= take
	if f.left == 0 {
		if f.hdr[0]&0x0f == 0x8 {
			f.closed = true
		}
		f.hn = 0
	}
	return i
}

// skip follows the boundaries through all of p.
func (f *frames) skip(p []byte) {
	for len(p) > 0 {
		p = p[f.next(p):]
	}
}
