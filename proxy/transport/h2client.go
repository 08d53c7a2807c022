package transport

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The gateway's own HTTP/2 client connection to an upstream, on x/net's
// Framer and HPACK (RATIONALE.md, "HTTP/2 to upstreams"). One reader
// goroutine per connection takes every frame; the calls write their own
// frames (HEADERS, DATA, RST_STREAM) from their goroutines into one
// buffer that whichever writer finds the socket free sends, so frames of
// streams sent at once leave in one write(2) without a writer goroutine.
// A call waits on its stream's one-slot channel; no goroutine per call
// except the one that sends a streamed request body.

const (
	// upStreamWindow is the receive window each stream advertises: what
	// an answer not yet read by the client may hold in memory.
	upStreamWindow = 1 << 20
	// upConnWindow is the connection's receive window; it is topped up
	// as DATA arrives (the streams' windows bound memory).
	upConnWindow = 1 << 30
	// upMaxPending bounds the frames a connection holds unsent before
	// writers wait for the socket.
	upMaxPending = 64 << 10
	// upPingAfter and upPingTimeout: a connection that read nothing for
	// upPingAfter is pinged; one still silent upPingTimeout later closes,
	// so its streams fail over instead of hanging.
	upPingAfter   = 30 * time.Second
	upPingTimeout = 5 * time.Second
	// upDefaultStreams is the stream limit assumed until the upstream's
	// SETTINGS say otherwise (RFC 9113 §6.5.2 recommends at least 100).
	upDefaultStreams = 100
	// upMaxStreams caps the streams of one connection whatever the
	// upstream allows.
	upMaxStreams = 1000
)

var (
	// errRefused: the upstream did not process the stream (GOAWAY past
	// it, REFUSED_STREAM): safe to send again on another connection.
	errRefused         = errors.New("upstream HTTP/2 stream refused before processing")
	errConnGone        = errors.New("upstream HTTP/2 connection closed")
	errHeadersTooLarge = errors.New("upstream HTTP/2 answer's header block too large")
)

// upConn is one HTTP/2 connection to an upstream.
type upConn struct {
	p  *h2Pool
	nc net.Conn
	br *bufio.Reader
	fr *http2.Framer // the reader goroutine's

	// The header block being read (the reader goroutine's): the same
	// reader and checks as the gateway's HTTP/2 server's.
	hb HeaderBlock

	// Writing: frames are appended to wbuf under wmu; the writer that
	// finds no send under way sends, looping until wbuf is empty.
	wmu      sync.Mutex
	wcond    *sync.Cond // a send finished (room in wbuf)
	wfr      *http2.Framer
	wbuf     []byte
	wspare   []byte
	flushing bool
	werr     error

	mu       sync.Mutex
	sendCond *sync.Cond // a send window grew, or a stream ended
	streams  map[uint32]*upStream
	nextID   uint32
	reserved int    // streams taken by take() not yet opened
	maxStr   uint32 // the upstream's SETTINGS_MAX_CONCURRENT_STREAMS
	sendWin  int64  // connection send window
	initWin  int32  // the upstream's SETTINGS_INITIAL_WINDOW_SIZE
	maxFrame uint32 // the upstream's SETTINGS_MAX_FRAME_SIZE
	goaway   bool   // no new streams (GOAWAY received, or closing)
	closed   bool
	err      error     // why it closed
	idleAt   time.Time // when its last stream ended
	recvOwed int64     // connection window consumed, not yet given back

	frames  atomic.Uint64 // frames read, for the ping check
	health  *time.Timer
	seen    uint64    // frames at the last check
	quietAt time.Time // when the count last moved
	pingAt  time.Time
	pinged  bool
	idleFor time.Duration
}

// upStream is one call on an upConn. A call whose body went with its
// HEADERS (no sender goroutine) gives its stream back to upStreams when
// its answer's body closes; the reader goroutine touches a stream only
// under c.mu while it is listed, and may signal it later, which is a
// wake-up its next call looks past.
type upStream struct {
	c    *upConn
	id   uint32
	wake chan struct{} // one slot: headers, data, end, error or the deadline arrived

	// The call's end: parent (the client's stream ended) and dl, the
	// deadline, after which a wait gives up; tmr wakes the call then.
	parent <-chan struct{}
	dl     time.Time
	tmr    *time.Timer
	reuse  bool // no goroutine but the call's holds it: pooled when done

	// under c.mu
	sendWin  int32
	status   int
	header   []hpack.HeaderField
	hdr      [8]hpack.HeaderField // header's first fields, without allocating
	gotHead  bool
	trailer  http.Header
	buf      []byte
	off      int
	owed     int32 // stream window consumed, not yet given back
	recvDone bool
	sentEnd  bool
	err      error
	done     bool // removed from the connection
}

// sink appends the framer's bytes to the connection's write buffer
// (called under wmu).
type upSink struct{ c *upConn }

func (s upSink) Write(p []byte) (int, error) {
	s.c.wbuf = append(s.c.wbuf, p...)
	return len(p), nil
}

// newUpConn starts HTTP/2 on nc: the preface, SETTINGS and the
// connection window, and the reader goroutine.
func newUpConn(p *h2Pool, nc net.Conn) (*upConn, error) {
	c := &upConn{p: p, nc: nc, br: bufio.NewReaderSize(nc, 16<<10), streams: map[uint32]*upStream{},
		nextID: 1, maxStr: upDefaultStreams, sendWin: 65535, initWin: 65535, maxFrame: 16 << 10,
		idleAt: time.Now()}
	c.quietAt = c.idleAt
	c.wcond = sync.NewCond(&c.wmu)
	c.sendCond = sync.NewCond(&c.mu)
	c.fr = http2.NewFramer(nil, c.br)
	c.fr.SetReuseFrames()
	maxHdr := uint32(p.t.cfg.MaxHeaderBytes)
	c.fr.MaxHeaderListSize = maxHdr
	c.hb.Init(int(maxHdr))
	c.wfr = http2.NewFramer(upSink{c}, nil)
	c.idleFor = p.t.cfg.IdleTimeout
	c.wmu.Lock()
	c.wbuf = append(c.wbuf, http2.ClientPreface...)
	_ = c.wfr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 0},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: upStreamWindow},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: maxHdr})
	_ = c.wfr.WriteWindowUpdate(0, upConnWindow-65535)
	err := c.flushLocked()
	if err != nil {
		nc.Close()
		return nil, err
	}
	c.health = time.AfterFunc(c.checkEvery(), c.check)
	go c.readLoop()
	return c, nil
}

func (c *upConn) checkEvery() time.Duration {
	d := upPingTimeout
	if c.idleFor > 0 && c.idleFor/2 < d {
		d = max(c.idleFor/2, 10*time.Millisecond)
	}
	return d
}

// flushLocked sends wbuf (called with wmu held, returns with it held)
// unless another writer is sending, which then sends it too.
func (c *upConn) flushLocked() error { return c.flush(true) }

// flush is flushLocked; the reader's own frames (wait false) never wait
// for room, so a peer that writes while not reading cannot stop the
// reader.
func (c *upConn) flush(wait bool) error {
	for wait && c.flushing && c.werr == nil && len(c.wbuf) > upMaxPending {
		c.wcond.Wait() // bounded: the peer must read
	}
	if c.werr != nil {
		c.wmu.Unlock()
		return c.werr
	}
	if c.flushing {
		c.wmu.Unlock()
		return nil
	}
	c.flushing = true
	for len(c.wbuf) > 0 && c.werr == nil {
		b := c.wbuf
		c.wbuf = c.wspare[:0]
		c.wmu.Unlock()
		_, err := c.nc.Write(b)
		c.wmu.Lock()
		c.wspare = b[:0]
		if err != nil {
			c.werr = err
		}
		c.wcond.Broadcast()
	}
	c.flushing = false
	err := c.werr
	c.wmu.Unlock()
	if err != nil {
		c.fail(err)
	}
	return err
}

// control writes a frame of the connection's own (SETTINGS ack, PING,
// WINDOW_UPDATE, RST_STREAM).
func (c *upConn) control(write func(*http2.Framer) error) {
	c.wmu.Lock()
	if c.werr != nil {
		c.wmu.Unlock()
		return
	}
	_ = write(c.wfr)
	_ = c.flush(false)
}

// reserve takes a stream slot for a call (take); false when none is free.
func (c *upConn) reserve() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.goaway || c.closed || uint32(len(c.streams)+c.reserved) >= c.maxStr || c.nextID >= 1<<31-1 {
		return false
	}
	c.reserved++
	return true
}

// upRequest is what a call sends.
type upRequest struct {
	block     []byte // the HPACK header block (hpack.go)
	body      []byte // a buffered body
	stream    io.Reader
	hasStream bool
}

// open sends the request's HEADERS (and a buffered body) on a reserved
// slot and returns its stream. A streamed body is sent by the caller
// (sendBody).
func (c *upConn) open(r *upRequest, parent <-chan struct{}, dl time.Time) (*upStream, error) {
	s := getStream(c, parent, dl)
	endHead := len(r.body) == 0 && !r.hasStream
	c.wmu.Lock()
	c.mu.Lock()
	c.reserved--
	if c.closed || c.goaway {
		// Nothing was sent on it: the stream goes elsewhere, unless the
		// target is no HTTP/2 server at all.
		err := errRefused
		if c.closed && errors.Is(c.err, ErrNotHTTP2) {
			err = c.err
		}
		c.mu.Unlock()
		c.wmu.Unlock()
		c.p.release()
		putStream(s)
		return nil, err
	}
	s.id = c.nextID
	c.nextID += 2
	s.sendWin = c.initWin
	c.streams[s.id] = s
	maxFrame := int(c.maxFrame)
	c.mu.Unlock()
	blk := r.block
	first := true
	for first || len(blk) > 0 {
		n := min(len(blk), maxFrame)
		if first {
			_ = c.wfr.WriteHeaders(http2.HeadersFrameParam{StreamID: s.id, BlockFragment: blk[:n],
				EndStream: endHead, EndHeaders: n == len(blk)})
			first = false
		} else {
			_ = c.wfr.WriteContinuation(s.id, n == len(blk), blk[:n])
		}
		blk = blk[n:]
	}
	s.sentEnd = endHead
	if len(r.body) > 0 {
		// A buffered body goes in the same write as far as the windows
		// allow; the rest is sent like a streamed one.
		n := c.takeWindow(s, len(r.body), false)
		if n > 0 {
			_ = c.wfr.WriteData(s.id, n == len(r.body), r.body[:n])
			s.sentEnd = n == len(r.body)
			r.body = r.body[n:]
		}
	}
	if err := c.flushLocked(); err != nil {
		return nil, err
	}
	return s, nil
}

// takeWindow takes up to n bytes of both send windows for s (wait: until
// some is open, or the stream or connection ended).
func (c *upConn) takeWindow(s *upStream, n int, wait bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n = min(n, int(c.maxFrame))
	for {
		if s.done || c.closed {
			return 0
		}
		avail := min(int64(s.sendWin), c.sendWin)
		if avail > 0 {
			k := int(min(int64(n), avail))
			s.sendWin -= int32(k)
			c.sendWin -= int64(k)
			return k
		}
		if !wait {
			return 0
		}
		c.sendCond.Wait()
	}
}

// sendBody sends the rest of a request body as DATA, then END_STREAM;
// it reports a failure of the body itself (the client's) as
// *ClientBodyError.
func (s *upStream) sendBody(rest []byte, r io.Reader) error {
	c := s.c
	if r == nil {
		r = bytes.NewReader(rest)
	}
	buf := getUpBuf()
	defer putUpBuf(buf)
	for {
		n, rerr := r.Read(*buf)
		if rerr != nil && rerr != io.EOF {
			var ce *ClientBodyError
			if !errors.As(rerr, &ce) {
				ce = &ClientBodyError{Err: rerr}
			}
			s.reset(http2.ErrCodeCancel, ce)
			return ce
		}
		b := (*buf)[:n]
		end := rerr == io.EOF
		for len(b) > 0 || end {
			k := 0
			if len(b) > 0 {
				if k = c.takeWindow(s, len(b), true); k == 0 {
					return s.errOr(errConnGone)
				}
			}
			last := end && k == len(b)
			c.wmu.Lock()
			_ = c.wfr.WriteData(s.id, last, b[:k])
			if err := c.flushLocked(); err != nil {
				return err
			}
			b = b[k:]
			if last {
				c.mu.Lock()
				s.sentEnd = true
				c.mu.Unlock()
				return nil
			}
		}
	}
}

var upBufs = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

func getUpBuf() *[]byte  { return upBufs.Get().(*[]byte) }
func putUpBuf(b *[]byte) { upBufs.Put(b) }

var upStreams sync.Pool

// getStream is a stream for a call on c, from upStreams if one is there.
func getStream(c *upConn, parent <-chan struct{}, dl time.Time) *upStream {
	s, _ := upStreams.Get().(*upStream)
	if s == nil {
		s = &upStream{wake: make(chan struct{}, 1)}
		s.tmr = time.AfterFunc(time.Hour, s.signal)
		s.tmr.Stop()
	}
	s.c, s.parent, s.dl = c, parent, dl
	if !dl.IsZero() {
		s.tmr.Reset(time.Until(dl))
	}
	return s
}

// putStream gives back a stream no goroutine but the caller holds (the
// reader's late wake-up aside).
func putStream(s *upStream) {
	s.tmr.Stop()
	buf := s.buf[:0]
	if cap(buf) > 64<<10 {
		buf = nil
	}
	clear(s.hdr[:])
	*s = upStream{wake: s.wake, tmr: s.tmr, buf: buf, hdr: s.hdr}
	upStreams.Put(s)
}

// expired reports that the call's deadline passed.
func (s *upStream) expired() bool { return !s.dl.IsZero() && !time.Now().Before(s.dl) }

func (s *upStream) errOr(def error) error {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	return def
}

func (s *upStream) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// awaitHead waits for the answer's header block; the call's end (the
// client's stream, the deadline: errH2Timeout) resets the stream.
func (s *upStream) awaitHead() error {
	for {
		s.c.mu.Lock()
		got, err := s.gotHead, s.err
		s.c.mu.Unlock()
		if got {
			return nil
		}
		if err != nil {
			return err
		}
		if err := s.wait(); err != nil {
			return err
		}
	}
}

// wait waits for a signal; at the call's end it resets the stream.
func (s *upStream) wait() error {
	if s.expired() {
		s.reset(http2.ErrCodeCancel, errH2Timeout)
		return errH2Timeout
	}
	select {
	case <-s.wake:
		return nil
	case <-s.parent:
		s.reset(http2.ErrCodeCancel, errStreamCancelled)
		return errStreamCancelled
	}
}

var errStreamCancelled = errors.New("upstream HTTP/2 call cancelled")

// read reads the answer's body; io.EOF after END_STREAM (trailers, if
// any, are in s.trailer then). A failure at or past the deadline is a
// timeout (errH2Timeout), whoever noticed it first: the upstream, told
// the deadline in grpc-timeout, may reset the stream before our timer.
func (s *upStream) read(p []byte) (int, error) {
	c := s.c
	for {
		c.mu.Lock()
		if s.off < len(s.buf) {
			n := copy(p, s.buf[s.off:])
			s.off += n
			if s.off == len(s.buf) {
				s.buf, s.off = s.buf[:0], 0
			}
			s.owed += int32(n)
			var give int32
			if !s.recvDone && !s.done && s.owed >= upStreamWindow/2 {
				give, s.owed = s.owed, 0
			}
			c.mu.Unlock()
			if give > 0 {
				c.control(func(f *http2.Framer) error { return f.WriteWindowUpdate(s.id, uint32(give)) })
			}
			return n, nil
		}
		if s.recvDone {
			c.mu.Unlock()
			return 0, io.EOF
		}
		err := s.err
		c.mu.Unlock()
		if err == nil {
			err = s.wait()
		}
		if err != nil {
			if err != errStreamCancelled && s.expired() {
				err = errH2Timeout
			}
			return 0, err
		}
	}
}

// reset ends the stream from this side: RST_STREAM unless it already
// ended both ways.
func (s *upStream) reset(code http2.ErrCode, err error) {
	c := s.c
	c.mu.Lock()
	send := s.resetLocked(err)
	c.mu.Unlock()
	if send {
		c.rst(s.id, code)
	}
	s.signal()
}

// resetLocked ends s with err (c.mu held); true: a RST_STREAM is due.
func (s *upStream) resetLocked(err error) bool {
	send := !s.done && !(s.recvDone && s.sentEnd)
	if s.err == nil {
		s.err = err
	}
	s.c.removeLocked(s)
	return send
}

func (c *upConn) rst(id uint32, code http2.ErrCode) {
	c.control(func(f *http2.Framer) error { return f.WriteRSTStream(id, code) })
}

// finish releases a stream that ended (the body was read to its end or
// abandoned).
func (s *upStream) finish() {
	s.c.mu.Lock()
	whole := s.recvDone && s.sentEnd
	s.c.mu.Unlock()
	if whole {
		s.c.mu.Lock()
		s.c.removeLocked(s)
		s.c.mu.Unlock()
		return
	}
	s.reset(http2.ErrCodeCancel, errStreamCancelled)
}

// removeLocked takes s off the connection (c.mu held).
func (c *upConn) removeLocked(s *upStream) {
	if s.done {
		return
	}
	s.done = true
	delete(c.streams, s.id)
	if len(c.streams) == 0 {
		c.idleAt = time.Now()
	}
	c.sendCond.Broadcast()
	c.p.release()
	if c.goaway && len(c.streams) == 0 && c.reserved == 0 && !c.closed {
		go c.close(errConnGone)
	}
}

// fail ends the connection and every stream on it with err.
func (c *upConn) fail(err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed, c.goaway, c.err = true, true, err
	list := make([]*upStream, 0, len(c.streams))
	for _, s := range c.streams {
		list = append(list, s)
	}
	for _, s := range list {
		if s.err == nil {
			s.err = err
		}
		c.removeLocked(s)
	}
	c.mu.Unlock()
	for _, s := range list {
		s.signal()
	}
	c.nc.Close()
	c.health.Stop()
	c.p.drop(c)
}

// close ends the connection with a GOAWAY.
func (c *upConn) close(err error) {
	// The upstream opens no streams to the gateway: last stream 0.
	c.control(func(f *http2.Framer) error { return f.WriteGoAway(0, http2.ErrCodeNo, nil) })
	c.fail(err)
}

// check is the connection's timer: an idle connection past the idle
// timeout closes; a silent one is pinged, then closed.
func (c *upConn) check() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	idle := len(c.streams)+c.reserved == 0 && c.idleFor > 0 && time.Since(c.idleAt) >= c.idleFor
	c.mu.Unlock()
	if idle {
		c.close(errConnGone)
		return
	}
	now := time.Now()
	switch n := c.frames.Load(); {
	case n != c.seen:
		c.seen, c.quietAt, c.pinged = n, now, false
	case c.pinged && now.Sub(c.pingAt) >= upPingTimeout:
		c.fail(errors.New("upstream HTTP/2 connection did not answer a PING"))
		return
	case !c.pinged && now.Sub(c.quietAt) >= upPingAfter:
		c.pinged, c.pingAt = true, now
		c.control(func(f *http2.Framer) error { return f.WritePing(false, [8]byte{'w', 'e', 'i', 'r'}) })
	}
	c.health.Reset(c.checkEvery())
}

// readLoop reads the upstream's frames until the connection ends.
func (c *upConn) readLoop() {
	err := c.readFrames()
	c.fail(err)
}

func (c *upConn) readFrames() error {
	if b, err := c.br.Peek(5); err == nil && string(b) == "HTTP/" {
		return ErrNotHTTP2
	} else if err != nil {
		return fmt.Errorf("upstream HTTP/2 connection: %w", err)
	}
	first := true
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			if se, ok := err.(http2.StreamError); ok {
				c.streamError(se.StreamID, se.Code, se)
				continue
			}
			return fmt.Errorf("upstream HTTP/2 connection: %w", err)
		}
		c.frames.Add(1)
		if first {
			if _, ok := f.(*http2.SettingsFrame); !ok {
				return errors.New("upstream HTTP/2 connection: first frame is not SETTINGS")
			}
			first = false
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() {
				continue
			}
			if err := c.settings(f); err != nil {
				return err
			}
			c.control(func(w *http2.Framer) error { return w.WriteSettingsAck() })
		case *http2.PingFrame:
			if !f.IsAck() {
				data := f.Data
				c.control(func(w *http2.Framer) error { return w.WritePing(true, data) })
			}
		case *http2.GoAwayFrame:
			c.goAway(f.LastStreamID, f.ErrCode)
		case *http2.WindowUpdateFrame:
			if err := c.windowUpdate(f); err != nil {
				return err
			}
		case *http2.HeadersFrame:
			// Its CONTINUATION frames are read here too.
			mh, err := c.hb.Read(c.fr, f)
			if err == nil {
				c.headers(mh.StreamID, mh.StreamEnded(), mh.Truncated, mh.Fields)
			} else if se, ok := err.(http2.StreamError); ok { // Read does not wrap it
				c.streamError(se.StreamID, se.Code, fmt.Errorf("upstream HTTP/2 header block: %v", se.Cause))
			} else {
				return fmt.Errorf("upstream HTTP/2 connection: header block: %w", err)
			}
		case *http2.DataFrame:
			c.data(f)
		case *http2.RSTStreamFrame:
			err := error(http2.StreamError{StreamID: f.StreamID, Code: f.ErrCode})
			if f.ErrCode == http2.ErrCodeRefusedStream {
				err = errRefused
			}
			c.streamEnded(f.StreamID, err)
		case *http2.PushPromiseFrame:
			return errors.New("upstream HTTP/2 connection: PUSH_PROMISE after SETTINGS_ENABLE_PUSH 0")
		}
	}
}

func (c *upConn) settings(f *http2.SettingsFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := f.ForeachSetting(func(s http2.Setting) error {
		switch s.ID {
		case http2.SettingMaxConcurrentStreams:
			c.maxStr = min(s.Val, upMaxStreams)
		case http2.SettingInitialWindowSize:
			d := int32(s.Val) - c.initWin
			for _, st := range c.streams {
				st.sendWin += d
			}
			c.initWin = int32(s.Val)
		case http2.SettingMaxFrameSize:
			c.maxFrame = s.Val
		}
		return nil
	})
	c.sendCond.Broadcast()
	c.p.release() // more streams may fit
	return err
}

func (c *upConn) windowUpdate(f *http2.WindowUpdateFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.StreamID == 0 {
		c.sendWin += int64(f.Increment)
		if c.sendWin > 1<<31-1 {
			return errors.New("upstream HTTP/2 connection: send window overflow")
		}
	} else if s := c.streams[f.StreamID]; s != nil {
		if int64(s.sendWin)+int64(f.Increment) > 1<<31-1 {
			s.err = http2.StreamError{StreamID: s.id, Code: http2.ErrCodeFlowControl}
			c.removeLocked(s)
			s.signal()
			return nil
		}
		s.sendWin += int32(f.Increment)
	}
	c.sendCond.Broadcast()
	return nil
}

func (c *upConn) goAway(last uint32, code http2.ErrCode) {
	c.mu.Lock()
	c.goaway = true
	var gone []*upStream
	for id, s := range c.streams {
		if id > last {
			s.err = errRefused
			gone = append(gone, s)
		}
	}
	for _, s := range gone {
		c.removeLocked(s)
	}
	empty := len(c.streams) == 0 && c.reserved == 0
	c.mu.Unlock()
	for _, s := range gone {
		s.signal()
	}
	c.p.drop(c)
	if empty {
		c.fail(fmt.Errorf("upstream HTTP/2 connection: GOAWAY %v", code))
	}
}

// headers takes a stream's answer header block, or its trailers
// (fields: pseudo-fields first, then the regular ones; the reader's,
// valid until the next block).
func (c *upConn) headers(id uint32, end, truncated bool, fields []hpack.HeaderField) {
	c.mu.Lock()
	s := c.streams[id]
	if s == nil {
		c.mu.Unlock()
		return
	}
	if truncated {
		c.resetUnlock(s, http2.ErrCodeProtocol, errHeadersTooLarge)
		return
	}
	status := ""
	if len(fields) > 0 && fields[0].Name == ":status" {
		status, fields = fields[0].Value, fields[1:]
	}
	if len(fields) > 0 && strings.HasPrefix(fields[0].Name, ":") {
		// Pseudo-fields come first: one other than a lone :status.
		c.resetUnlock(s, http2.ErrCodeProtocol, fmt.Errorf("upstream HTTP/2 answer with pseudo-header %q", fields[0].Name))
		return
	}
	if !s.gotHead {
		st, _ := strconv.Atoi(status)
		if st < 200 && st >= 100 && !end {
			c.mu.Unlock()
			return // 1xx: the answer follows
		}
		if st < 100 || st > 999 {
			c.resetUnlock(s, http2.ErrCodeProtocol, errors.New("upstream HTTP/2 answer without a valid :status"))
			return
		}
		s.status, s.header, s.gotHead = st, append(s.hdr[:0], fields...), true
	} else {
		if !end {
			c.resetUnlock(s, http2.ErrCodeProtocol, errors.New("upstream HTTP/2 trailers without END_STREAM"))
			return
		}
		if status != "" {
			// RFC 9113 §8.1: trailers carry no pseudo-fields.
			c.resetUnlock(s, http2.ErrCodeProtocol, errors.New("upstream HTTP/2 trailers with :status"))
			return
		}
		s.trailer = make(http.Header, len(fields))
		// One array holds the values (the trailer outlives the stream).
		vals := make([]string, 0, len(fields))
		for _, hf := range fields {
			k := trailerKey(hf.Name)
			if vs, ok := s.trailer[k]; ok {
				s.trailer[k] = append(vs, hf.Value)
				continue
			}
			vals = append(vals, hf.Value)
			s.trailer[k] = vals[len(vals)-1 : len(vals) : len(vals)]
		}
	}
	if end {
		s.recvDone = true
		if s.sentEnd {
			c.removeLocked(s)
		}
	}
	c.mu.Unlock()
	s.signal()
}

func (c *upConn) data(f *http2.DataFrame) {
	n := int64(f.Header().Length)
	c.mu.Lock()
	c.recvOwed += n
	give := int64(0)
	if c.recvOwed >= upConnWindow/2 {
		give, c.recvOwed = c.recvOwed, 0
	}
	s := c.streams[f.StreamID]
	if s != nil && s.gotHead && !s.recvDone {
		if int64(len(s.buf)-s.off)+int64(s.owed)+n > upStreamWindow {
			c.resetUnlock(s, http2.ErrCodeFlowControl, errors.New("upstream HTTP/2 stream overran its window"))
			c.giveConn(give)
			return
		} else {
			s.buf = append(s.buf, f.Data()...)
			// Padding counts against the window but is never read.
			s.owed += int32(n) - int32(len(f.Data()))
			if f.StreamEnded() {
				s.recvDone = true
				if s.sentEnd {
					c.removeLocked(s)
				}
			}
		}
	}
	c.mu.Unlock()
	c.giveConn(give)
	if s != nil {
		s.signal()
	}
}

// trailerKey is a trailer's name in http.Header's form; gRPC's own
// without allocating.
func trailerKey(name string) string {
	switch name {
	case "grpc-status":
		return "Grpc-Status"
	case "grpc-message":
		return "Grpc-Message"
	case "grpc-status-details-bin":
		return "Grpc-Status-Details-Bin"
	}
	return http.CanonicalHeaderKey(name)
}

// giveConn gives n bytes back to the connection's receive window.
func (c *upConn) giveConn(n int64) {
	if n > 0 {
		c.control(func(w *http2.Framer) error { return w.WriteWindowUpdate(0, uint32(n)) })
	}
}

// resetUnlock is reset for the reader goroutine, which finds s under
// c.mu (held, and released): once unlocked, s may be another call's.
func (c *upConn) resetUnlock(s *upStream, code http2.ErrCode, err error) {
	id, send := s.id, s.resetLocked(err)
	c.mu.Unlock()
	if send {
		c.rst(id, code)
	}
	s.signal()
}

// streamEnded: the upstream reset the stream.
func (c *upConn) streamEnded(id uint32, err error) {
	c.mu.Lock()
	s := c.streams[id]
	if s != nil {
		if s.err == nil {
			s.err = err
		}
		c.removeLocked(s)
	}
	c.mu.Unlock()
	if s != nil {
		s.signal()
	}
}

// streamError: a frame broke the rules for one stream (RFC 9113 §5.4.2).
func (c *upConn) streamError(id uint32, code http2.ErrCode, err error) {
	c.mu.Lock()
	if s := c.streams[id]; s != nil {
		c.resetUnlock(s, code, err)
		return
	}
	c.mu.Unlock()
	c.rst(id, code)
}

// drain takes no new streams and closes once the last one ends.
func (c *upConn) drain() {
	c.mu.Lock()
	c.goaway = true
	empty := len(c.streams)+c.reserved == 0 && !c.closed
	c.mu.Unlock()
	if empty {
		c.close(errConnGone)
	}
}
