package main

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net"
	"runtime"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// The load generator is one event loop on epoll, as wrk's is: non-blocking
// sockets, one request in flight per connection, a timerfd for the
// schedule. A goroutine per connection on net.Conn costs three to four
// times more CPU per request (every read first fails with EAGAIN, every
// wake-up goes through the scheduler, and time.Sleep only has millisecond
// resolution), and that CPU is taken from the backend sharing the load
// CPUs. Measured here against the echo backend: closed loop about 3 µs of
// generator CPU per request (wrk: 4 µs), open loop at 40,000/s about 9 µs
// (each request wakes the loop twice, for its due time and its answer).

const (
	connClosed = iota
	connConnecting
	connIdle
	connBusy
)

// timerToken marks the timerfd's events; connections use their index.
const timerToken = math.MaxInt32

// maxResponse bounds the bytes kept for one response; the benchmark's are
// at most a few KiB.
const maxResponse = 4 << 20

type evConn struct {
	idx    int // in evLoop.conns, and the epoll token
	fd     int
	state  int
	target int
	// assigned is set when a connecting connection carries a request to
	// send once connected.
	assigned bool
	inIdle   bool
	intended int64 // ns since start: when the request was due
	buf      []byte
	// untilClose: the response has no length; it ends at EOF.
	untilClose bool
	status     int
	retryAt    int64
}

type evLoop struct {
	spec    loadSpec
	open    bool
	start   time.Time
	epfd    int
	tfd     int
	addrs   []unix.Sockaddr
	reqs    [][]byte
	conns   []*evConn
	idle    []int
	closedN int
	pending []int64 // due times (ns since start) not yet sent, FIFO
	head    int
	rbuf    []byte
	events  []unix.EpollEvent

	// srv: the backend served by this loop (nil: none). sharedEp: the
	// epoll set is srv's, not closed with the loop. spin: poll instead of
	// sleeping; busy counts the time of iterations that did something.
	srv      *backendServer
	sharedEp bool
	spin     bool
	busy     int64
	sent     int64
	stalls   int64 // idle iterations longer than loopStall
	stallMax int64

	lat, lag *histogram
	status   map[int]int64
	ok       int64
	non2xx   int64
	errs     int64
	unsent   int64
	done     int64
	last     int64
	firstErr error
}

// runLoad drives one run on an event loop of its own and returns its
// measurements.
func runLoad(spec loadSpec) (loadResult, error) { return runLoadOn(spec, nil) }

// runLoadOn drives one run; with srv, on the backend's event loop, which
// goes on answering its connections during the run (and an open-loop run
// with spec.Spin polls instead of sleeping: runOpenSpinning).
func runLoadOn(spec loadSpec, srv *backendServer) (loadResult, error) {
	switch {
	case len(spec.Targets) == 0:
		return loadResult{}, errors.New("load: no targets")
	case spec.Conns < 1:
		return loadResult{}, errors.New("load: conns must be >= 1")
	case spec.Duration <= 0:
		return loadResult{}, errors.New("load: duration must be > 0")
	case spec.Rate < 0:
		return loadResult{}, errors.New("load: rate must be >= 0")
	}
	if spec.Grace <= 0 {
		spec.Grace = time.Second
	}
	l := &evLoop{spec: spec, open: spec.Rate > 0, epfd: -1, tfd: -1,
		rbuf: make([]byte, 64<<10), events: make([]unix.EpollEvent, 256),
		lat: newHistogram(), lag: newHistogram(), status: map[int]int64{}}
	defer l.close()
	for _, t := range spec.Targets {
		sa, err := sockaddr(t)
		if err != nil {
			return loadResult{}, err
		}
		l.addrs = append(l.addrs, sa)
		l.reqs = append(l.reqs, buildRequest(t, spec.Path, spec.Headers, spec.Body))
	}
	for i := 0; i < spec.Conns; i++ {
		l.conns = append(l.conns, &evConn{idx: i, fd: -1, target: i % len(spec.Targets)})
	}
	l.closedN = len(l.conns)
	var err error
	if srv != nil {
		l.srv, l.epfd, l.sharedEp = srv, srv.epfd, true
	} else if l.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return loadResult{}, fmt.Errorf("load: epoll_create1: %w", err)
	}
	// epoll_wait blocks the thread; keep the goroutine on it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	res := loadResult{Mode: "closed"}
	var elapsed time.Duration
	if l.open {
		res.Mode, res.Rate = "open", spec.Rate
		res.Scheduled, elapsed, err = l.runOpen()
	} else {
		elapsed, err = l.runClosed()
	}
	if err != nil {
		return loadResult{}, err
	}
	res.OK, res.Non2xx, res.Errors, res.Unsent, res.Completed = l.ok, l.non2xx, l.errs, l.unsent, l.done
	if len(l.status) > 0 {
		res.Status = map[string]int64{}
		for k, v := range l.status {
			res.Status[strconv.Itoa(k)] = v
		}
	}
	if l.firstErr != nil {
		res.FirstError = l.firstErr.Error()
	}
	res.Seconds = elapsed.Seconds()
	if l.spin && elapsed > 0 {
		res.LoopBusy = float64(l.busy) / float64(elapsed)
		res.LoopStalls, res.LoopStallMaxUs = l.stalls, float64(l.stallMax)/1e3
	}
	if res.Seconds > 0 {
		res.RPS = float64(res.OK) / res.Seconds
	}
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	res.P50us = us(l.lat.quantile(0.50))
	res.P90us = us(l.lat.quantile(0.90))
	res.P99us = us(l.lat.quantile(0.99))
	res.P999us = us(l.lat.quantile(0.999))
	res.MaxUs = us(l.lat.quantile(1))
	if l.open {
		res.SendLagP50 = us(l.lag.quantile(0.50))
		res.SendLagP99 = us(l.lag.quantile(0.99))
		res.SendLagP999 = us(l.lag.quantile(0.999))
	}
	return res, nil
}

func sockaddr(hostport string) (unix.Sockaddr, error) {
	a, err := net.ResolveTCPAddr("tcp", hostport)
	if err != nil {
		return nil, fmt.Errorf("load: target %q: %w", hostport, err)
	}
	if ip4 := a.IP.To4(); ip4 != nil {
		sa := &unix.SockaddrInet4{Port: a.Port}
		copy(sa.Addr[:], ip4)
		return sa, nil
	}
	sa := &unix.SockaddrInet6{Port: a.Port}
	copy(sa.Addr[:], a.IP.To16())
	return sa, nil
}

// sockFamily is the address family of a sockaddr made by sockaddr.
func sockFamily(sa unix.Sockaddr) int {
	if _, ok := sa.(*unix.SockaddrInet6); ok {
		return unix.AF_INET6
	}
	return unix.AF_INET
}

func (l *evLoop) now() int64 { return int64(time.Since(l.start)) }

// runOpen sends request n at start + n/rate, whatever happened to the
// ones before it. Due requests wait in a queue when every connection is
// busy, and the wait counts: latency runs from the due time.
func (l *evLoop) runOpen() (int64, time.Duration, error) {
	total := int64(l.spec.Rate * l.spec.Duration.Seconds())
	if total < 1 {
		total = 1
	}
	interval := float64(time.Second) / l.spec.Rate
	// The timer ticks at each due time, or every 100 µs at rates above
	// 10,000/s (then a tick releases a few requests): that bounds the
	// wake-ups, whose CPU is taken from the backend on the same CPUs.
	// Measured at 40,000/s: a 50 µs tick cost the generator 14 µs of CPU
	// per request, a 100 µs tick 9 µs; the median send lag stayed about
	// 40 µs.
	if l.srv != nil && l.spec.Spin {
		return l.runOpenSpinning(total, interval)
	}
	period := time.Duration(interval)
	if period < 100*time.Microsecond {
		period = 100 * time.Microsecond
	}
	var err error
	l.tfd, err = unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return 0, 0, fmt.Errorf("load: timerfd_create: %w", err)
	}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, l.tfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: timerToken}); err != nil {
		return 0, 0, fmt.Errorf("load: epoll_ctl timerfd: %w", err)
	}
	l.start = time.Now()
	ts := unix.NsecToTimespec(int64(period))
	if err := unix.TimerfdSettime(l.tfd, 0, &unix.ItimerSpec{Interval: ts, Value: ts}, nil); err != nil {
		return 0, 0, fmt.Errorf("load: timerfd_settime: %w", err)
	}
	stopAt := int64(l.spec.Duration + l.spec.Grace)
	var n int64
	armed := true
	for {
		now := l.now()
		n = l.queueDue(now, n, total, interval)
		if n >= total && armed {
			_ = unix.TimerfdSettime(l.tfd, 0, &unix.ItimerSpec{}, nil)
			armed = false
		}
		l.dispatch(now)
		if now >= stopAt || (n >= total && l.head == len(l.pending) && l.inFlight() == 0) {
			break
		}
		timeout := -1
		if !armed {
			timeout = msUntil(stopAt - l.now())
		}
		if _, err := l.wait(timeout); err != nil {
			return 0, 0, err
		}
	}
	l.finish(stopAt)
	return total, l.openElapsed(total, interval), nil
}

// queueDue queues the requests of the schedule due by now, after the n
// already queued, and returns the new count.
func (l *evLoop) queueDue(now, n, total int64, interval float64) int64 {
	upTo := min(int64(float64(now)/interval)+1, total)
	for ; n < upTo; n++ {
		l.pending = append(l.pending, int64(float64(n)*interval))
	}
	return n
}

// openElapsed: the run lasts as long as its schedule, or until the last
// answer when answers came late; the grace period must not dilute the
// rate of a run that kept up.
func (l *evLoop) openElapsed(total int64, interval float64) time.Duration {
	elapsed := time.Duration(float64(total) * interval)
	if d := time.Duration(l.last); d > elapsed {
		elapsed = d
	}
	return elapsed
}

// loopStall: a polling iteration that found nothing to do and took longer
// than this means the loop was off its CPU.
const loopStall = int64(500 * time.Microsecond)

// runOpenSpinning is runOpen on the backend's loop: it never sleeps. The
// loop serves the backend's connections and the generator's alike, and
// polls epoll without waiting, so no answer and no request waits for this
// CPU to wake up (a wake-up, cross-CPU on a virtual machine, costs more
// than the request): what it measures is the contender's latency, not the
// load CPU's. The CPU shows 100 % busy; the loop's own load is the time
// of the iterations that handled something (LoopBusy).
func (l *evLoop) runOpenSpinning(total int64, interval float64) (int64, time.Duration, error) {
	l.spin = true
	l.start = time.Now()
	stopAt := int64(l.spec.Duration + l.spec.Grace)
	var n, iterStart, yielded int64
	worked := false
	for {
		now := l.now()
		if worked {
			l.busy += now - iterStart
		} else if gap := now - iterStart; gap > loopStall && iterStart > 0 {
			// An iteration that did nothing took this long: the loop was
			// off its CPU (another process, the hypervisor).
			l.stalls++
			l.stallMax = max(l.stallMax, gap)
		}
		iterStart = now
		if now-yielded > int64(time.Millisecond) {
			// A goroutine that never yields is preempted by the runtime's
			// monitor after 10 ms, which then wakes every 20 µs for a while
			// (measured: ~1,800 extra context switches a second on this
			// CPU). Going through the scheduler now and then keeps it
			// asleep.
			runtime.Gosched()
			yielded = now
		}
		n = l.queueDue(now, n, total, interval)
		sent := l.sent
		l.dispatch(now)
		if now >= stopAt || (n >= total && l.head == len(l.pending) && l.inFlight() == 0) {
			break
		}
		events, err := l.wait(0)
		if err != nil {
			return 0, 0, err
		}
		worked = events > 0 || l.sent != sent
	}
	l.finish(stopAt)
	return total, l.openElapsed(total, interval), nil
}

// runClosed keeps every connection busy until the duration is over: the
// measure of maximum throughput when wrk is not installed.
func (l *evLoop) runClosed() (time.Duration, error) {
	l.start = time.Now()
	end := int64(l.spec.Duration)
	hardStop := end + int64(l.spec.Grace)
	for {
		now := l.now()
		if now < end {
			// Every connection that can take a request gets one now.
			for l.head < len(l.pending) || l.canSend(now) {
				if l.head == len(l.pending) {
					l.pending = append(l.pending, now)
				}
				before := len(l.pending) - l.head
				l.dispatch(now)
				if len(l.pending)-l.head == before {
					break
				}
			}
			// Requests not taken by any connection are not owed: drop them.
			l.pending, l.head = l.pending[:0], 0
		}
		if now >= hardStop || (now >= end && l.inFlight() == 0) {
			break
		}
		timeout := msUntil(end - now)
		if now >= end {
			timeout = msUntil(hardStop - now)
		} else if l.closedN > 0 && timeout > 10 {
			timeout = 10 // a refused connection retries after 10 ms
		}
		if _, err := l.wait(timeout); err != nil {
			return 0, err
		}
	}
	l.finish(hardStop)
	return time.Since(l.start), nil
}

// canSend reports whether some connection could take a request now.
func (l *evLoop) canSend(now int64) bool {
	for _, i := range l.idle {
		if l.conns[i].state == connIdle {
			return true
		}
	}
	if l.closedN > 0 {
		for _, c := range l.conns {
			if c.state == connClosed && c.retryAt <= now {
				return true
			}
		}
	}
	return false
}

func msUntil(ns int64) int {
	if ns <= 0 {
		return 0
	}
	return int((ns + int64(time.Millisecond) - 1) / int64(time.Millisecond))
}

func (l *evLoop) inFlight() int {
	n := 0
	for _, c := range l.conns {
		if c.state == connBusy || c.state == connConnecting {
			n++
		}
	}
	return n
}

// wait blocks in epoll_wait and handles what it returns: the number of
// events.
func (l *evLoop) wait(timeout int) (int, error) {
	n, err := unix.EpollWait(l.epfd, l.events, timeout)
	if err != nil {
		if errors.Is(err, unix.EINTR) {
			return 0, nil
		}
		return 0, fmt.Errorf("load: epoll_wait: %w", err)
	}
	for _, ev := range l.events[:n] {
		if ev.Fd == timerToken {
			var b [8]byte
			_, _ = unix.Read(l.tfd, b[:])
			continue
		}
		if ev.Fd >= beListenToken-1 { // the backend's, or its control pipe
			if l.srv != nil && ev.Fd != controlToken {
				l.srv.handle(ev)
			}
			continue
		}
		c := l.conns[ev.Fd]
		switch c.state {
		case connConnecting:
			l.onConnected(c)
		case connBusy, connIdle:
			l.onReadable(c)
		}
	}
	return n, nil
}

// dispatch sends due requests on idle connections, opening closed ones
// when none is idle.
func (l *evLoop) dispatch(now int64) {
	for l.head < len(l.pending) {
		c := l.popIdle()
		if c == nil {
			c = l.closedConn(now)
			if c == nil {
				break
			}
			intended := l.pending[l.head]
			l.head++
			l.connect(c, intended)
			continue
		}
		intended := l.pending[l.head]
		l.head++
		l.send(c, intended)
	}
	if l.head == len(l.pending) {
		l.pending, l.head = l.pending[:0], 0
	}
}

func (l *evLoop) popIdle() *evConn {
	for len(l.idle) > 0 {
		i := l.idle[len(l.idle)-1]
		l.idle = l.idle[:len(l.idle)-1]
		c := l.conns[i]
		c.inIdle = false
		if c.state == connIdle {
			return c
		}
	}
	return nil
}

func (l *evLoop) pushIdle(i int) {
	c := l.conns[i]
	c.state = connIdle
	if !c.inIdle {
		c.inIdle = true
		l.idle = append(l.idle, i)
	}
}

func (l *evLoop) closedConn(now int64) *evConn {
	if l.closedN == 0 {
		return nil
	}
	for _, c := range l.conns {
		if c.state == connClosed && c.retryAt <= now {
			return c
		}
	}
	return nil
}

// connect opens c, which will carry the request due at intended.
func (l *evLoop) connect(c *evConn, intended int64) {
	sa := l.addrs[c.target]
	fd, err := unix.Socket(sockFamily(sa), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		l.fail(c, fmt.Errorf("socket: %w", err), true)
		return
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	c.fd, c.state, c.assigned, c.intended = fd, connConnecting, true, intended
	l.closedN--
	err = unix.Connect(fd, sa)
	if err != nil && !errors.Is(err, unix.EINPROGRESS) {
		l.fail(c, fmt.Errorf("connect to %s: %w", l.spec.Targets[c.target], err), true)
		return
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP, Fd: int32(c.idx)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		l.fail(c, fmt.Errorf("epoll_ctl: %w", err), true)
	}
}

func (l *evLoop) onConnected(c *evConn) {
	if soErr, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || soErr != 0 {
		if err == nil {
			err = unix.Errno(soErr)
		}
		l.fail(c, fmt.Errorf("connect to %s: %w", l.spec.Targets[c.target], err), true)
		return
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(c.idx)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.fd, &ev); err != nil {
		l.fail(c, fmt.Errorf("epoll_ctl: %w", err), true)
		return
	}
	c.assigned = false
	l.send(c, c.intended)
}

// send writes the request on a connected connection.
func (l *evLoop) send(c *evConn, intended int64) {
	req := l.reqs[c.target]
	now := l.now()
	if !l.open {
		intended = now
	} else if lag := now - intended; lag > 0 {
		l.lag.record(time.Duration(lag))
	} else {
		l.lag.record(0)
	}
	c.state, c.intended = connBusy, intended
	c.buf, c.untilClose = c.buf[:0], false
	l.sent++
	n, err := unix.Write(c.fd, req)
	if err != nil || n != len(req) {
		if err == nil {
			err = errors.New("short write")
		}
		l.fail(c, fmt.Errorf("write to %s: %w", l.spec.Targets[c.target], err), true)
	}
}

func (l *evLoop) onReadable(c *evConn) {
	n, err := unix.Read(c.fd, l.rbuf)
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
		return
	}
	if err != nil {
		l.fail(c, fmt.Errorf("read from %s: %w", l.spec.Targets[c.target], err), c.state == connBusy)
		return
	}
	if n == 0 {
		switch {
		case c.state == connIdle:
			l.closeConn(c) // the server closed a keep-alive connection
		case c.untilClose:
			l.complete(c, true)
		default:
			l.fail(c, fmt.Errorf("read from %s: connection closed before the response ended", l.spec.Targets[c.target]), true)
		}
		return
	}
	if c.state != connBusy {
		l.fail(c, fmt.Errorf("read from %s: %d bytes nobody asked for", l.spec.Targets[c.target], n), false)
		return
	}
	c.buf = append(c.buf, l.rbuf[:n]...)
	r, err := parseResponse(c.buf)
	if err != nil {
		l.fail(c, fmt.Errorf("response from %s: %w", l.spec.Targets[c.target], err), true)
		return
	}
	switch {
	case r.complete:
		c.status = r.status
		l.complete(c, r.close)
	case r.untilClose:
		c.status, c.untilClose = r.status, true
	}
}

// complete records a whole response.
func (l *evLoop) complete(c *evConn, closeAfter bool) {
	now := l.now()
	l.lat.record(time.Duration(now - c.intended))
	l.last = now
	l.done++
	l.status[c.status]++
	if c.status >= 200 && c.status < 300 {
		l.ok++
	} else {
		l.non2xx++
	}
	if closeAfter {
		l.closeConn(c)
		return
	}
	l.pushIdle(c.idx)
}

// fail counts an error (when a request was lost) and closes c.
func (l *evLoop) fail(c *evConn, err error, lostRequest bool) {
	if lostRequest {
		l.errs++
		if l.firstErr == nil {
			l.firstErr = err
		}
	}
	l.closeConn(c)
	if !l.open {
		c.retryAt = l.now() + int64(10*time.Millisecond)
	}
}

func (l *evLoop) closeConn(c *evConn) {
	if c.state == connClosed {
		return
	}
	if c.fd >= 0 {
		_ = unix.Close(c.fd) // closing also removes it from the epoll set
	}
	c.fd, c.state, c.assigned, c.untilClose = -1, connClosed, false, false
	c.buf = c.buf[:0]
	l.closedN++
}

// finish accounts for what the run's end cut off: due requests never sent
// count as unsent, with the least they would have waited recorded so the
// tail does not forget them; requests in flight count as errors.
func (l *evLoop) finish(stopAt int64) {
	for _, at := range l.pending[l.head:] {
		l.unsent++
		l.lat.record(time.Duration(stopAt - at))
	}
	l.pending, l.head = l.pending[:0], 0
	for _, c := range l.conns {
		if c.state == connBusy || c.state == connConnecting {
			l.errs++
			if l.firstErr == nil {
				l.firstErr = fmt.Errorf("no answer from %s before the run ended", l.spec.Targets[c.target])
			}
		}
	}
}

func (l *evLoop) close() {
	for _, c := range l.conns {
		if c.fd >= 0 {
			_ = unix.Close(c.fd)
			c.fd = -1
		}
	}
	if l.tfd >= 0 {
		_ = unix.Close(l.tfd)
	}
	if l.epfd >= 0 && !l.sharedEp {
		_ = unix.Close(l.epfd)
	}
}

// response is what parseResponse learned from the bytes so far.
type response struct {
	complete   bool
	status     int
	close      bool // Connection: close
	untilClose bool // no length: the body ends when the connection does
}

var (
	crlf       = []byte("\r\n")
	headersEnd = []byte("\r\n\r\n")
)

// parseResponse reads an HTTP/1.1 response (RFC 9112) from b: status line,
// headers, then a body delimited by Content-Length, chunked transfer
// coding (§7.1), or the end of the connection (§6.3). It returns complete
// = false while more bytes are needed.
func parseResponse(b []byte) (response, error) {
	var r response
	end := bytes.Index(b, headersEnd)
	if end < 0 {
		if len(b) > 64<<10 {
			return r, errors.New("response header over 64 KiB")
		}
		return r, nil
	}
	lineEnd := bytes.Index(b, crlf)
	status := b[:lineEnd]
	if len(status) < 12 || !bytes.HasPrefix(status, []byte("HTTP/1.")) || status[8] != ' ' {
		return r, fmt.Errorf("bad status line %q", clip(status))
	}
	code, err := strconv.Atoi(string(status[9:12]))
	if err != nil || code < 100 || code > 599 {
		return r, fmt.Errorf("bad status line %q", clip(status))
	}
	r.status = code
	http10 := status[7] == '0'
	r.close = http10
	contentLength := int64(-1)
	chunked := false
	for rest := b[lineEnd+2 : end+2]; len(rest) > 0; {
		i := bytes.Index(rest, crlf)
		line := rest[:i]
		rest = rest[i+2:]
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return r, fmt.Errorf("bad header line %q", clip(line))
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 {
				return r, fmt.Errorf("bad Content-Length %q", clip(value))
			}
			contentLength = n
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.Contains(bytes.ToLower(value), []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			v := bytes.ToLower(value)
			if bytes.Contains(v, []byte("close")) {
				r.close = true
			} else if bytes.Contains(v, []byte("keep-alive")) {
				r.close = false
			}
		}
	}
	body := b[end+4:]
	switch {
	case code < 200 || code == 204 || code == 304:
		r.complete = true
	case chunked:
		done, err := chunkedDone(body)
		if err != nil {
			return r, err
		}
		r.complete = done
	case contentLength >= 0:
		if int64(len(body)) > contentLength {
			return r, fmt.Errorf("%d bytes past the %d-byte body", int64(len(body))-contentLength, contentLength)
		}
		r.complete = int64(len(body)) == contentLength
	default:
		r.untilClose = true
	}
	if len(b) > maxResponse {
		return r, fmt.Errorf("response over %d bytes", maxResponse)
	}
	return r, nil
}

// chunkedDone reports whether b holds a whole chunked body, trailers
// included (RFC 9112 §7.1).
func chunkedDone(b []byte) (bool, error) {
	for {
		i := bytes.Index(b, crlf)
		if i < 0 {
			if len(b) > 1024 {
				return false, errors.New("chunk size line over 1 KiB")
			}
			return false, nil
		}
		sizeText := b[:i]
		if semi := bytes.IndexByte(sizeText, ';'); semi >= 0 {
			sizeText = sizeText[:semi]
		}
		size, err := strconv.ParseInt(string(bytes.TrimSpace(sizeText)), 16, 64)
		if err != nil || size < 0 || size > maxResponse {
			return false, fmt.Errorf("bad chunk size %q", clip(b[:i]))
		}
		b = b[i+2:]
		if size == 0 {
			// Trailer fields, then an empty line.
			if bytes.HasPrefix(b, crlf) {
				return true, nil
			}
			return bytes.Contains(b, headersEnd), nil
		}
		if int64(len(b)) < size+2 {
			return false, nil
		}
		if !bytes.Equal(b[size:size+2], crlf) {
			return false, errors.New("chunk not followed by CRLF")
		}
		b = b[size+2:]
	}
}

func clip(b []byte) string {
	if len(b) > 60 {
		return string(b[:60]) + "..."
	}
	return string(b)
}
