//lint:file-ignore SA1019 x/net/http2's Framer and hpack are the framing library (RATIONALE.md)

package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/internal/fusedio"
	"github.com/weirgw/weir/proxy/transport"
	"golang.org/x/net/http2"
)

// The gateway's HTTP/2 server (RFC 9113), on golang.org/x/net/http2's
// Framer and hpack for the wire format and nothing else of x/net's
// server. One goroutine per connection reads frames and keeps the
// connection's state (streams, flow control, settings); each stream's
// request goes, as a pooled fasthttp.RequestCtx, to a worker goroutine
// (h2Front.dispatch) that runs the gateway's handler and writes the
// answer's frames itself. Frames wait in the connection's out buffer;
// whoever finds no send under way sends it all in one write, so answers
// ready together leave together.
//
// Attacks and their bounds:
//   - rapid reset (CVE-2023-44487): at most max_concurrent_streams
//     handlers run per connection, a reset stream's included until it
//     returns; 4× that wait, and past that the connection ends with
//     GOAWAY ENHANCE_YOUR_CALM.
//   - CONTINUATION floods and HPACK bombs: transport.HeaderBlock stops a block
//     past max_header_bytes (431, or GOAWAY when it goes on far beyond).
//   - window-update abuse: an overflowing window is FLOW_CONTROL_ERROR.
//   - PING and SETTINGS floods: their acknowledgements queue in out, and
//     a client that does not read them ends its connection once out
//     passes h2MaxOut or a write makes no progress for write_timeout.

const (
	// h2StreamWindow is what a client may send on a stream ahead of the
	// handler's reading, h2ConnWindow on the connection.
	h2StreamWindow = 256 << 10
	h2ConnWindow   = 1 << 20
	// h2MaxOut bounds the frames waiting to be sent; h2DataOut is the
	// part answers may fill (they wait for the send), the rest is for the
	// reader's control frames, which cannot wait.
	h2MaxOut  = 1 << 20
	h2DataOut = 64 << 10
	// h2QueueFactor × max_concurrent_streams streams may wait for a
	// handler.
	h2QueueFactor = 4
	// h2CloseWait is how long a connection ended with GOAWAY is read (and
	// what comes discarded) before it closes, so the GOAWAY is not lost
	// to a reset.
	h2CloseWait = time.Second
	h2Frame     = 16384 // SETTINGS_MAX_FRAME_SIZE, ours (the default)
)

var (
	errH2Closed  = errors.New("http2: connection closed")
	errH2Reset   = errors.New("http2: stream reset")
	errH2Timeout = errors.New("http2: stream timed out")
)

// h2Conn is one client connection.
type h2Conn struct {
	s    *Server
	nc   net.Conn // read and written
	raw  net.Conn // nc's connection itself (end: CloseWrite, the last reads; writes for many streams)
	conn net.Conn // what each RequestCtx reports
	br   *bufio.Reader
	fr   *http2.Framer
	hb   transport.HeaderBlock // the header block being read (readHeaderBlock)

	maxStreams int
	readTO     time.Duration // reading a request body, from its stream's start (read_timeout)
	writeTO    time.Duration // writing an answer, from its start (write_timeout); a socket write without progress
	wslack     time.Duration // how much sooner than writeTO a socket write may time out (write)
	sockWDL    time.Time     // the socket's write deadline (write; by the one flushing)

	mu       sync.Mutex
	cond     sync.Cond // windows, sends and the end: answers waiting on them
	out      []byte    // frames not yet sent
	spare    []byte
	flushing bool
	err      error // the connection ended: no more frames
	sendFn   func()

	streams  map[uint32]*h2Stream
	maxID    uint32 // the highest stream a client opened
	running  int    // handlers running
	queue    []*h2Stream
	goaway   bool // sent: no new streams
	idleAt   time.Time
	idleTmr  *time.Timer
	sendWin  int64 // the client's connection window for our DATA
	recvWin  int32 // what the client may still send on the connection
	recvOwed int32 // read by handlers, not yet given back
	peerWin  int32 // SETTINGS_INITIAL_WINDOW_SIZE, the client's
	peerMax  int   // SETTINGS_MAX_FRAME_SIZE, the client's
	tblReset bool  // the client shrank the HPACK table: say so in the next block
}

// h2Stream is the pooled state of one stream, with its RequestCtx.
type h2Stream struct {
	rc fasthttp.RequestCtx
	c  *h2Conn
	id uint32

	// Guarded by c.mu.
	sendWin    int64
	recvWin    int32
	recvOwed   int32
	remoteDone bool // END_STREAM came (or a reset)
	reset      bool
	ended      bool // our END_STREAM or RST_STREAM went out
	queued     bool
	ctx        context.Context
	cancel     context.CancelFunc

	body     *h2Pipe // the request body, nil without one
	cl       int64   // its declared length, -1: none
	got      int64
	grpc, ws bool
	long     bool // gRPC, gRPC-Web or a WebSocket: no read or write timeout
	wsClosed bool // a WebSocket's stream closed by the tunnel (guarded by c.mu)
	connect  bool // extended CONNECT for another protocol
	tun      *tunnel
	hb       []byte    // the answer's header block
	wdl      time.Time // writes wait for the client until then (writeData); zero: no bound
}

// Context is the stream's context: cancelled when it is reset, when the
// connection ends, or when its handler returns (forwardH2).
func (st *h2Stream) Context() context.Context {
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.ctx == nil {
		st.ctx, st.cancel = context.WithCancel(context.Background())
		if st.reset || c.err != nil {
			st.cancel()
		}
	}
	return st.ctx
}

// serveH2Conn serves one HTTP/2 connection until it ends. raw is read and
// written; conn is what each stream's RequestCtx reports as its
// connection (addresses, TLS state, client certificate). up, for
// Upgrade: h2c, is stream 1 and settings the client's HTTP2-Settings.
func (s *Server) serveH2Conn(raw, conn net.Conn, up *fasthttp.RequestHeader, settings []byte) {
	s.h2.conns.Add(1)
	defer s.h2.conns.Add(-1)
	if s.drain.draining.Load() {
		return
	}
	h := &s.h2
	nc := raw
	if tc, ok := raw.(*net.TCPConn); ok {
		// Reads and writes as plain system calls (fusedio.RawConn): on a
		// connection that carries one stream at a time, the runtime's
		// bookkeeping for each (with one P, waking sysmon) cost more
		// than the calls themselves.
		nc = fusedio.NewRaw(tc)
	}
	c := &h2Conn{s: s, nc: nc, raw: raw, conn: conn, maxStreams: h.maxStreams, readTO: h.readTimeout, writeTO: h.writeTimeout, wslack: deadlineSlack(s.fs),
		streams: map[uint32]*h2Stream{}, sendWin: 65535, recvWin: h2ConnWindow, peerWin: 65535, peerMax: 16384}
	c.cond.L = &c.mu
	c.sendFn = c.sendAll
	c.br = bufio.NewReaderSize(nc, 16<<10)
	c.fr = http2.NewFramer(nil, c.br)
	c.fr.SetMaxReadFrameSize(h2Frame)
	c.hb.Init(h.maxHeaderBytes)
	if !h.track(c, true) {
		return
	}
	defer h.track(c, false)

	c.mu.Lock()
	c.out = appendSettings(c.out, []http2.Setting{
		{ID: http2.SettingMaxConcurrentStreams, Val: uint32(c.maxStreams)},
		{ID: http2.SettingInitialWindowSize, Val: h2StreamWindow},
		{ID: http2.SettingMaxHeaderListSize, Val: uint32(h.maxHeaderBytes)},
		{ID: http2.SettingEnableConnectProtocol, Val: 1},
	})
	c.out = appendWindowUpdate(c.out, 0, h2ConnWindow-65535)
	c.kick()
	if h.idleTimeout > 0 {
		c.idleAt = time.Now()
		c.idleTmr = time.AfterFunc(h.idleTimeout, c.idleCheck)
	}
	c.mu.Unlock()
	if up != nil && !c.applySettings(settings) {
		c.end(http2.ErrCodeProtocol)
		return
	}
	if c.readTO > 0 {
		_ = raw.SetReadDeadline(time.Now().Add(c.readTO))
	}
	var pre [len(h2Preface)]byte
	if _, err := io.ReadFull(c.br, pre[:]); err != nil || string(pre[:]) != h2Preface {
		c.close(errH2Closed)
		return
	}
	_ = raw.SetReadDeadline(time.Time{})
	if up != nil {
		c.upgraded(up)
	}
	c.serve()
}

// serve reads frames until the connection ends.
func (c *h2Conn) serve() {
	first := true
	for {
		c.mu.Lock()
		behind := len(c.queue) > 0
		c.mu.Unlock()
		if behind {
			// Streams wait for handlers: the workers that can run do
			// before more frames are read, so a client's burst of
			// streams (or of resets) is weighed against handlers that
			// had their turn.
			runtime.Gosched()
		}
		if c.br.Buffered() == 0 {
			// What the frames read so far made (acknowledgements, window
			// updates) goes out before the read waits.
			c.mu.Lock()
			c.kick()
			c.mu.Unlock()
		}
		f, err := c.fr.ReadFrame()
		if hf, ok := f.(*http2.HeadersFrame); ok && err == nil {
			f, err = c.hb.Read(c.fr, hf)
		}
		if err != nil {
			var se http2.StreamError
			var ce http2.ConnectionError
			switch {
			case errors.As(err, &se):
				if se.StreamID > c.maxID && se.StreamID%2 == 1 {
					c.maxID = se.StreamID // a HEADERS frame opened it
				}
				c.resetStream(se.StreamID, se.Code)
				continue
			case errors.As(err, &ce):
				c.end(http2.ErrCode(ce))
			case errors.Is(err, http2.ErrFrameTooLarge):
				c.end(http2.ErrCodeFrameSize)
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed), isNetErr(err):
				c.close(errH2Closed)
			default:
				c.end(http2.ErrCodeProtocol)
			}
			return
		}
		if first {
			if sf, ok := f.(*http2.SettingsFrame); !ok || sf.IsAck() {
				c.end(http2.ErrCodeProtocol)
				return
			}
			first = false
		}
		if code := c.frame(f); code != http2.ErrCodeNo {
			c.end(code)
			return
		}
	}
}

func isNetErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}

// frame handles one frame; a code other than NO_ERROR ends the
// connection with it.
func (c *h2Conn) frame(f http2.Frame) http2.ErrCode {
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		return c.headers(f)
	case *http2.DataFrame:
		return c.data(f)
	case *http2.SettingsFrame:
		if f.IsAck() {
			return http2.ErrCodeNo
		}
		if err := f.ForeachSetting(c.setting); err != nil {
			var ce http2.ConnectionError
			if errors.As(err, &ce) {
				return http2.ErrCode(ce)
			}
			return http2.ErrCodeProtocol
		}
		c.mu.Lock()
		c.out = appendFrameHeader(c.out, 0, http2.FrameSettings, http2.FlagSettingsAck, 0)
		c.mu.Unlock()
		return c.outBound()
	case *http2.PingFrame:
		if !f.IsAck() {
			c.mu.Lock()
			c.out = appendFrameHeader(c.out, 8, http2.FramePing, http2.FlagPingAck, 0)
			c.out = append(c.out, f.Data[:]...)
			c.mu.Unlock()
			return c.outBound()
		}
	case *http2.WindowUpdateFrame:
		return c.windowUpdate(f)
	case *http2.RSTStreamFrame:
		c.mu.Lock()
		if f.StreamID > c.maxID {
			c.mu.Unlock()
			return http2.ErrCodeProtocol // an idle stream
		}
		if st := c.streams[f.StreamID]; st != nil {
			st.ended = true // nothing more goes out on it
			c.abort(st)
		}
		c.mu.Unlock()
	case *http2.PushPromiseFrame:
		return http2.ErrCodeProtocol // clients do not push
	case *http2.GoAwayFrame:
		c.mu.Lock()
		c.goaway = true // the client opens no more streams
		done := len(c.streams) == 0 && c.running == 0
		c.mu.Unlock()
		if done {
			c.end(http2.ErrCodeNo)
		}
	case *http2.PriorityFrame:
		if f.StreamID == f.PriorityParam.StreamDep {
			c.resetStream(f.StreamID, http2.ErrCodeProtocol)
		}
	}
	return http2.ErrCodeNo
}

// outBound: out past its limit ends the connection (a client that does
// not read what it asks for).
func (c *h2Conn) outBound() http2.ErrCode {
	c.mu.Lock()
	over := len(c.out) > h2MaxOut
	c.mu.Unlock()
	if over {
		return http2.ErrCodeEnhanceYourCalm
	}
	return http2.ErrCodeNo
}

// setting applies one of the client's settings.
func (c *h2Conn) setting(s http2.Setting) error {
	if err := s.Valid(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch s.ID {
	case http2.SettingInitialWindowSize:
		d := int64(s.Val) - int64(c.peerWin)
		c.peerWin = int32(s.Val)
		for _, st := range c.streams {
			st.sendWin += d
			if st.sendWin > 1<<31-1 {
				return http2.ConnectionError(http2.ErrCodeFlowControl)
			}
		}
		c.cond.Broadcast()
	case http2.SettingMaxFrameSize:
		c.peerMax = int(s.Val)
	case http2.SettingHeaderTableSize:
		// Answers use no dynamic table; a smaller one than the default
		// is acknowledged with a table size update (RFC 7541 §4.2).
		if s.Val < 4096 {
			c.tblReset = true
		}
	}
	return nil
}

// applySettings applies an Upgrade's HTTP2-Settings payload.
func (c *h2Conn) applySettings(p []byte) bool {
	if len(p)%6 != 0 {
		return false
	}
	for ; len(p) > 0; p = p[6:] {
		s := http2.Setting{ID: http2.SettingID(binary.BigEndian.Uint16(p)), Val: binary.BigEndian.Uint32(p[2:])}
		if c.setting(s) != nil {
			return false
		}
	}
	return true
}

func (c *h2Conn) windowUpdate(f *http2.WindowUpdateFrame) http2.ErrCode {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.StreamID == 0 {
		c.sendWin += int64(f.Increment)
		if c.sendWin > 1<<31-1 {
			return http2.ErrCodeFlowControl
		}
		c.cond.Broadcast()
		return http2.ErrCodeNo
	}
	if f.StreamID > c.maxID {
		return http2.ErrCodeProtocol
	}
	st := c.streams[f.StreamID]
	if st == nil || st.ended {
		return http2.ErrCodeNo
	}
	st.sendWin += int64(f.Increment)
	if st.sendWin > 1<<31-1 {
		c.resetLocked(st, http2.ErrCodeFlowControl)
		return http2.ErrCodeNo
	}
	c.cond.Broadcast()
	return http2.ErrCodeNo
}

// data takes a DATA frame into its stream's body.
func (c *h2Conn) data(f *http2.DataFrame) http2.ErrCode {
	n := int32(f.Length)
	c.mu.Lock()
	defer c.mu.Unlock()
	if n > c.recvWin {
		return http2.ErrCodeFlowControl
	}
	c.recvWin -= n
	st := c.streams[f.StreamID]
	if st == nil || st.remoteDone || st.body == nil {
		if f.StreamID > c.maxID {
			return http2.ErrCodeProtocol // an idle stream
		}
		c.giveBackLocked(nil, n)
		if st != nil {
			c.resetLocked(st, http2.ErrCodeStreamClosed)
		} else {
			c.out = appendRST(c.out, f.StreamID, http2.ErrCodeStreamClosed)
		}
		return http2.ErrCodeNo
	}
	if n > st.recvWin {
		c.giveBackLocked(nil, n)
		c.resetLocked(st, http2.ErrCodeFlowControl)
		return http2.ErrCodeNo
	}
	st.recvWin -= n
	p := f.Data()
	if pad := n - int32(len(p)); pad > 0 {
		c.giveBackLocked(st, pad)
	}
	st.got += int64(len(p))
	if st.cl >= 0 && (st.got > st.cl || f.StreamEnded() && st.got != st.cl) {
		c.giveBackLocked(nil, int32(len(p)))
		c.resetLocked(st, http2.ErrCodeProtocol)
		return http2.ErrCodeNo
	}
	st.body.write(p)
	if f.StreamEnded() {
		st.remoteDone = true
		st.body.finish(io.EOF)
	}
	return http2.ErrCodeNo
}

// giveBack returns n bytes read from st's body (nil: a stream gone) to
// the client's windows, in WINDOW_UPDATEs once half a window is owed.
func (c *h2Conn) giveBack(id uint32, n int) {
	c.mu.Lock()
	c.giveBackLocked(c.streams[id], int32(n))
	send := len(c.out) > 0 && !c.flushing
	if send {
		c.flushLocked()
	}
	c.mu.Unlock()
}

func (c *h2Conn) giveBackLocked(st *h2Stream, n int32) {
	if st != nil && !st.remoteDone && !st.ended {
		st.recvOwed += n
		if st.recvOwed >= h2StreamWindow/2 {
			c.out = appendWindowUpdate(c.out, st.id, uint32(st.recvOwed))
			st.recvWin += st.recvOwed
			st.recvOwed = 0
		}
	}
	c.recvOwed += n
	if c.recvOwed >= h2ConnWindow/2 {
		c.out = appendWindowUpdate(c.out, 0, uint32(c.recvOwed))
		c.recvWin += c.recvOwed
		c.recvOwed = 0
	}
}

// resetStream answers a stream error: RST_STREAM, and the stream, if
// open, ends.
func (c *h2Conn) resetStream(id uint32, code http2.ErrCode) {
	c.mu.Lock()
	if st := c.streams[id]; st != nil {
		c.resetLocked(st, code)
	} else {
		c.out = appendRST(c.out, id, code)
	}
	c.mu.Unlock()
}

func (c *h2Conn) resetLocked(st *h2Stream, code http2.ErrCode) {
	if !st.ended {
		st.ended = true
		c.out = appendRST(c.out, st.id, code)
	}
	c.abort(st)
}

// abort ends a stream the client or the gateway reset: its body and its
// context end, and its handler's writes fail. The handler, if it runs,
// releases it.
func (c *h2Conn) abort(st *h2Stream) {
	if st.reset {
		return
	}
	st.reset = true
	st.remoteDone = true
	if st.body != nil {
		st.body.finish(errH2Reset)
	}
	if st.cancel != nil {
		st.cancel()
	}
	delete(c.streams, st.id)
	c.noteIdle()
	c.cond.Broadcast()
}

// noteIdle: the connection's idle time starts when its last stream ends.
func (c *h2Conn) noteIdle() {
	if len(c.streams) == 0 && c.running == 0 {
		c.idleAt = time.Now()
		if c.goaway {
			go c.end(http2.ErrCodeNo)
		}
	}
}

func (c *h2Conn) idleCheck() {
	idle := c.s.h2.idleTimeout
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	left := idle
	if len(c.streams) == 0 && c.running == 0 {
		left = idle - time.Since(c.idleAt)
	}
	if left <= 0 {
		c.mu.Unlock()
		c.end(http2.ErrCodeNo)
		return
	}
	c.idleTmr.Reset(left)
	c.mu.Unlock()
}

// headers opens a stream, or ends a request body with trailers.
func (c *h2Conn) headers(f *http2.MetaHeadersFrame) http2.ErrCode {
	id := f.StreamID
	c.mu.Lock()
	if id%2 == 0 {
		c.mu.Unlock()
		return http2.ErrCodeProtocol
	}
	if id <= c.maxID {
		st := c.streams[id]
		if st == nil {
			c.mu.Unlock()
			return http2.ErrCodeStreamClosed
		}
		// Trailers: they end the body; the gateway does not pass them on.
		switch {
		case st.remoteDone:
			c.resetLocked(st, http2.ErrCodeStreamClosed) // half-closed (remote)
		case !f.StreamEnded():
			c.resetLocked(st, http2.ErrCodeProtocol)
		default:
			st.remoteDone = true
			if st.body != nil {
				st.body.finish(io.EOF)
			}
		}
		c.mu.Unlock()
		return http2.ErrCodeNo
	}
	c.maxID = id
	if f.HasPriority() && f.Priority.StreamDep == id {
		c.out = appendRST(c.out, id, http2.ErrCodeProtocol) // depends on itself
		c.mu.Unlock()
		return http2.ErrCodeNo
	}
	if c.goaway {
		c.mu.Unlock()
		return http2.ErrCodeNo // after GOAWAY: ignored (RFC 9113 §6.8)
	}
	if f.Truncated {
		// Past max_header_bytes: 431, and the stream ends.
		c.out = appendHeaderBlock(c.out, id, []byte{0x20, 0x08, 3, '4', '3', '1'}[btoi(!c.tblReset):], true, c.peerMax)
		c.tblReset = false
		if !f.StreamEnded() {
			c.out = appendRST(c.out, id, http2.ErrCodeNo)
		}
		c.mu.Unlock()
		return http2.ErrCodeNo
	}
	if len(c.streams) >= c.maxStreams {
		c.out = appendRST(c.out, id, http2.ErrCodeRefusedStream)
		c.mu.Unlock()
		return http2.ErrCodeNo
	}
	c.mu.Unlock()

	st := c.s.h2.rcPool.Get().(*h2Stream)
	st.c, st.id, st.cl = c, id, -1
	st.rc.Init2(c.conn, fasthttpLogger{c.s.log}, false)
	if !f.StreamEnded() {
		st.body = newH2Pipe(c, id)
	}
	if !c.s.fillH2Request(st, f) {
		c.s.releaseH2(st)
		c.resetStream(id, http2.ErrCodeProtocol)
		return http2.ErrCodeNo
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	st.sendWin = int64(c.peerWin)
	st.recvWin = h2StreamWindow
	st.remoteDone = f.StreamEnded()
	if st.body != nil && !st.long && c.readTO > 0 {
		// read_timeout bounds reading one client request, its whole
		// body included (docs/config.md), as for HTTP/1.1: a body that
		// trickles in never outlasts it.
		st.body.until = time.Now().Add(c.readTO)
	}
	c.streams[id] = st
	return c.start(st)
}

// upgraded makes the request of an Upgrade: h2c stream 1, its body (none)
// sent.
func (c *h2Conn) upgraded(h *fasthttp.RequestHeader) {
	st := c.s.h2.rcPool.Get().(*h2Stream)
	st.c, st.id, st.cl = c, 1, -1
	st.rc.Init2(c.conn, fasthttpLogger{c.s.log}, false)
	req := &st.rc.Request.Header
	req.SetMethodBytes(h.Method())
	req.SetRequestURIBytes(h.RequestURI())
	req.SetHostBytes(h.Host())
	for k, v := range h.All() {
		switch string(k) {
		case "Connection", "Upgrade", "Http2-Settings", "Host", "Keep-Alive", "Content-Length", "Transfer-Encoding":
			continue
		}
		req.AddBytesKV(k, v)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.maxID = 1
	st.sendWin = int64(c.peerWin)
	st.remoteDone = true
	c.streams[1] = st
	_ = c.start(st)
}

// start runs st's handler, or queues it while max_concurrent_streams
// handlers run (streams reset early included); past the queue's bound
// the connection ends: a rapid reset.
func (c *h2Conn) start(st *h2Stream) http2.ErrCode {
	if c.running < c.maxStreams {
		c.running++
		c.s.h2.dispatch(st)
		return http2.ErrCodeNo
	}
	if len(c.queue) >= h2QueueFactor*c.maxStreams {
		c.abort(st)
		c.s.releaseH2(st)
		return http2.ErrCodeEnhanceYourCalm
	}
	st.queued = true
	c.queue = append(c.queue, st)
	return http2.ErrCodeNo
}

// done ends st's handler: the stream ends if it has not (a body the
// handler left unread: RST_STREAM NO_ERROR), and the next queued stream,
// if any, is returned for the same worker to run.
func (c *h2Conn) done(st *h2Stream) *h2Stream {
	c.mu.Lock()
	if !st.ended {
		st.ended = true
		c.out = appendRST(c.out, st.id, http2.ErrCodeNo)
	}
	if !st.reset {
		st.reset = true
		if st.body != nil {
			st.body.finish(errH2Reset)
		}
		delete(c.streams, st.id)
	}
	if st.cancel != nil {
		st.cancel()
	}
	c.discard(st)
	var next *h2Stream
	for len(c.queue) > 0 && next == nil {
		q := c.queue[0]
		c.queue = c.queue[1:]
		q.queued = false
		if q.reset {
			c.discard(q)
			c.s.releaseH2(q)
			continue
		}
		next = q
	}
	if next == nil {
		c.running--
	}
	c.noteIdle()
	if len(c.out) > 0 {
		c.send()
	}
	c.mu.Unlock()
	return next
}

// discard drops what st's body holds unread, which goes back to the
// connection's window. Under mu.
func (c *h2Conn) discard(st *h2Stream) {
	if st.body != nil {
		if n := st.body.drop(); n > 0 {
			c.giveBackLocked(nil, int32(n))
		}
	}
}

// kick sends out in a goroutine of its own unless a send is under way:
// the reader does not wait on a client that does not read. Under mu.
func (c *h2Conn) kick() {
	if len(c.out) > 0 && !c.flushing && c.err == nil {
		c.flushing = true
		go c.sendFn()
	}
}

func (c *h2Conn) sendAll() {
	// Answers that are about to be ready go with these frames: the
	// workers that can run do first.
	runtime.Gosched()
	c.mu.Lock()
	c.flushing = false
	c.flushLocked()
	c.mu.Unlock()
}

// send sends out: now when st's handler is the only one running on the
// connection, else soon, from a goroutine that lets the others add their
// frames first (kick). Under mu.
func (c *h2Conn) send() {
	if c.running > 1 {
		c.kick()
		return
	}
	c.flushLocked()
}

// flushLocked sends out until it is empty, unless a send is under way
// (whose loop sends it). Under mu, which it releases while it writes.
func (c *h2Conn) flushLocked() {
	if c.flushing {
		return
	}
	c.flushing = true
	for len(c.out) > 0 && c.err == nil {
		b := c.out
		c.out = c.spare[:0]
		// One handler or none: a short write, as a plain system call
		// (nc). With more, the batch goes the runtime's way (raw): a
		// long write then lets the runtime run the other streams'
		// handlers on another thread meanwhile.
		w := c.nc
		if c.running > 1 {
			w = c.raw
		}
		c.mu.Unlock()
		err := c.write(w, b)
		c.mu.Lock()
		c.spare = b[:0]
		if err != nil && c.err == nil {
			c.failLocked(err)
		}
		c.cond.Broadcast()
	}
	if c.err != nil {
		c.out = c.out[:0]
	}
	c.flushing = false
	c.cond.Broadcast()
}

// end ends the connection with GOAWAY code: its streams end, and it is
// read (discarding) for h2CloseWait so the client gets the GOAWAY before
// the close. NO_ERROR on a connection with streams (a drain) waits for
// them instead.
func (c *h2Conn) end(code http2.ErrCode) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	if !c.goaway || code != http2.ErrCodeNo {
		c.out = appendGoAway(c.out, c.maxID, code)
	}
	c.goaway = true
	if code == http2.ErrCodeNo && (len(c.streams) > 0 || c.running > 0) {
		c.kick()
		c.mu.Unlock()
		return // the last stream's end comes back here (noteIdle)
	}
	for c.flushing {
		c.cond.Wait()
	}
	c.flushLocked()
	c.failLocked(errH2Closed)
	c.mu.Unlock()
	if cw, ok := c.raw.(interface{ CloseWrite() error }); ok {
		// Through raw, not nc: the reader may not have returned yet, and
		// a fusedio.RawConn takes one reader at a time.
		_ = cw.CloseWrite()
		_ = c.raw.SetReadDeadline(time.Now().Add(h2CloseWait))
		_, _ = io.CopyN(io.Discard, c.raw, 1<<20)
	}
	_ = c.nc.Close()
}

// close ends the connection without a word (the client went, or broke
// the preface).
func (c *h2Conn) close(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.failLocked(err)
	}
	c.mu.Unlock()
	_ = c.nc.Close()
}

// failLocked ends every stream: bodies and contexts end, writes fail.
func (c *h2Conn) failLocked(err error) {
	c.err = err
	for _, st := range c.streams {
		st.ended = true
		c.abort(st)
	}
	for _, q := range c.queue {
		c.s.releaseH2(q)
	}
	c.queue = nil
	if c.idleTmr != nil {
		c.idleTmr.Stop()
	}
	c.cond.Broadcast()
	_ = c.nc.SetReadDeadline(time.Unix(1, 0)) // the reader wakes and returns
	if err != errH2Closed {
		_ = c.nc.Close()
	}
}

// writeHead queues st's answer head (a header block) and, when body is
// not nil, as much of body as the windows let go with it; end: the
// stream ends with it. It returns the body not yet queued.
func (c *h2Conn) writeHead(st *h2Stream, block, body []byte, end bool) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.streamErr(st); err != nil {
		return nil, err
	}
	if c.tblReset {
		block = append([]byte{0x20}, block...)
		c.tblReset = false
	}
	headEnd := end && body == nil
	c.out = appendHeaderBlock(c.out, st.id, block, headEnd, c.peerMax)
	if headEnd {
		c.endLocal(st)
	}
	if body != nil {
		body = c.queueData(st, body, end)
	}
	c.send()
	return body, nil
}

// writeTrailers ends st with the trailer block.
func (c *h2Conn) writeTrailers(st *h2Stream, block []byte) error {
	_, err := c.writeHead(st, block, nil, true)
	return err
}

// writeData sends p as DATA on st, waiting for the windows and for room
// in out; end: the stream ends with its last byte. What does not go at
// once waits at most until st's write deadline (wdl): a WebSocket's, set
// like a socket's, or an answer's start + write_timeout (serveH2Stream),
// past which the stream is reset with INTERNAL_ERROR, as Go's server does
// on its WriteTimeout.
func (c *h2Conn) writeData(st *h2Stream, p []byte, end bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var tmr *time.Timer
	defer func() {
		if tmr != nil {
			tmr.Stop()
		}
	}()
	for {
		if err := c.streamErr(st); err != nil {
			return err
		}
		if len(c.out) < h2DataOut || !c.flushing {
			if p = c.queueData(st, p, end); len(p) == 0 {
				break
			}
		}
		// More than the windows and out take now: the answer waits for
		// the client, until its deadline (a client reading the socket
		// slowly holds the flush below, one out buffer at a time).
		var left time.Duration
		if !st.wdl.IsZero() {
			if left = time.Until(st.wdl); left <= 0 {
				if !st.ws {
					c.resetLocked(st, http2.ErrCodeInternal)
				}
				return errH2Timeout
			}
		}
		if !c.flushing && len(c.out) > 0 {
			c.flushLocked()
			continue
		}
		if left > 0 {
			if tmr == nil {
				tmr = time.AfterFunc(left, c.wakeAll)
			} else {
				tmr.Reset(left)
			}
		}
		c.cond.Wait()
	}
	c.send()
	return nil
}

// wakeAll wakes the answers waiting on the connection (a deadline).
func (c *h2Conn) wakeAll() {
	c.mu.Lock()
	c.cond.Broadcast()
	c.mu.Unlock()
}

// queueData queues as much of p as the windows let go, in frames of the
// client's size; end: END_STREAM on the last. Under mu.
func (c *h2Conn) queueData(st *h2Stream, p []byte, end bool) []byte {
	if len(p) == 0 && !end {
		return p
	}
	for {
		n := int64(len(p))
		n = min(n, c.sendWin, st.sendWin, int64(c.peerMax))
		if n <= 0 && len(p) > 0 {
			return p
		}
		last := end && int(n) == len(p)
		flags := http2.Flags(0)
		if last {
			flags = http2.FlagDataEndStream
			c.endLocal(st)
		}
		c.out = appendFrameHeader(c.out, int(n), http2.FrameData, flags, st.id)
		c.out = append(c.out, p[:n]...)
		c.sendWin -= n
		st.sendWin -= n
		p = p[n:]
		if len(p) == 0 {
			return p
		}
	}
}

// endLocal: st's END_STREAM is queued. With the request's already in,
// the stream is closed (RFC 9113 §5.1) and no longer counts against
// max_concurrent_streams, though its handler may not have returned yet.
// Under mu.
func (c *h2Conn) endLocal(st *h2Stream) {
	st.ended = true
	if st.remoteDone && c.streams[st.id] == st {
		delete(c.streams, st.id)
		c.noteIdle()
	}
}

// streamErr: why st can take no more frames. Under mu.
func (c *h2Conn) streamErr(st *h2Stream) error {
	switch {
	case c.err != nil:
		return c.err
	case st.ended:
		return errH2Reset
	case st.wsClosed:
		return net.ErrClosed
	}
	return nil
}

// h2Pipe is a stream's request body: the reader writes what DATA frames
// bring, the handler (or an upstream's client, which may read after the
// handler returned) reads it, and what it reads goes back to the
// client's windows.
type h2Pipe struct {
	c     *h2Conn
	id    uint32
	until time.Time // a Read still waiting then fails (read_timeout); zero: none
	dl    *streamDeadline

	mu   sync.Mutex
	buf  []byte
	off  int
	err  error
	wake chan struct{}
}

func newH2Pipe(c *h2Conn, id uint32) *h2Pipe {
	return &h2Pipe{c: c, id: id, wake: make(chan struct{}, 1)}
}

func (p *h2Pipe) write(b []byte) {
	p.mu.Lock()
	p.buf = append(p.buf, b...)
	p.mu.Unlock()
	p.signal()
}

func (p *h2Pipe) finish(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
	p.signal()
}

func (p *h2Pipe) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// ended reports that the whole body is here (the client's END_STREAM
// came): reading it to its end never waits.
func (p *h2Pipe) ended() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err == io.EOF
}

// drop discards what was not read and reports how much that was.
func (p *h2Pipe) drop() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.buf) - p.off
	p.buf, p.off = nil, 0
	return n
}

func (p *h2Pipe) Read(b []byte) (int, error) {
	var tmr *time.Timer
	defer func() {
		if tmr != nil {
			tmr.Stop()
		}
	}()
	for {
		p.mu.Lock()
		if p.off < len(p.buf) {
			n := copy(b, p.buf[p.off:])
			p.off += n
			if p.off == len(p.buf) {
				p.buf, p.off = p.buf[:0], 0
			}
			p.mu.Unlock()
			p.c.giveBack(p.id, n)
			return n, nil
		}
		err := p.err
		p.mu.Unlock()
		if err != nil {
			return 0, err
		}
		var dl chan struct{}
		if p.dl != nil {
			dl = p.dl.wait()
		}
		var to <-chan time.Time
		if !p.until.IsZero() {
			if tmr == nil {
				d := time.Until(p.until)
				if d <= 0 {
					p.c.resetStream(p.id, http2.ErrCodeCancel)
					return 0, errH2Timeout
				}
				tmr = time.NewTimer(d)
			}
			to = tmr.C
		}
		select {
		case <-p.wake:
		case <-dl:
			return 0, os.ErrDeadlineExceeded
		case <-to:
			// A body not read whole within read_timeout: the stream ends.
			p.c.resetStream(p.id, http2.ErrCodeCancel)
			return 0, errH2Timeout
		}
	}
}

// Frames, appended to a buffer.

func appendFrameHeader(b []byte, n int, t http2.FrameType, flags http2.Flags, id uint32) []byte {
	return append(b, byte(n>>16), byte(n>>8), byte(n), byte(t), byte(flags),
		byte(id>>24), byte(id>>16), byte(id>>8), byte(id))
}

func appendRST(b []byte, id uint32, code http2.ErrCode) []byte {
	b = appendFrameHeader(b, 4, http2.FrameRSTStream, 0, id)
	return binary.BigEndian.AppendUint32(b, uint32(code))
}

func appendWindowUpdate(b []byte, id, inc uint32) []byte {
	b = appendFrameHeader(b, 4, http2.FrameWindowUpdate, 0, id)
	return binary.BigEndian.AppendUint32(b, inc)
}

func appendGoAway(b []byte, last uint32, code http2.ErrCode) []byte {
	b = appendFrameHeader(b, 8, http2.FrameGoAway, 0, 0)
	b = binary.BigEndian.AppendUint32(b, last)
	return binary.BigEndian.AppendUint32(b, uint32(code))
}

func appendSettings(b []byte, ss []http2.Setting) []byte {
	b = appendFrameHeader(b, 6*len(ss), http2.FrameSettings, 0, 0)
	for _, s := range ss {
		b = binary.BigEndian.AppendUint16(b, uint16(s.ID))
		b = binary.BigEndian.AppendUint32(b, s.Val)
	}
	return b
}

// appendHeaderBlock appends block as HEADERS and, past max bytes a frame,
// CONTINUATION frames; end: END_STREAM.
func appendHeaderBlock(b []byte, id uint32, block []byte, end bool, max int) []byte {
	t := http2.FrameHeaders
	flags := http2.Flags(0)
	if end {
		flags = http2.FlagHeadersEndStream
	}
	for {
		n := min(len(block), max)
		f := flags
		if n == len(block) {
			f |= http2.FlagHeadersEndHeaders
		}
		b = appendFrameHeader(b, n, t, f, id)
		b = append(b, block[:n]...)
		block = block[n:]
		if len(block) == 0 {
			return b
		}
		t, flags = http2.FrameContinuation, 0
	}
}

func btoi(v bool) int {
	if v {
		return 1
	}
	return 0
}

// HPACK for answers (RFC 7541): literal fields without indexing, names
// from the static table where it has them. The dynamic table is not
// used, so encoding needs no state shared with the connection: a worker
// encodes its answer before it takes the connection's lock.

// appendH2Status appends :status, indexed when the static table has it.
func appendH2Status(b []byte, status int) []byte {
	switch status {
	case 200:
		return append(b, 0x88)
	case 204:
		return append(b, 0x89)
	case 206:
		return append(b, 0x8a)
	case 304:
		return append(b, 0x8b)
	case 400:
		return append(b, 0x8c)
	case 404:
		return append(b, 0x8d)
	case 500:
		return append(b, 0x8e)
	}
	if status < 100 || status > 999 {
		status = 500
	}
	return append(b, 0x08, 3, byte('0'+status/100), byte('0'+status/10%10), byte('0'+status%10))
}

// appendH2Field appends a field, its name lower-cased (RFC 9113 §8.2.1):
// the one HPACK encoder of the gateway's HTTP/2, shared with its upstream
// calls.
func appendH2Field(b []byte, name, value []byte) []byte {
	return transport.AppendHPACKField(b, name, value)
}

// appendH2Fields appends resp's fields that HTTP/2 carries, but skip.
func appendH2Fields(b []byte, resp *fasthttp.Response, skip []byte) []byte {
	for k, v := range resp.Header.All() {
		if skipH2Response(k) || skip != nil && bytes.EqualFold(k, skip) {
			continue
		}
		b = appendH2Field(b, k, v)
	}
	return b
}

// write writes b to w (nc or raw: the same socket), each write bounded
// by writeTO (0: none): it fails only when a whole writeTO passes without
// a byte sent. The socket's deadline moves only when it would come more
// than wslack sooner than writeTO from now, so back-to-back answers do
// not each pay the runtime's timer update. By the one flushing.
func (c *h2Conn) write(w net.Conn, b []byte) error {
	if c.writeTO <= 0 {
		_, err := w.Write(b)
		return err
	}
	for {
		if now := time.Now(); c.sockWDL.Sub(now) < c.writeTO-c.wslack {
			c.sockWDL = now.Add(c.writeTO)
			_ = w.SetWriteDeadline(c.sockWDL)
		}
		n, err := w.Write(b)
		b = b[n:]
		if len(b) == 0 || n == 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		c.sockWDL = time.Time{} // progress: a whole writeTO again
	}
}
