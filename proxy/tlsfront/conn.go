package tlsfront

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/weirgw/weir/internal/fusedio"
)

// Handshake counters: weir_tls_handshakes_total{version,result}.
var (
	hsOK12    = metrics.NewCounter(`weir_tls_handshakes_total{version="1.2",result="ok"}`)
	hsOK13    = metrics.NewCounter(`weir_tls_handshakes_total{version="1.3",result="ok"}`)
	hsFailed  = metrics.NewCounter(`weir_tls_handshakes_total{version="unknown",result="failed"}`)
	hsFail12  = metrics.NewCounter(`weir_tls_handshakes_total{version="1.2",result="failed"}`)
	hsFail13  = metrics.NewCounter(`weir_tls_handshakes_total{version="1.3",result="failed"}`)
	plainHTTP = metrics.NewCounter(`weir_tls_plain_http_requests_total`)
)

// Listener wraps a TCP listener of a TLS Front.
type Listener struct {
	net.Listener
	f *Front
}

// Listener wraps ln (a TCP listener from the shared listen helper) so that
// its connections speak TLS with f's config.
func (f *Front) Listener(ln net.Listener) net.Listener { return &Listener{Listener: ln, f: f} }

// Accept returns the next connection without handshaking: the handshake
// runs on the worker that serves the connection, at its first Read. The
// records go over a fusedio.RawConn: reads and writes as plain system
// calls, without the runtime's bookkeeping for each, which with one P
// (GOMAXPROCS=1) kept sysmon awake and handed the P between threads on
// every request (the cleartext HTTP/2 path does the same).
func (l *Listener) Accept() (net.Conn, error) {
	raw, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	p := &peekConn{Conn: fusedio.NewRaw(raw)}
	return &Conn{Conn: tls.Server(p, l.f.cfg), raw: p, f: l.f, accepted: time.Now()}, nil
}

// Conn is a server-side TLS connection that handshakes on first use.
// Handshake is not safe for concurrent use: fasthttp reads and writes a
// connection from one goroutine (Close may come from another, which
// tls.Conn allows).
type Conn struct {
	*tls.Conn
	raw      *peekConn
	f        *Front
	accepted time.Time
	done     bool
	err      error
	// The deadlines the server set, put back after the handshake, which
	// runs under its own.
	rdl, wdl time.Time
	// client is the verified client certificate, recorded once at the
	// handshake so that plugins (sdk.Ctx.ClientCertificate) read it
	// without copying the connection state on every request.
	client *x509.Certificate
}

// VerifiedClientCertificate is the certificate the client presented and
// the handshake verified against client_auth.ca; nil without one.
func (c *Conn) VerifiedClientCertificate() *x509.Certificate { return c.client }

// Handshake looks at the first byte, answers a plain-HTTP client with 400,
// and otherwise runs the TLS handshake, all within HandshakeTimeout of the
// accept; the result is counted once.
func (c *Conn) Handshake() error {
	if c.done {
		return c.err
	}
	c.done = true
	c.err = c.handshake()
	return c.err
}

func (c *Conn) handshake() error {
	_ = c.raw.Conn.SetDeadline(c.accepted.Add(c.f.opts.HandshakeTimeout))
	first, err := c.raw.peek()
	if err != nil {
		// Closed or timed out before a byte: a port probe or a
		// connection the client gave up, not a handshake.
		return err
	}
	if first != 0x16 { // a TLS record of type handshake (RFC 8446 §5.1)
		plainHTTP.Inc()
		c.answerPlainHTTP()
		return errPlainHTTP
	}
	if err := c.Conn.Handshake(); err != nil {
		switch c.Conn.ConnectionState().Version {
		case tls.VersionTLS12:
			hsFail12.Inc()
		case tls.VersionTLS13:
			hsFail13.Inc()
		default:
			hsFailed.Inc()
		}
		c.f.opts.Log.Debug("tls handshake failed", "client", c.raw.RemoteAddr().String(), "error", err.Error())
		return err
	}
	st := c.Conn.ConnectionState()
	if len(st.VerifiedChains) > 0 && len(st.VerifiedChains[0]) > 0 {
		c.client = st.VerifiedChains[0][0]
	}
	if st.Version == tls.VersionTLS13 {
		hsOK13.Inc()
	} else {
		hsOK12.Inc()
	}
	_ = c.raw.Conn.SetReadDeadline(c.rdl)
	_ = c.raw.Conn.SetWriteDeadline(c.wdl)
	return nil
}

// answerPlainHTTP answers 400 in cleartext, as nginx does, then closes
// the write side and drains what the client sent for a short while:
// closing with unread bytes would make the kernel send a reset that can
// destroy the answer before the client reads it.
func (c *Conn) answerPlainHTTP() {
	if c.f.opts.PlainHTTPAnswer != nil {
		_, _ = c.raw.Conn.Write(c.f.opts.PlainHTTPAnswer())
	}
	if cw, ok := c.raw.Conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = c.raw.Conn.SetReadDeadline(time.Now().Add(time.Second))
	_, _ = io.Copy(io.Discard, io.LimitReader(c.raw.Conn, 64<<10))
}

// Read handshakes first.
func (c *Conn) Read(b []byte) (int, error) {
	if err := c.Handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

// Write handshakes first.
func (c *Conn) Write(b []byte) (int, error) {
	if err := c.Handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// SetDeadline records the server's deadline and sets it.
func (c *Conn) SetDeadline(t time.Time) error {
	c.rdl, c.wdl = t, t
	if !c.done {
		return nil // the handshake's own deadline rules until it ends
	}
	return c.Conn.SetDeadline(t)
}

// SetReadDeadline records the server's read deadline and sets it.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.rdl = t
	if !c.done {
		return nil
	}
	return c.Conn.SetReadDeadline(t)
}

// SetWriteDeadline records the server's write deadline and sets it.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.wdl = t
	if !c.done {
		return nil
	}
	return c.Conn.SetWriteDeadline(t)
}

// peekConn lets the first byte be looked at, then read again.
type peekConn struct {
	net.Conn
	b       [1]byte
	pending bool
}

func (p *peekConn) peek() (byte, error) {
	if _, err := io.ReadFull(p.Conn, p.b[:]); err != nil {
		return 0, err
	}
	p.pending = true
	return p.b[0], nil
}

func (p *peekConn) Read(b []byte) (int, error) {
	if p.pending && len(b) > 0 {
		p.pending = false
		b[0] = p.b[0]
		return 1, nil
	}
	return p.Conn.Read(b)
}
