// Package transport is Weir's client to one upstream address: for HTTP/1.1 a
// keep-alive connection pool with a dial timeout, a cap on connections with
// a bounded wait, and responses that are buffered when small and streamed
// when large or of unknown length.
//
// Why not fasthttp.HostClient: with StreamResponseBody it wraps every
// response in closures (four allocations per request) and streams even
// 20-byte bodies; without it a 1 GiB download is held in memory. Here the
// decision is taken per response, after its header is read, so small
// bodies cost no allocation and large ones flow through a fixed buffer.
// Request and header parsing stay fasthttp's (one interpretation of the
// wire for both sides).
//
// HTTP/2 targets (h2c://, grpc://, h2://, grpcs://) go through the same
// Transport to the gateway's own HTTP/2 client instead (h2.go).
package transport

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weirgw/weir/internal/fusedio"
	"github.com/weirgw/weir/proxy/config"
)

// Errors the proxy maps to gateway statuses.
var (
	// ErrPoolTimeout: no connection became free within MaxConnWait (503).
	ErrPoolTimeout = errors.New("no free upstream connection within max_conn_wait")
	// ErrClosed: the transport was closed.
	ErrClosed = errors.New("transport closed")
)

// DialError wraps a failure to connect, TLS handshake included; nothing
// was sent, so any request may be retried on another target.
type DialError struct {
	Err error
	// Handshake: the TCP connection was made and the TLS handshake failed
	// (an unverifiable certificate, a name mismatch, a refused client
	// certificate): the target's settings are wrong, not its load.
	Handshake bool
}

func (e *DialError) Error() string {
	if e.Handshake {
		return "upstream TLS handshake: " + e.Err.Error()
	}
	return "connect upstream: " + e.Err.Error()
}
func (e *DialError) Unwrap() error { return e.Err }

// Config of one transport.
type Config struct {
	Addr string // host:port
	// TLS, when set, makes the connections TLS with these settings (shared,
	// never modified: New works on a copy). An empty ServerName becomes
	// Addr's host, both the SNI sent and the name verified; a zero
	// MinVersion is TLS 1.2. The transport keeps its own session cache.
	TLS            *tls.Config
	ConnectTimeout time.Duration
	MaxConns       int
	MaxConnWait    time.Duration
	IdleTimeout    time.Duration // close pooled connections idle longer than this
	// StreamThreshold: responses with a Content-Length above this, or
	// chunked, or delimited by connection close, are streamed to the client
	// instead of being buffered.
	StreamThreshold int
	// MaxHeaderBytes bounds the upstream's response header.
	MaxHeaderBytes int
	// HTTP2 speaks HTTP/2 to the target (h2.go): cleartext, or over TLS
	// when TLS is set.
	HTTP2 bool
}

// Transport is safe for concurrent use. It is long-lived: the registry
// keeps one per upstream address across config reloads.
type Transport struct {
	cfg    Config
	dialer net.Dialer
	tlsCfg *tls.Config
	// warned is when a handshake failure was last logged (unix
	// nanoseconds), for WarnDue.
	warned atomic.Int64

	mu     sync.Mutex
	idle   []*conn // LIFO: the most recently used connection is warmest
	closed bool

	// Tokens: inUse counts connections handed out (at most MaxConns), an
	// atomic in the common case. Requests over it wait in queue (wait.go).
	inUse    atomic.Int64
	queue    waitQueue
	open     atomic.Int64
	inflight atomic.Int64
	stopIdle chan struct{}
	// epoch counts the reaper's ticks (IdleTimeout/2 apart); a connection
	// idle for three of them has been idle for at least IdleTimeout. It
	// spares a clock read per request.
	epoch    atomic.Uint64
	connPool sync.Pool
	h2       *h2Client // HTTP/2 targets (h2.go); nil for HTTP/1.1
}

type conn struct {
	fc        fusedio.Conn // the connection; plain TCP holds requests (package fusedio)
	br        *bufio.Reader
	bw        *bufio.Writer // over splice, over fc
	splice    headerSplice
	idleSince uint64 // the reaper's epoch when the connection went idle
	t         *Transport
	stream    bodyStream // reused for the streamed response of this conn
}

// New builds a transport; it starts one goroutine that closes idle
// connections, stopped by Close.
func New(cfg Config) *Transport {
	// Zero fields take the defaults of the one table.
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = config.DefaultMaxConnsPerTarget
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = config.DefaultConnectTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = config.DefaultUpstreamIdleTimeout
	}
	if cfg.StreamThreshold <= 0 {
		cfg.StreamThreshold = config.DefaultStreamThreshold
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = config.DefaultUpstreamMaxHeaderBytes
	}
	t := &Transport{
		cfg:      cfg,
		dialer:   net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second},
		stopIdle: make(chan struct{}),
	}
	if cfg.TLS != nil {
		t.tlsCfg = cfg.TLS.Clone()
		if t.tlsCfg.ServerName == "" {
			// An IP literal is verified against the certificate's IP
			// addresses and sent as no SNI (RFC 6066 allows names only).
			t.tlsCfg.ServerName, _, _ = net.SplitHostPort(cfg.Addr)
		}
		if t.tlsCfg.MinVersion == 0 {
			t.tlsCfg.MinVersion = tls.VersionTLS12
		}
		// A reconnection (the upstream closed an idle connection, or the
		// pool grew) resumes the last session: no certificate exchange,
		// one round trip less. The cache is the transport's own because
		// Go keys it by server name, which several targets of a service
		// may share (server_name set, or one host on several ports), and
		// one target's ticket is useless to another.
		t.tlsCfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	}
	if cfg.HTTP2 {
		t.initH2()
	}
	go t.reapIdle()
	return t
}

// WarnDue reports whether a failure worth a warning (a TLS handshake that
// failed) should be logged now: at most once per every per transport,
// so a misconfigured target under load logs its reason without flooding.
func (t *Transport) WarnDue(every time.Duration) bool {
	now := time.Now().UnixNano()
	last := t.warned.Load()
	return (last == 0 || now-last >= int64(every)) && t.warned.CompareAndSwap(last, now)
}

// Config returns the transport's settings.
func (t *Transport) Config() Config { return t.cfg }

// Open is the number of open connections; InFlight the requests under way.
func (t *Transport) Open() int64 {
	if t.h2 != nil {
		return t.h2.pool.open()
	}
	return t.open.Load()
}
func (t *Transport) InFlight() int64 { return t.inflight.Load() }

// Close closes idle connections and refuses new requests; connections in
// use close when their requests finish.
func (t *Transport) Close() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	close(t.stopIdle)
	if t.h2 != nil {
		t.h2.close()
	}
	for _, c := range idle {
		t.closeConn(c)
	}
}

func (t *Transport) reapIdle() {
	tick := time.NewTicker(t.cfg.IdleTimeout / 2)
	defer tick.Stop()
	for {
		select {
		case <-t.stopIdle:
			return
		case <-tick.C:
			e := t.epoch.Add(1)
			var stale []*conn
			t.mu.Lock()
			keep := t.idle[:0]
			for _, c := range t.idle {
				if e-c.idleSince >= 3 {
					stale = append(stale, c)
				} else {
					keep = append(keep, c)
				}
			}
			for i := len(keep); i < len(t.idle); i++ {
				t.idle[i] = nil
			}
			t.idle = keep
			t.mu.Unlock()
			for _, c := range stale {
				t.closeConn(c)
			}
		}
	}
}

// acquire returns a pooled connection (reused=true) or a new one. The
// semaphore counts connections in use, so max_conns bounds concurrent
// requests to the target; idle connections are capped separately.
func (t *Transport) acquire(deadline time.Time, fresh bool) (c *conn, reused bool, err error) {
	// Nobody queued and a token free: no lock. With a queue, a request
	// takes its place at the end of it (first come, first served: one
	// that took a token past the queue would leave a waiter to time out).
	if t.queue.n.Load() != 0 || !t.tryToken() {
		if err := t.waitToken(deadline); err != nil {
			return nil, false, err
		}
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		t.putToken()
		return nil, false, ErrClosed
	}
	if n := len(t.idle); !fresh && n > 0 {
		c = t.idle[n-1]
		t.idle[n-1] = nil
		t.idle = t.idle[:n-1]
		t.mu.Unlock()
		// An idle connection buffers nothing (release gave its buffers
		// back, and never pools one with unsolicited bytes). The socket
		// itself is checked as the request goes out (roundTrip), in the
		// same system call that would otherwise find no answer yet.
		c.attach()
		return c, true, nil
	}
	t.mu.Unlock()
	c, err = t.dial(deadline)
	if err != nil {
		t.putToken()
		return nil, false, err
	}
	t.open.Add(1)
	return c, false, nil
}

func (t *Transport) dial(deadline time.Time) (*conn, error) {
	nc, err := t.dialAside(deadline)
	if err != nil {
		return nil, err
	}
	c, _ := t.connPool.Get().(*conn)
	if c == nil {
		c = &conn{}
	}
	c.t = t
	c.fc.Reset(nc, deadlineSlack)
	c.splice = headerSplice{w: &c.fc, buf: c.splice.buf[:0]}
	c.attach()
	return c, nil
}

// A connection's read and write buffers are its own only while it is in
// use: an idle pooled connection gives them back, so that it costs ~2 KiB
// rather than ~11 (10,000 busy clients leave up to max_conns_per_target
// pooled connections per target behind them).
var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}
)

// attach gives c its read and write buffers.
func (c *conn) attach() {
	c.br = readerPool.Get().(*bufio.Reader)
	c.br.Reset(&c.fc)
	c.bw = writerPool.Get().(*bufio.Writer)
	c.bw.Reset(&c.splice)
}

// detach gives c's buffers back; what they hold is dropped.
func (c *conn) detach() {
	if c.br != nil {
		c.br.Reset(nil)
		readerPool.Put(c.br)
		c.br = nil
	}
	if c.bw != nil {
		c.bw.Reset(nil)
		writerPool.Put(c.bw)
		c.bw = nil
	}
}

// dialAside is Dial on a goroutine of its own. The system's connect path
// (and a TLS handshake) is deeper than the rest of a request: run on the
// request's goroutine it would double that goroutine's stack to 8 KiB,
// which the runtime keeps while the connection stays busy. A dial costs a
// connect and a round trip already; the goroutine adds about a
// microsecond.
func (t *Transport) dialAside(deadline time.Time) (net.Conn, error) {
	type dialed struct {
		nc  net.Conn
		err error
	}
	done := make(chan dialed, 1)
	go func() {
		nc, err := t.Dial(deadline)
		done <- dialed{nc, err}
	}()
	d := <-done
	return d.nc, d.err
}

// Dial opens a connection of its own to the target, TLS included when the
// target's scheme asks for it, within the connect timeout (and deadline,
// when it is earlier). It is neither pooled nor counted against MaxConns:
// the caller owns it (a WebSocket tunnel, which holds its connection for
// as long as the client does). A failure is a *DialError.
func (t *Transport) Dial(deadline time.Time) (net.Conn, error) {
	d := t.dialer
	if dl := time.Now().Add(t.cfg.ConnectTimeout); deadline.IsZero() || dl.Before(deadline) {
		d.Deadline = dl
	} else {
		d.Deadline = deadline
	}
	nc, err := d.Dial("tcp", t.cfg.Addr)
	if err != nil {
		return nil, &DialError{Err: err}
	}
	if t.tlsCfg != nil {
		tc := tls.Client(nc, t.tlsCfg)
		_ = tc.SetDeadline(d.Deadline)
		if err := tc.Handshake(); err != nil {
			_ = nc.Close()
			return nil, &DialError{Err: err, Handshake: true}
		}
		// The socket goes into fusedio believed to carry no deadline:
		// make it so, or the handshake's would outlive the dial.
		_ = tc.SetDeadline(time.Time{})
		nc = tc
	}
	return nc, nil
}

// release puts a healthy in-use connection back in the pool and frees its
// token.
func (t *Transport) release(c *conn) {
	if c.br.Buffered() > 0 {
		// The upstream sent more than the response it framed: the
		// connection's position is unknown, never reuse it.
		t.discard(c)
		return
	}
	c.detach()
	c.idleSince = t.epoch.Load()
	t.mu.Lock()
	if t.closed || len(t.idle) >= t.cfg.MaxConns {
		t.mu.Unlock()
		t.closeConn(c)
	} else {
		t.idle = append(t.idle, c)
		t.mu.Unlock()
	}
	t.putToken()
}

// discard closes an in-use connection and frees its token.
func (t *Transport) discard(c *conn) {
	t.closeConn(c)
	t.putToken()
}

func (t *Transport) closeConn(c *conn) {
	_ = c.fc.Abort()
	c.fc.Reset(nil, 0)
	c.detach()
	c.splice.w, c.splice.extra = nil, nil
	t.open.Add(-1)
	t.connPool.Put(c)
}
