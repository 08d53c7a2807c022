//lint:file-ignore SA1019 raw frames need x/net/http2's Framer (RATIONALE.md)

package e2e

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// HTTP/2 attacks against the real binary, frame by frame: each is
// refused at a bounded cost (a stream or connection error, RFC 9113), and
// Weir serves the next client normally.

// h2Conn is a raw HTTP/2 client connection.
type h2Conn struct {
	t  *testing.T
	c  net.Conn
	fr *http2.Framer
}

// dialH2 connects with prior knowledge and sends the preface and an empty
// SETTINGS frame. rcvbuf > 0 shrinks the socket's receive buffer, so a
// client that does not read stalls the server's writes quickly.
func dialH2(t *testing.T, addr string, rcvbuf int) *h2Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if rcvbuf > 0 {
		_ = c.(*net.TCPConn).SetReadBuffer(rcvbuf)
	}
	t.Cleanup(func() { c.Close() })
	// A server that refuses the connection (a connection cap) may close
	// it before the preface is written: the write then fails with a
	// reset, and the caller's outcome() reads "closed".
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Logf("writing the preface: %v", err)
	}
	fr := http2.NewFramer(c, c)
	fr.AllowIllegalWrites = true // the point of these tests
	fr.ReadMetaHeaders = hpack.NewDecoder(65536, nil)
	fr.MaxHeaderListSize = 1 << 20
	if err := fr.WriteSettings(); err != nil {
		t.Logf("writing SETTINGS: %v", err)
	}
	return &h2Conn{t: t, c: c, fr: fr}
}

// block HPACK-encodes a request for path (extra fields after it).
func h2Block(addr, path string, extra ...hpack.HeaderField) []byte {
	var b bytes.Buffer
	e := hpack.NewEncoder(&b)
	for _, f := range append([]hpack.HeaderField{
		{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"},
		{Name: ":authority", Value: addr}, {Name: ":path", Value: path},
	}, extra...) {
		_ = e.WriteField(f)
	}
	return b.Bytes()
}

// outcome reads frames until the connection ends, GOAWAY comes, or the
// stream's response headers come: "goaway CODE", "closed", "status N" or
// "rst CODE".
func (h *h2Conn) outcome(stream uint32, within time.Duration) string {
	_ = h.c.SetReadDeadline(time.Now().Add(within))
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return "timeout"
			}
			return "closed"
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			return "goaway " + f.ErrCode.String()
		case *http2.RSTStreamFrame:
			if f.StreamID == stream {
				return "rst " + f.ErrCode.String()
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == stream {
				return "status " + f.PseudoValue("status")
			}
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = h.fr.WriteSettingsAck()
			}
		}
	}
}

// attackCfg: an h2c listener with few streams per connection, small
// header limits, and a route to up.
func attackCfg(up string) string {
	return `
listen:
  - {address: "{{LISTEN}}", http2: true}
admin: {listen: "{{ADMIN}}"}
server: {read_timeout: 2s, write_timeout: 1s, max_concurrent_streams: 10, max_header_bytes: 4096}
services:
  - name: up
    targets: [{url: "http://` + up + `"}]
routes:
  - {name: all, paths: ["/"], service: up}
`
}

// stillServes: a fresh client gets a normal answer.
func stillServes(t *testing.T, w *weir) {
	t.Helper()
	h := dialH2(t, w.Addr, 0)
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h2Block(w.Addr, "/ok"), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	if got := h.outcome(1, 5*time.Second); got != "status 200" {
		t.Fatalf("after the attack a new client got %q, want status 200\n%s", got, w.Logs())
	}
}

// slowUpstream answers after d and records the most requests it had at
// once.
func slowUpstream(t *testing.T, d time.Duration) (string, *atomic.Int64) {
	var cur, peak atomic.Int64
	addr := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := cur.Add(1)
		defer cur.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		if r.URL.Path != "/ok" {
			time.Sleep(d)
		}
	}))
	return addr, &peak
}

// TestHTTP2RapidReset (CVE-2023-44487): a client that opens streams and
// resets them at once cannot make Weir run more than
// max_concurrent_streams requests at a time; past a few times that many
// early resets, the connection ends with GOAWAY ENHANCE_YOUR_CALM.
func TestHTTP2RapidReset(t *testing.T) {
	up, peak := slowUpstream(t, 300*time.Millisecond)
	w := startWeir(t, attackCfg(up))
	h := dialH2(t, w.Addr, 0)
	block := h2Block(w.Addr, "/slow")
	for id := uint32(1); id < 2*1000; id += 2 {
		if h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true}) != nil ||
			h.fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
			break // the server closed the connection
		}
	}
	if got := h.outcome(0, 5*time.Second); got != "goaway ENHANCE_YOUR_CALM" && got != "closed" {
		t.Fatalf("rapid reset: got %q, want GOAWAY ENHANCE_YOUR_CALM", got)
	}
	if p := peak.Load(); p > 10 {
		t.Errorf("the upstream saw %d requests at once; max_concurrent_streams is 10", p)
	}
	stillServes(t, w)
}

// TestHTTP2ContinuationFlood (CVE-2024-27316 family): a header block
// continued without end is cut off once it passes the header limit; the
// connection ends without Weir buffering what follows.
func TestHTTP2ContinuationFlood(t *testing.T) {
	up, _ := slowUpstream(t, 0)
	w := startWeir(t, attackCfg(up))
	h := dialH2(t, w.Addr, 0)
	block := h2Block(w.Addr, "/")
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndHeaders: false}); err != nil {
		t.Fatal(err)
	}
	var junk bytes.Buffer
	e := hpack.NewEncoder(&junk)
	_ = e.WriteField(hpack.HeaderField{Name: "x-junk", Value: strings.Repeat("a", 1000), Sensitive: true})
	sent := 0
	for i := 0; i < 10000; i++ { // up to 10 MB of header block
		_ = h.c.SetWriteDeadline(time.Now().Add(2 * time.Second))
		if h.fr.WriteContinuation(1, false, junk.Bytes()) != nil {
			break
		}
		sent += junk.Len()
	}
	got := h.outcome(1, 5*time.Second)
	if !strings.HasPrefix(got, "goaway") && got != "closed" && got != "status 431" {
		t.Fatalf("CONTINUATION flood: got %q after %d bytes, want the connection ended", got, sent)
	}
	if sent >= 10000*junk.Len() {
		t.Errorf("Weir read all %d bytes of an endless header block", sent)
	}
	stillServes(t, w)
}

// TestHTTP2HPACKBomb: a small header block that expands, through the
// HPACK dynamic table, far past max_header_bytes is refused (431), not
// decoded into memory; the connection stays usable.
func TestHTTP2HPACKBomb(t *testing.T) {
	up, _ := slowUpstream(t, 0)
	w := startWeir(t, attackCfg(up))
	h := dialH2(t, w.Addr, 0)
	var b bytes.Buffer
	e := hpack.NewEncoder(&b)
	for _, f := range []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"},
		{Name: ":authority", Value: w.Addr}, {Name: ":path", Value: "/bomb"}, {Name: "x-bomb", Value: strings.Repeat("b", 3000)}} {
		_ = e.WriteField(f)
	}
	// Each further reference to the table entry is one byte on the wire
	// (indexed field 62) and 3 KB decoded: 4000 of them are 12 MB.
	wire := append(b.Bytes(), bytes.Repeat([]byte{0x80 | 62}, 4000)...)
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: wire, EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	got := h.outcome(1, 5*time.Second)
	if got != "status 431" && !strings.HasPrefix(got, "goaway") && got != "closed" {
		t.Fatalf("HPACK bomb: got %q, want 431 or the connection ended", got)
	}
	stillServes(t, w)
}

// TestHTTP2FlowControlAbuse: a WINDOW_UPDATE that overflows the
// connection window, and one of zero, are connection errors.
func TestHTTP2FlowControlAbuse(t *testing.T) {
	up, _ := slowUpstream(t, 0)
	w := startWeir(t, attackCfg(up))
	h := dialH2(t, w.Addr, 0)
	for i := 0; i < 3; i++ {
		_ = h.fr.WriteWindowUpdate(0, 1<<31-1)
	}
	if got := h.outcome(0, 5*time.Second); got != "goaway FLOW_CONTROL_ERROR" {
		t.Fatalf("window overflow: got %q, want GOAWAY FLOW_CONTROL_ERROR", got)
	}
	h = dialH2(t, w.Addr, 0)
	_ = h.fr.WriteWindowUpdate(0, 0)
	if got := h.outcome(0, 5*time.Second); got != "goaway PROTOCOL_ERROR" {
		t.Fatalf("zero window update: got %q, want GOAWAY PROTOCOL_ERROR", got)
	}
	stillServes(t, w)
}

// TestHTTP2ControlFloods: PINGs or SETTINGS sent by a client that does
// not read the acknowledgements cannot queue without bound: PING acks
// close the connection once their queue passes its limit; SETTINGS acks
// do not queue at all, and memory stays flat.
func TestHTTP2ControlFloods(t *testing.T) {
	up, _ := slowUpstream(t, 0)
	w := startWeir(t, attackCfg(up))
	stillServes(t, w)
	before := w.peakRSS()
	for _, kind := range []string{"ping", "settings"} {
		h := dialH2(t, w.Addr, 1024)
		// Frames are written in batches of 10,000: one system call each.
		var batch bytes.Buffer
		bf := http2.NewFramer(&batch, nil)
		for i := 0; i < 10000; i++ {
			if kind == "ping" {
				_ = bf.WritePing(false, [8]byte{})
			} else {
				_ = bf.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535})
			}
		}
		start := time.Now()
		for i := 0; i < 1000 && time.Since(start) < 10*time.Second; i++ {
			_ = h.c.SetWriteDeadline(time.Now().Add(2 * time.Second))
			if _, err := h.c.Write(batch.Bytes()); err != nil {
				break // Weir stopped reading, or closed
			}
		}
		if kind == "settings" {
			// Each SETTINGS frame is acknowledged; the acknowledgements
			// a client does not read queue only up to a bound (then the
			// connection ends), and a client that sends faster than
			// Weir reads is slowed by TCP. The cost is bounded: memory
			// stays flat.
			if rss := w.peakRSS(); rss > before+64<<20 {
				t.Errorf("settings flood: peak RSS grew from %d to %d bytes", before, rss)
			}
			continue
		}
		// PING acknowledgements queue: Weir must have closed the
		// connection (past 10,000 queued control frames, or write_timeout
		// without progress), not hold it with its queue.
		_ = h.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := io.Copy(io.Discard, h.c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("%s flood: the connection stayed open", kind)
		}
	}
	stillServes(t, w)
}

// TestHTTP2ProtocolErrors: malformed frames are stream or connection
// errors per RFC 9113, and an oversized header block is 431.
func TestHTTP2ProtocolErrors(t *testing.T) {
	up, _ := slowUpstream(t, 0)
	w := startWeir(t, attackCfg(up))

	h := dialH2(t, w.Addr, 0)
	_ = h.fr.WriteData(0, true, []byte("x")) // DATA on stream 0
	if got := h.outcome(0, 5*time.Second); got != "goaway PROTOCOL_ERROR" {
		t.Errorf("DATA on stream 0: got %q, want GOAWAY PROTOCOL_ERROR", got)
	}

	h = dialH2(t, w.Addr, 0)
	_ = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndStream: true, EndHeaders: true,
		BlockFragment: h2Block(w.Addr, "/", hpack.HeaderField{Name: "Upper-Case", Value: "x"})})
	if got := h.outcome(1, 5*time.Second); got != "rst PROTOCOL_ERROR" {
		t.Errorf("upper-case field name: got %q, want RST_STREAM PROTOCOL_ERROR", got)
	}

	h = dialH2(t, w.Addr, 0)
	_ = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndStream: true, EndHeaders: true,
		BlockFragment: h2Block(w.Addr, "/", hpack.HeaderField{Name: "x-big1", Value: strings.Repeat("v", 2000)},
			hpack.HeaderField{Name: "x-big2", Value: strings.Repeat("v", 2000)}, hpack.HeaderField{Name: "x-big3", Value: strings.Repeat("v", 2000)})})
	if got := h.outcome(1, 5*time.Second); got != "status 431" {
		t.Errorf("header block over max_header_bytes: got %q, want status 431", got)
	}

	h = dialH2(t, w.Addr, 0)
	_ = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 2, EndStream: true, EndHeaders: true, BlockFragment: h2Block(w.Addr, "/")})
	if got := h.outcome(2, 5*time.Second); got != "goaway PROTOCOL_ERROR" {
		t.Errorf("even (server) stream id: got %q, want GOAWAY PROTOCOL_ERROR", got)
	}
	stillServes(t, w)
}

// TestHTTP2ConnectionCaps: server.max_conns_per_ip counts h2c
// connections (which fasthttp does not see) as it counts HTTP/1.1 ones.
func TestHTTP2ConnectionCaps(t *testing.T) {
	up, _ := slowUpstream(t, 0)
	w := startWeir(t, strings.Replace(attackCfg(up), "max_header_bytes: 4096}", "max_header_bytes: 4096, max_conns_per_ip: 1}", 1))
	first := dialH2(t, w.Addr, 0)
	if got := first.outcome(0, 500*time.Millisecond); got != "timeout" {
		t.Fatalf("the first connection: %q", got)
	}
	second := dialH2(t, w.Addr, 0)
	if got := second.outcome(0, 5*time.Second); got != "closed" {
		t.Fatalf("a second connection from the same address: got %q, want it closed", got)
	}
	first.c.Close()
	if !waitUntil(3*time.Second, 20*time.Millisecond, func() bool {
		h := dialH2(t, w.Addr, 0)
		_ = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h2Block(w.Addr, "/ok"), EndStream: true, EndHeaders: true})
		return h.outcome(1, time.Second) == "status 200"
	}) {
		t.Fatal("the slot was not given back when the first connection closed")
	}
}

// TestHTTP2TricklingBodyBoundedByReadTimeout: read_timeout bounds reading
// a whole request body, not each wait for the next DATA frame: a body
// that trickles in a byte every 400 ms ends with its stream after the 2 s
// read_timeout (attackCfg), not after the 8 s the client would take.
func TestHTTP2TricklingBodyBoundedByReadTimeout(t *testing.T) {
	up, _ := slowUpstream(t, 0)
	w := startWeir(t, attackCfg(up))
	h := dialH2(t, w.Addr, 0)
	var b bytes.Buffer
	e := hpack.NewEncoder(&b)
	for _, f := range []hpack.HeaderField{
		{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"},
		{Name: ":authority", Value: w.Addr}, {Name: ":path", Value: "/slow-body"},
		{Name: "content-length", Value: "20"},
	} {
		_ = e.WriteField(f)
	}
	start := time.Now()
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b.Bytes(), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // the framer reads on the test's goroutine, writes here
		defer close(done)
		for i := 0; i < 20; i++ {
			select {
			case <-stop:
				return
			case <-time.After(400 * time.Millisecond):
			}
			if h.fr.WriteData(1, i == 19, []byte{'a'}) != nil {
				return
			}
		}
	}()
	got := h.outcome(1, 6*time.Second)
	took := time.Since(start)
	close(stop)
	<-done
	if got == "timeout" || got == "status 200" {
		t.Fatalf("a body trickling in past read_timeout: got %q after %v, want the stream ended near 2s\n%s", got, took, w.Logs())
	}
	if took > 5*time.Second {
		t.Fatalf("the trickling body's stream ended after %v (%q); read_timeout is 2s", took, got)
	}
	t.Logf("outcome %q after %v", got, took)
}

// TestHTTP2TricklingWindowBoundedByWriteTimeout: write_timeout bounds
// writing one whole answer, not each wait for the client's window. The
// upstream's 64 KiB answer has no Content-Length, so it is streamed, in
// writes of at most 4 KiB; the client grants 1 KiB of window every 300 ms,
// enough for each write to finish within the 2 s write_timeout but ~19 s
// for the whole answer. Its stream is reset (INTERNAL_ERROR, as Go's
// server does) once write_timeout has passed since the answer began. The
// connection and its other streams go on: one is answered meanwhile, and
// the reset stream's slot is free again (max_concurrent_streams 2 takes a
// held-open stream and one more). The answer counts once in
// weir_requests_total, by its status, as an HTTP/1.1 answer whose write
// times out does.
func TestHTTP2TricklingWindowBoundedByWriteTimeout(t *testing.T) {
	big := bytes.Repeat([]byte("w"), 64<<10)
	up := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/big" {
			_, _ = w.Write(big) // no Content-Length: chunked
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	w := startWeir(t, `
listen:
  - {address: "{{LISTEN}}", http2: true}
admin: {listen: "{{ADMIN}}"}
server: {read_timeout: 10s, write_timeout: 2s, max_concurrent_streams: 2}
services:
  - name: up
    targets: [{url: "http://`+up+`"}]
routes:
  - {name: all, paths: ["/"], service: up}
`)
	c, err := net.Dial("tcp", w.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(65536, nil)
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	// Every stream's window starts at 1 byte; the connection's is wide.
	if err := fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1}); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteWindowUpdate(0, 1<<20); err != nil {
		t.Fatal(err)
	}
	// The framer reads on its own goroutine; this one writes.
	type event struct {
		stream uint32
		kind   string // "status N", "data", "rst CODE", "goaway CODE", "closed"
		n      int
		end    bool
	}
	events := make(chan event, 1024)
	go func() {
		defer close(events)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				events <- event{kind: "closed"}
				return
			}
			switch f := f.(type) {
			case *http2.MetaHeadersFrame:
				events <- event{stream: f.StreamID, kind: "status " + f.PseudoValue("status"), end: f.StreamEnded()}
			case *http2.DataFrame:
				events <- event{stream: f.StreamID, kind: "data", n: len(f.Data()), end: f.StreamEnded()}
			case *http2.RSTStreamFrame:
				events <- event{stream: f.StreamID, kind: "rst " + f.ErrCode.String()}
			case *http2.GoAwayFrame:
				events <- event{kind: "goaway " + f.ErrCode.String()}
			case *http2.SettingsFrame:
				if !f.IsAck() {
					events <- event{kind: "settings"}
				}
			}
		}
	}()
	send := func(id uint32, path string, end bool, extra ...hpack.HeaderField) {
		t.Helper()
		m := "GET"
		if !end {
			m = "POST"
		}
		var b bytes.Buffer
		e := hpack.NewEncoder(&b)
		for _, f := range append([]hpack.HeaderField{
			{Name: ":method", Value: m}, {Name: ":scheme", Value: "http"},
			{Name: ":authority", Value: w.Addr}, {Name: ":path", Value: path},
		}, extra...) {
			_ = e.WriteField(f)
		}
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: b.Bytes(), EndStream: end, EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
		if id == 1 {
			return // its window stays at a byte
		}
		if err := fr.WriteWindowUpdate(id, 1<<20); err != nil {
			t.Fatal(err)
		}
	}
	// got collects each stream's answer: its status, DATA bytes, end.
	type answer struct {
		status, rst string
		n           int
		end         bool
		at          time.Duration
	}
	got := map[uint32]*answer{}
	start := time.Now()
	take := func(ev event) {
		t.Helper()
		switch {
		case ev.kind == "settings":
			_ = fr.WriteSettingsAck()
			return
		case ev.stream == 0:
			t.Fatalf("the connection ended: %s after %v\n%s", ev.kind, time.Since(start), w.Logs())
		}
		a := got[ev.stream]
		if a == nil {
			a = &answer{}
			got[ev.stream] = a
		}
		switch {
		case strings.HasPrefix(ev.kind, "status"):
			a.status = ev.kind
		case ev.kind == "data":
			a.n += ev.n
		default:
			a.rst = ev.kind
		}
		a.end = a.end || ev.end || a.rst != ""
		a.at = time.Since(start)
	}
	// until takes events, granting stream 1 1 KiB every 300 ms, until
	// done holds or 8 s have passed since the start.
	until := func(what string, done func() bool) {
		t.Helper()
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		limit := time.After(time.Until(start.Add(8 * time.Second)))
		for !done() {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatalf("waiting for %s: the connection closed", what)
				}
				take(ev)
			case <-tick.C:
				if a := got[1]; a == nil || !a.end {
					_ = fr.WriteWindowUpdate(1, 1024)
				}
			case <-limit:
				a := got[1]
				if a == nil {
					a = &answer{}
				}
				t.Fatalf("waiting for %s: after %v stream 1 (64 KiB streamed, 1 KiB of window every 300 ms, write_timeout 2s) had %q, %d bytes, end %v, reset %q\n%s",
					what, time.Since(start), a.status, a.n, a.end, a.rst, w.Logs())
			}
		}
	}
	ended := func(id uint32) func() bool {
		return func() bool { a := got[id]; return a != nil && a.end }
	}

	send(1, "/big", true)
	until("stream 1's head", func() bool { return got[1] != nil && got[1].status != "" })
	// Another stream meanwhile: answered in full.
	send(3, "/ok", true)
	until("stream 3's answer", ended(3))
	if a := got[3]; a.status != "status 200" || a.n != 2 || a.rst != "" {
		t.Fatalf("stream 3 beside the trickling one: %+v", *a)
	}
	until("stream 1's reset", ended(1))
	a := got[1]
	if a.rst != "rst INTERNAL_ERROR" || a.n >= len(big) {
		t.Fatalf("stream 1: status %q, %d of %d bytes, reset %q after %v; want RST_STREAM INTERNAL_ERROR near 2s", a.status, a.n, len(big), a.rst, a.at)
	}
	t.Logf("stream 1: %s, %d bytes, %s after %v", a.status, a.n, a.rst, a.at)
	// The reset stream's slot is free: a stream held open (its body not
	// yet sent) and another fit max_concurrent_streams 2.
	send(5, "/ok", false, hpack.HeaderField{Name: "content-length", Value: "1"})
	send(7, "/ok", true)
	until("stream 7's answer", ended(7))
	if a := got[7]; a.status != "status 200" || a.n != 2 {
		t.Fatalf("stream 7 after the reset, beside held-open stream 5: %+v (REFUSED_STREAM: the reset stream's slot was not freed)", *a)
	}
	if err := fr.WriteData(5, true, []byte("x")); err != nil {
		t.Fatal(err)
	}
	until("stream 5's answer", ended(5))
	if a := got[5]; a.status != "status 200" || a.n != 2 {
		t.Fatalf("stream 5: %+v", *a)
	}
	if n := w.metricSum(`weir_requests_total{route="all",service="up",status="200"}`); n != 4 {
		t.Errorf("weir_requests_total 200 = %v, want 4 (streams 1, 3, 5, 7)", n)
	}
}
