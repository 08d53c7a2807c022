package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// The backend every contender forwards to is served by the same event
// loop that generates the open-loop load (and by nothing else while wrk
// measures the maximum): one process on the load CPUs, so that generator
// and backend never take turns through the scheduler.
//
// It answers HTTP/1.1 GETs (and bodies framed by Content-Length) with
// fixed bodies, keep-alive and pipelining included:
//
//	/static     64 bytes of 'x'
//	/static1k   1 KiB of 'x'
//	/static10k  10 KiB of 'x' (the users' average answer, make bench-shape)
//	/healthz    "ok"
//	/v1/traces  200, empty: an OTLP/HTTP sink for the tracing scenarios
//	otherwise   404
//
// with the headers `weir echo` sends for the same paths (Server, Date,
// Content-Type, Content-Length, X-Echo-Server), so a proxy has the same
// work in front of either.

// Epoll tokens: generator connections use their index (below beBase), the
// timer timerToken; backend connections beBase+i.
const (
	beBase        = 1 << 29
	beListenToken = beBase - 1
	controlToken  = beBase - 2
	// beMaxHeader bounds a request's header section.
	beMaxHeader = 64 << 10
)

type beConn struct {
	fd         int
	in         []byte // bytes of requests not yet complete
	out        []byte // answer bytes the socket did not take yet
	closeAfter bool
	wantOut    bool // EPOLLOUT is in the interest set
}

type backendServer struct {
	name   string
	epfd   int
	lfd    int
	addr   string
	conns  []*beConn // by token-beBase; nil when free
	free   []int
	rbuf   []byte
	small  []byte
	big    []byte
	huge   []byte
	dateAt int64 // the second the Date line was made for
	date   []byte
	// answered counts responses written, for tests and the log.
	answered int64
}

// listenBackend opens the listening socket on addr and an epoll set
// holding it.
func listenBackend(addr, name string) (*backendServer, error) {
	sa, err := sockaddr(addr) // the generator's own resolution
	if err != nil {
		return nil, fmt.Errorf("backend: %w", err)
	}
	host, _, _ := net.SplitHostPort(addr)
	s := &backendServer{name: name, epfd: -1, lfd: -1, rbuf: make([]byte, 64<<10)}
	s.small, s.big, s.huge = bytes.Repeat([]byte{'x'}, 64), bytes.Repeat([]byte{'x'}, 1024), bytes.Repeat([]byte{'x'}, 10<<10)
	if s.lfd, err = unix.Socket(sockFamily(sa), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0); err != nil {
		return nil, fmt.Errorf("backend: socket: %w", err)
	}
	_ = unix.SetsockoptInt(s.lfd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.Bind(s.lfd, sa); err != nil {
		s.close()
		return nil, fmt.Errorf("backend: bind %s: %w", addr, err)
	}
	if err := unix.Listen(s.lfd, 4096); err != nil {
		s.close()
		return nil, fmt.Errorf("backend: listen: %w", err)
	}
	bound, err := unix.Getsockname(s.lfd)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("backend: getsockname: %w", err)
	}
	port := 0
	switch b := bound.(type) {
	case *unix.SockaddrInet4:
		port = b.Port
	case *unix.SockaddrInet6:
		port = b.Port
	}
	s.addr = net.JoinHostPort(host, strconv.Itoa(port))
	if s.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		s.close()
		return nil, fmt.Errorf("backend: epoll_create1: %w", err)
	}
	if err := unix.EpollCtl(s.epfd, unix.EPOLL_CTL_ADD, s.lfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: beListenToken}); err != nil {
		s.close()
		return nil, fmt.Errorf("backend: epoll_ctl: %w", err)
	}
	return s, nil
}

func (s *backendServer) close() {
	for _, c := range s.conns {
		if c != nil {
			_ = unix.Close(c.fd)
		}
	}
	s.conns, s.free = nil, nil
	if s.lfd >= 0 {
		_ = unix.Close(s.lfd)
		s.lfd = -1
	}
	if s.epfd >= 0 {
		_ = unix.Close(s.epfd)
		s.epfd = -1
	}
}

// handle takes an epoll event whose token is the backend's.
func (s *backendServer) handle(ev unix.EpollEvent) {
	if ev.Fd == beListenToken {
		s.accept()
		return
	}
	i := int(ev.Fd) - beBase
	if i < 0 || i >= len(s.conns) || s.conns[i] == nil {
		return
	}
	c := s.conns[i]
	if ev.Events&unix.EPOLLOUT != 0 && len(c.out) > 0 {
		if !s.flush(i, c) {
			return
		}
	}
	if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		s.onReadable(i, c)
	}
}

func (s *backendServer) accept() {
	for {
		fd, _, err := unix.Accept4(s.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			return // EAGAIN, or an error the next event retries
		}
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		var i int
		if n := len(s.free); n > 0 {
			i, s.free = s.free[n-1], s.free[:n-1]
		} else {
			i = len(s.conns)
			s.conns = append(s.conns, nil)
		}
		s.conns[i] = &beConn{fd: fd}
		if err := unix.EpollCtl(s.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(beBase + i)}); err != nil {
			s.drop(i)
		}
	}
}

func (s *backendServer) drop(i int) {
	if c := s.conns[i]; c != nil {
		_ = unix.Close(c.fd) // also leaves the epoll set
		s.conns[i] = nil
		s.free = append(s.free, i)
	}
}

func (s *backendServer) onReadable(i int, c *beConn) {
	n, err := unix.Read(c.fd, s.rbuf)
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
		return
	}
	if err != nil || n == 0 {
		s.drop(i)
		return
	}
	if c.closeAfter {
		return // answering the last request; the rest is ignored
	}
	data := s.rbuf[:n]
	if len(c.in) > 0 {
		c.in = append(c.in, data...)
		data = c.in
	}
	used := s.serve(c, data)
	// What is left waits for the next read (copy handles the overlap when
	// data is c.in).
	c.in = append(c.in[:0], data[used:]...)
	s.flush(i, c)
}

// serve answers every complete request at the start of b and returns the
// bytes it used.
func (s *backendServer) serve(c *beConn, b []byte) int {
	used := 0
	for !c.closeAfter {
		req := b[used:]
		end := bytes.Index(req, headersEnd)
		if end < 0 {
			if len(req) > beMaxHeader {
				c.closeAfter = true
				s.answer(c, 431, "request header too large", nil)
			}
			break
		}
		r, err := parseRequest(req[:end+2])
		if err != nil {
			c.closeAfter = true
			s.answer(c, 400, err.Error(), nil)
			break
		}
		if r.chunked {
			c.closeAfter = true
			s.answer(c, 501, "chunked request bodies are not supported", nil)
			break
		}
		total := end + 4 + r.length
		if len(req) < total {
			break
		}
		used += total
		c.closeAfter = r.close
		switch r.path {
		case "/static":
			s.answer(c, 200, "", s.small)
		case "/static1k":
			s.answer(c, 200, "", s.big)
		case "/static10k":
			s.answer(c, 200, "", s.huge)
		case "/healthz":
			s.answer(c, 200, "ok", nil)
		case "/v1/traces":
			s.answer(c, 200, "", nil)
		default:
			s.answer(c, 404, "not found", nil)
		}
	}
	return used
}

var statusLines = map[int]string{200: "200 OK", 400: "400 Bad Request", 404: "404 Not Found", 431: "431 Request Header Fields Too Large", 501: "501 Not Implemented"}

// answer appends a response to c.out; body is text when b is nil.
func (s *backendServer) answer(c *beConn, status int, text string, b []byte) {
	now := time.Now()
	if sec := now.Unix(); sec != s.dateAt {
		s.dateAt = sec
		s.date = now.UTC().AppendFormat(s.date[:0], time.RFC1123)
		s.date = append(s.date[:len(s.date)-3], "GMT"...) // RFC1123 prints UTC as "UTC"
	}
	n := len(b)
	if b == nil {
		n = len(text)
	}
	o := append(c.out, "HTTP/1.1 "...)
	o = append(o, statusLines[status]...)
	o = append(o, "\r\nServer: weirbench\r\nDate: "...)
	o = append(o, s.date...)
	o = append(o, "\r\nContent-Type: text/plain\r\nContent-Length: "...)
	o = strconv.AppendInt(o, int64(n), 10)
	o = append(o, "\r\nX-Echo-Server: "...)
	o = append(o, s.name...)
	if c.closeAfter {
		o = append(o, "\r\nConnection: close"...)
	}
	o = append(o, "\r\n\r\n"...)
	if b == nil {
		o = append(o, text...)
	} else {
		o = append(o, b...)
	}
	c.out = o
	s.answered++
}

// flush writes what c owes; false when the connection was dropped.
func (s *backendServer) flush(i int, c *beConn) bool {
	for len(c.out) > 0 {
		n, err := unix.Write(c.fd, c.out)
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			s.drop(i)
			return false
		}
		c.out = c.out[:copy(c.out, c.out[n:])]
	}
	if len(c.out) == 0 && c.closeAfter {
		s.drop(i)
		return false
	}
	if want := len(c.out) > 0; want != c.wantOut {
		c.wantOut = want
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(beBase + i)}
		if want {
			ev.Events |= unix.EPOLLOUT
		}
		if err := unix.EpollCtl(s.epfd, unix.EPOLL_CTL_MOD, c.fd, &ev); err != nil {
			s.drop(i)
			return false
		}
	}
	return true
}

// request is what the backend needs of a request head.
type request struct {
	path    string
	length  int
	chunked bool
	close   bool
}

// parseRequest reads the request line and the fields the framing depends
// on from head (which ends with the CRLF of the last field line).
func parseRequest(head []byte) (request, error) {
	var r request
	line, rest, _ := bytes.Cut(head, crlf)
	parts := bytes.Split(line, []byte{' '})
	if len(parts) != 3 || len(parts[0]) == 0 || len(parts[1]) == 0 || !bytes.HasPrefix(parts[2], []byte("HTTP/1.")) {
		return r, fmt.Errorf("bad request line %q", clip(line))
	}
	target := parts[1]
	if q := bytes.IndexByte(target, '?'); q >= 0 {
		target = target[:q]
	}
	r.path = string(target)
	http10 := string(parts[2]) == "HTTP/1.0"
	keepAlive := false
	for len(rest) > 0 {
		var f []byte
		f, rest, _ = bytes.Cut(rest, crlf)
		name, value, ok := bytes.Cut(f, []byte{':'})
		if !ok {
			return r, fmt.Errorf("bad header line %q", clip(f))
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, err := strconv.Atoi(string(value))
			if err != nil || n < 0 {
				return r, fmt.Errorf("bad Content-Length %q", clip(value))
			}
			r.length = n
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			r.chunked = true
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.EqualFold(value, []byte("close")) {
				r.close = true
			} else if bytes.EqualFold(value, []byte("keep-alive")) {
				keepAlive = true
			}
		}
	}
	if http10 && !keepAlive {
		r.close = true
	}
	return r, nil
}

// backendReply is the line the backend process writes for each run it
// was asked for.
type backendReply struct {
	Result *loadResult `json:"result,omitempty"`
	Error  string      `json:"error,omitempty"`
}

// backendChildMain is the backend process (WEIRBENCH_CHILD=backend): it
// serves WEIRBENCH_BACKEND_LISTEN until its stdin closes, and runs the
// load each line of stdin asks for (a loadSpec as JSON) on the same loop,
// answering with a backendReply line on stdout.
func backendChildMain() int {
	srv, err := listenBackend(os.Getenv("WEIRBENCH_BACKEND_LISTEN"), "bench")
	if err != nil {
		fmt.Fprintln(os.Stderr, "weirbench backend:", err)
		return 1
	}
	defer srv.close()
	// epoll_wait blocks the thread; keep the goroutine on it.
	runtime.LockOSThread()
	if err := unix.SetNonblock(0, true); err != nil {
		fmt.Fprintln(os.Stderr, "weirbench backend: stdin:", err)
		return 1
	}
	if err := unix.EpollCtl(srv.epfd, unix.EPOLL_CTL_ADD, 0, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: controlToken}); err != nil {
		fmt.Fprintln(os.Stderr, "weirbench backend: stdin must be a pipe:", err)
		return 1
	}
	fmt.Fprintln(os.Stderr, "weirbench backend: listening on", srv.addr)
	events := make([]unix.EpollEvent, 256)
	buf := make([]byte, 64<<10)
	var ctl []byte
	out := json.NewEncoder(os.Stdout)
	for {
		n, err := unix.EpollWait(srv.epfd, events, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "weirbench backend: epoll_wait:", err)
			return 1
		}
		for _, ev := range events[:n] {
			if ev.Fd != controlToken {
				srv.handle(ev)
				continue
			}
			m, err := unix.Read(0, buf)
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil || m == 0 {
				return 0 // the harness is done (or gone)
			}
			ctl = append(ctl, buf[:m]...)
		}
		for {
			i := bytes.IndexByte(ctl, '\n')
			if i < 0 {
				break
			}
			var reply backendReply
			var spec loadSpec
			if err := json.Unmarshal(ctl[:i], &spec); err != nil {
				reply.Error = "read spec: " + err.Error()
			} else if res, err := runLoadOn(spec, srv); err != nil {
				reply.Error = err.Error()
			} else {
				reply.Result = &res
			}
			ctl = append(ctl[:0], ctl[i+1:]...)
			if err := out.Encode(reply); err != nil {
				fmt.Fprintln(os.Stderr, "weirbench backend: write result:", err)
				return 1
			}
		}
	}
}
