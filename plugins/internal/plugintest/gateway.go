package plugintest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weirgw/weir/proxy"
	"github.com/weirgw/weir/proxy/config"
	"github.com/weirgw/weir/sdk"
)

// A Gateway runs filters behind the real proxy: proxy.New's server, with
// its fasthttp settings and handler (the request body buffered or
// streamed as in production, routing, forwarding), on a loopback
// listener, in front of a loopback upstream that records what reached it.
// Requests are written as raw bytes, so a test decides the framing
// (Content-Length or chunked). A filter tested only on a hand-built
// RequestCtx sees a request no client can send: a body already in
// memory, which the server never hands over that way.
type Gateway struct {
	t    testing.TB // the test that started it
	Addr string     // the gateway's listener

	mu   sync.Mutex
	got  []Received
	ansr func(r *Received, w http.ResponseWriter)
}

// Route is where a Gateway serves its filters.
type Route struct {
	// Name is the route's name ("" is "test-route"); the filters should be
	// built with a Build of the same Route.
	Name string
	// Paths are the route's paths ("" is ["/"]), in the config's syntax:
	// "/users/{id}" gives the filters the parameter id.
	Paths []string
	// Server is the config's server section as YAML flow ("" is none),
	// e.g. `{max_body_bytes: 1000}`.
	Server string
}

// Received is a request as the upstream got it.
type Received struct {
	Method string
	URI    string
	Header http.Header
	Body   []byte
	// ContentLength is -1 for a chunked body.
	ContentLength int64
	Chunked       bool
}

// Send is a client request, written by hand on a new connection.
type Send struct {
	Method string // "" is POST with a body, GET without
	URI    string // "" is "/"
	// HeaderLines are name, value pairs, in order.
	HeaderLines []string
	Body        string
	// Chunked sends Body with Transfer-Encoding: chunked, in chunks of
	// at most 64 KiB; otherwise it goes with a Content-Length.
	Chunked bool
}

// Answer is what the client got, and what of it reached the upstream.
type Answer struct {
	Status int
	Header http.Header
	Body   string
	// Upstream is the request the upstream received for it, nil when
	// none did (a filter answered, or the gateway refused).
	Upstream *Received
}

// hosted holds the filters of running Gateways by ID: the proxy builds
// its filters from a config, so the config names one of these.
var (
	hosted sync.Map // int64 → sdk.Filter
	lastID atomic.Int64
)

const hostedPlugin = "plugintest"

func init() {
	sdk.Register(sdk.Factory{Name: hostedPlugin, New: func(_ *sdk.Build, raw json.RawMessage) (sdk.Filter, error) {
		var c struct {
			ID int64 `json:"id"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, err
		}
		f, ok := hosted.Load(c.ID)
		if !ok {
			return nil, fmt.Errorf("no filter hosted as %d", c.ID)
		}
		return hide(f.(sdk.Filter)), nil
	}})
}

// hide returns f with exactly its request, response and log phases (and
// whether it reads whole response bodies, sdk.WholeBodyFilter). The
// proxy starts and closes the filters of its snapshots; the test owns
// these (plugintest.New closes them), so Start and Close stay hidden.
func hide(f sdk.Filter) sdk.Filter {
	rf, isResp := f.(sdk.ResponseFilter)
	lf, isLog := f.(sdk.LogFilter)
	wf, isWhole := f.(sdk.WholeBodyFilter)
	switch {
	case isWhole && isLog:
		return struct {
			sdk.Filter
			sdk.WholeBodyFilter
			sdk.LogFilter
		}{f, wf, lf}
	case isWhole:
		return struct {
			sdk.Filter
			sdk.WholeBodyFilter
		}{f, wf}
	case isResp && isLog:
		return struct {
			sdk.Filter
			sdk.ResponseFilter
			sdk.LogFilter
		}{f, rf, lf}
	case isResp:
		return struct {
			sdk.Filter
			sdk.ResponseFilter
		}{f, rf}
	case isLog:
		return struct {
			sdk.Filter
			sdk.LogFilter
		}{f, lf}
	}
	return struct{ sdk.Filter }{f}
}

// Serve starts a gateway whose route runs filters, in order, and stops it
// when the test ends.
func Serve(t testing.TB, route Route, filters ...sdk.Filter) *Gateway {
	t.Helper()
	g := &Gateway{t: t}
	upAddr := g.startUpstream()

	if route.Name == "" {
		route.Name = "test-route"
	}
	if len(route.Paths) == 0 {
		route.Paths = []string{"/"}
	}
	var plugins strings.Builder
	for _, f := range filters {
		id := lastID.Add(1)
		hosted.Store(id, f)
		t.Cleanup(func() { hosted.Delete(id) })
		fmt.Fprintf(&plugins, "\n      - {name: %s, config: {id: %d}}", hostedPlugin, id)
	}
	paths, _ := json.Marshal(route.Paths)
	yaml := fmt.Sprintf("listen: \"127.0.0.1:0\"\nservices: [{name: up, targets: [{url: \"http://%s\"}], retries: 0}]\n"+
		"routes:\n  - name: %q\n    paths: %s\n    service: up\n    plugins:%s\n", upAddr, route.Name, paths, plugins.String())
	if route.Server != "" {
		yaml += "server: " + route.Server + "\n"
	}
	cfg, err := config.Parse("plugintest.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("gateway config: %v\n%s", err, yaml)
	}
	config.ApplyDefaults(cfg)
	if err := config.Validate(cfg, "plugintest.yaml"); err != nil {
		t.Fatalf("gateway config: %v\n%s", err, yaml)
	}
	srv, err := proxy.New(cfg, "plugintest.yaml", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("starting the gateway: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.Addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return g
}

func (g *Gateway) startUpstream() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		g.t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, q *http.Request) {
		b, err := io.ReadAll(io.LimitReader(q.Body, 64<<20))
		if err != nil {
			http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
			return
		}
		r := Received{Method: q.Method, URI: q.RequestURI, Header: q.Header, Body: b,
			ContentLength: q.ContentLength, Chunked: len(q.TransferEncoding) > 0}
		g.mu.Lock()
		g.got = append(g.got, r)
		answer := g.ansr
		g.mu.Unlock()
		if answer != nil {
			answer(&r, w)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "upstream")
	})}
	go func() { _ = srv.Serve(ln) }()
	g.t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// Upstream sets how the upstream answers (by default 200, text/plain
// "upstream").
func (g *Gateway) Upstream(answer func(r *Received, w http.ResponseWriter)) {
	g.mu.Lock()
	g.ansr = answer
	g.mu.Unlock()
}

// Do sends s and reads the answer; a failure to exchange fails t. The
// request is written while the answer is read: a gateway may answer
// (413) and close before the client has sent everything.
func (g *Gateway) Do(t testing.TB, s Send) Answer {
	t.Helper()
	g.mu.Lock()
	before := len(g.got)
	g.mu.Unlock()

	conn, err := net.DialTimeout("tcp", g.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	method, uri := s.Method, s.URI
	if method == "" {
		method = "GET"
		if s.Body != "" {
			method = "POST"
		}
	}
	if uri == "" {
		uri = "/"
	}
	wrote := make(chan error, 1)
	go func() { wrote <- writeRequest(conn, method, uri, s) }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer to %s %s: %v (sending it: %v)", method, uri, err, <-wrote)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("reading the answer to %s %s: %v", method, uri, err)
	}
	conn.Close() // ends a write the gateway stopped reading
	<-wrote
	a := Answer{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
	g.mu.Lock()
	if len(g.got) > before {
		r := g.got[len(g.got)-1]
		a.Upstream = &r
	}
	g.mu.Unlock()
	return a
}

func writeRequest(conn net.Conn, method, uri string, s Send) error {
	w := bufio.NewWriter(conn)
	fmt.Fprintf(w, "%s %s HTTP/1.1\r\nHost: gw.test\r\n", method, uri)
	for i := 0; i+1 < len(s.HeaderLines); i += 2 {
		fmt.Fprintf(w, "%s: %s\r\n", s.HeaderLines[i], s.HeaderLines[i+1])
	}
	switch {
	case s.Chunked:
		io.WriteString(w, "Transfer-Encoding: chunked\r\n\r\n")
		for rest := s.Body; len(rest) > 0; {
			n := min(len(rest), 64<<10)
			fmt.Fprintf(w, "%x\r\n%s\r\n", n, rest[:n])
			rest = rest[n:]
		}
		io.WriteString(w, "0\r\n\r\n")
	case s.Body != "" || method == "POST" || method == "PUT" || method == "PATCH":
		fmt.Fprintf(w, "Content-Length: %d\r\n\r\n%s", len(s.Body), s.Body)
	default:
		io.WriteString(w, "\r\n")
	}
	return w.Flush()
}
