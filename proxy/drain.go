package proxy

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/weirgw/weir/internal/fusedio"
	"golang.org/x/sys/unix"
)

// drainState is what Shutdown needs to stop a server without losing a
// request: its listeners, its open client connections, and whether it is
// draining (the handler then answers with Connection: close).
type drainState struct {
	draining  atomic.Bool
	mu        sync.Mutex
	listeners []net.Listener
	open      fusedio.Open
}

// serving records ln for Shutdown to close; false when the server is
// already draining (ln is then closed: nothing is accepted any more).
func (d *drainState) serving(ln net.Listener) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.draining.Load() {
		_ = ln.Close()
		return false
	}
	d.listeners = append(d.listeners, ln)
	return true
}

// handshakeWait is how long a draining listener keeps completing the
// handshakes it has begun (SYN answered, final ACK awaited) while it
// refuses new ones: a round trip inside a data centre, with room.
const handshakeWait = 50 * time.Millisecond

// stopAccepting sets draining and closes the listeners without resetting
// a connection. Linux resets the connections still in a listening
// socket's accept queue when it closes, and those whose handshake it has
// begun, although their clients already count them as open; the other
// process bound to the address (SO_REUSEPORT) does not get them. So a TCP
// listener first refuses new handshakes (refuseSYN: their clients
// retransmit the SYN and reach the other process), finishes those begun
// for handshakeWait, takes what is queued, serves it (with Connection:
// close, as everything now) and only then closes.
func (s *Server) stopAccepting() {
	d := &s.drain
	d.mu.Lock()
	d.draining.Store(true)
	lns := d.listeners
	d.mu.Unlock()
	var refusing []fusedio.Listener
	for _, ln := range lns {
		if fl, ok := ln.(fusedio.Listener); ok {
			err := refuseSYN(fl.Listener)
			if err == nil {
				refusing = append(refusing, fl)
				continue
			}
			s.log.Warn("draining without refusing new handshakes first; connections queued at the close will be reset",
				"addr", ln.Addr().String(), "error", err.Error())
		}
		_ = ln.Close()
	}
	if len(refusing) == 0 {
		return
	}
	time.Sleep(handshakeWait)
	for _, fl := range refusing {
		for _, nc := range acceptQueued(fl.Listener) {
			// Wrapped here, not in the goroutine: Wrap adds the
			// connection to the open set Shutdown waits on, and it must
			// be there when stopAccepting returns. Wrapped inside, it
			// could be added only after graceWait had found the set
			// empty and Shutdown had released the upstreams, and its
			// request was then answered 502 "transport closed".
			c := fl.Wrap(nc)
			go func() { _ = s.fs.ServeConn(c) }()
		}
		_ = fl.Close()
	}
}

// refuseSYN attaches to a listening socket a filter that drops segments
// without ACK — the SYNs that open connections — and lets through the
// final ACKs of handshakes already begun. Connections accepted from then
// on inherit it, harmlessly: every segment of an open connection but a
// bare RST carries an ACK.
func refuseSYN(ln net.Listener) error {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return errors.New("not a socket")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	// The filter runs on the TCP header; byte 13 holds the flags.
	prog := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_B | unix.BPF_ABS, K: 13},
		{Code: unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K, Jt: 0, Jf: 1, K: 0x10}, // ACK
		{Code: unix.BPF_RET | unix.BPF_K, K: 0xffffffff},                         // keep
		{Code: unix.BPF_RET | unix.BPF_K, K: 0},                                  // drop
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_FILTER,
			&unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]})
	})
	if err != nil {
		return err
	}
	return serr
}

// acceptQueued takes every connection waiting in ln's accept queue,
// without blocking.
func acceptQueued(ln net.Listener) []net.Conn {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	var fds []int
	_ = rc.Control(func(fd uintptr) {
		for {
			nfd, _, err := unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
			if err == unix.EINTR || err == unix.ECONNABORTED {
				continue
			}
			if err != nil {
				return // EAGAIN: the queue is empty
			}
			fds = append(fds, nfd)
		}
	})
	var conns []net.Conn
	for _, fd := range fds {
		f := os.NewFile(uintptr(fd), "queued connection")
		nc, err := net.FileConn(f) // a duplicate of fd
		_ = f.Close()
		if err == nil {
			conns = append(conns, nc)
		}
	}
	return conns
}

// Shutdown drains the server, then releases everything. It is the second
// half of a zero-downtime upgrade (README.md, Operations): a new process
// is bound to the same addresses (SO_REUSEPORT), and this one must hand
// its clients over without failing a request.
//
//  1. The listeners close at once, so every new connection goes to the
//     other process.
//  2. For server.drain_grace, every request on an open connection —
//     in flight or arriving — is answered normally with Connection:
//     close, so its client reconnects, to the other process. Closing an
//     idle keep-alive connection instead would race the client's next
//     request, which would be lost on the wire.
//  3. Then the connections still idle are closed and the requests in
//     flight finish, until ctx's deadline (server.drain_timeout). Those
//     still running then are cut: their connections are closed, and a
//     warning says how many.
func (s *Server) Shutdown(ctx context.Context) error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.stopAccepting()
	// A WebSocket cannot be handed over like a keep-alive connection
	// between two requests: each is told to go away (close frame 1001 to
	// both sides), and its client reconnects, to the other process.
	s.ws.goingAway()
	s.shutdownHTTP2()
	s.graceWait(ctx, s.Current().Config.Server.DrainGrace.D())

	err := s.fs.ShutdownWithContext(ctx)
	if errors.Is(err, net.ErrClosed) {
		err = nil // the listeners were closed in step 1
	}
	s.stopDiscovery()
	// fasthttp returns once its handlers are done, before its workers
	// close the connections; the last answers may still be held there
	// (package fusedio), so wait for the closes too.
	for (s.drain.open.Len() > 0 || s.h2.conns.Load() > 0) && ctx.Err() == nil {
		// HTTP/2 connections got GOAWAY (shutdownHTTP2) and close when
		// their last stream ends.
		time.Sleep(time.Millisecond)
	}
	snap := s.cur.Load()
	if ctx.Err() != nil {
		requests := snap.refs.Load()
		if conns := s.drain.open.AbortAll(); conns > 0 || requests > 0 {
			s.log.Warn("drain_timeout passed: in-flight requests cut, their connections closed",
				"requests", requests, "connections", conns)
		}
	}
	for snap.refs.Load() > 0 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	s.retireWG.Wait()
	s.logq.close()
	s.closeTracing(ctx)
	s.stopAccessLog(ctx)
	snap.closeResources(s.deps(false, ""))
	s.upstreams.closeAll()
	if s.redis != nil {
		s.redis.Close()
	}
	return err
}

// graceWait waits for step 2 of Shutdown: grace, cut short by ctx and
// ended early once every client connection has closed.
func (s *Server) graceWait(ctx context.Context, grace time.Duration) {
	end := time.NewTimer(grace)
	defer end.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for s.drain.open.Len() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-end.C:
			return
		case <-tick.C:
		}
	}
}
