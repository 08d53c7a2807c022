//lint:file-ignore SA1019 x/net/http2 is deprecated in favour of net/http, which cannot serve one connection handed over by fasthttp (ServeConn) nor take Upgrade: h2c (RATIONALE.md)

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// grpcUpstream is gRPC's interop TestService, served by grpc-go on a
// loopback port: it echoes payloads and metadata, and sends headers and
// trailers (one binary) back.
type grpcUpstream struct {
	testgrpc.UnimplementedTestServiceServer
	cancelled atomic.Int64 // calls whose context ended before they did
	sleeping  atomic.Int64 // "sleep" calls under way
	accepted  atomic.Int64 // connections accepted
}

var binTrailer = []byte{0, 1, 2, 0xff, '\r', '\n'}

func (g *grpcUpstream) meta(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	out := metadata.Pairs("x-echo-token", strings.Join(md.Get("x-token"), ","))
	for _, b := range md.Get("x-raw-bin") {
		out.Append("x-echo-raw-bin", b)
	}
	_ = grpc.SetHeader(ctx, out)
	_ = grpc.SetTrailer(ctx, metadata.Pairs("x-trailer-bin", string(binTrailer), "x-trailer", "done"))
}

func (g *grpcUpstream) UnaryCall(ctx context.Context, in *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	g.meta(ctx)
	switch string(in.GetPayload().GetBody()) {
	case "not-found":
		return nil, status.Error(codes.NotFound, "no such thing: ü")
	case "sleep":
		g.sleeping.Add(1)
		defer g.sleeping.Add(-1)
		select {
		case <-ctx.Done():
			g.cancelled.Add(1)
			return nil, ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
	return &testgrpc.SimpleResponse{Payload: in.GetPayload()}, nil
}

func (g *grpcUpstream) StreamingOutputCall(in *testgrpc.StreamingOutputCallRequest, s testgrpc.TestService_StreamingOutputCallServer) error {
	g.meta(s.Context())
	for _, p := range in.GetResponseParameters() {
		if err := s.Send(&testgrpc.StreamingOutputCallResponse{Payload: &testgrpc.Payload{Body: make([]byte, p.GetSize())}}); err != nil {
			return err
		}
	}
	return nil
}

func (g *grpcUpstream) StreamingInputCall(s testgrpc.TestService_StreamingInputCallServer) error {
	g.meta(s.Context())
	total := 0
	for {
		in, err := s.Recv()
		if err == io.EOF {
			return s.SendAndClose(&testgrpc.StreamingInputCallResponse{AggregatedPayloadSize: int32(total)})
		}
		if err != nil {
			return err
		}
		total += len(in.GetPayload().GetBody())
	}
}

func (g *grpcUpstream) FullDuplexCall(s testgrpc.TestService_FullDuplexCallServer) error {
	g.meta(s.Context())
	for {
		in, err := s.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := s.Send(&testgrpc.StreamingOutputCallResponse{Payload: in.GetPayload()}); err != nil {
			return err
		}
	}
}

// startGRPC serves the TestService (cleartext h2c) on a loopback port.
func startGRPC(t *testing.T, opts ...grpc.ServerOption) (string, *grpcUpstream) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &grpcUpstream{}
	s := grpc.NewServer(opts...)
	testgrpc.RegisterTestServiceServer(s, g)
	go func() { _ = s.Serve(countingListener{ln, &g.accepted}) }()
	t.Cleanup(s.Stop)
	return ln.Addr().String(), g
}

func grpcCfg(up, plugins string) string {
	return `
listen:
  - {address: "{{LISTEN}}", http2: true}
admin: {listen: "{{ADMIN}}"}
server: {read_timeout: 2s}
services:
  - name: grpc
    targets: [{url: "grpc://` + up + `"}]
routes:
  - {name: rpc, paths: ["/grpc.testing.TestService/"], service: grpc` + plugins + `}
consumers: [{name: alice, credentials: {key_auth: [{key: "alice-key"}]}}]
`
}

func dialGRPC(t *testing.T, addr string) testgrpc.TestServiceClient {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return testgrpc.NewTestServiceClient(cc)
}

func checkMeta(t *testing.T, kind string, hdr, trl metadata.MD) {
	t.Helper()
	if got := hdr.Get("x-echo-token"); len(got) != 1 || got[0] != "tok" {
		t.Errorf("%s: header x-echo-token = %q", kind, got)
	}
	if got := hdr.Get("x-echo-raw-bin"); len(got) != 1 || got[0] != "\x00\xfe\x01" {
		t.Errorf("%s: binary metadata did not round-trip: %q", kind, got)
	}
	if got := trl.Get("x-trailer-bin"); len(got) != 1 || got[0] != string(binTrailer) {
		t.Errorf("%s: binary trailer = %q", kind, got)
	}
	if got := trl.Get("x-trailer"); len(got) != 1 || got[0] != "done" {
		t.Errorf("%s: trailer = %q", kind, got)
	}
}

// TestGRPCThroughWeir: grpc-go's client calls grpc-go's server through
// Weir (h2c on both sides) for all four kinds of call, with metadata
// (binary too), headers and trailers intact, and the upstream's own
// status passed on.
func TestGRPCThroughWeir(t *testing.T) {
	up, _ := startGRPC(t)
	w := startWeir(t, grpcCfg(up, ""))
	c := dialGRPC(t, w.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "x-token", "tok", "x-raw-bin", "\x00\xfe\x01")

	var hdr, trl metadata.MD
	r, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("hello")}}, grpc.Header(&hdr), grpc.Trailer(&trl))
	if err != nil || string(r.GetPayload().GetBody()) != "hello" {
		t.Fatalf("unary: %v %v", r, err)
	}
	checkMeta(t, "unary", hdr, trl)

	_, err = c.UnaryCall(ctx, &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("not-found")}})
	if st, _ := status.FromError(err); st.Code() != codes.NotFound || st.Message() != "no such thing: ü" {
		t.Errorf("upstream status: want NotFound %q, got %v", "no such thing: ü", err)
	}

	so, err := c.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{ResponseParameters: []*testgrpc.ResponseParameters{{Size: 10}, {Size: 70000}, {Size: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for {
		m, err := so.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("server streaming: %v", err)
		}
		sizes = append(sizes, len(m.GetPayload().GetBody()))
	}
	if len(sizes) != 3 || sizes[0] != 10 || sizes[1] != 70000 || sizes[2] != 3 {
		t.Errorf("server streaming sizes %v", sizes)
	}
	h, _ := so.Header()
	checkMeta(t, "server streaming", h, so.Trailer())

	ci, err := c.StreamingInputCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 1000, 100000} {
		if err := ci.Send(&testgrpc.StreamingInputCallRequest{Payload: &testgrpc.Payload{Body: make([]byte, n)}}); err != nil {
			t.Fatal(err)
		}
	}
	cr, err := ci.CloseAndRecv()
	if err != nil || cr.GetAggregatedPayloadSize() != 101001 {
		t.Fatalf("client streaming: %v %v", cr, err)
	}
	h, _ = ci.Header()
	checkMeta(t, "client streaming", h, ci.Trailer())

	// Bidirectional, in lock step: each answer must come back before the
	// next message is sent, so nothing on the way may buffer the call.
	bd, err := c.FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range []string{"one", "two", "three"} {
		if err := bd.Send(&testgrpc.StreamingOutputCallRequest{Payload: &testgrpc.Payload{Body: []byte(msg)}}); err != nil {
			t.Fatal(err)
		}
		m, err := bd.Recv()
		if err != nil || string(m.GetPayload().GetBody()) != msg {
			t.Fatalf("bidi %q: %v %v", msg, m, err)
		}
	}
	_ = bd.CloseSend()
	if _, err := bd.Recv(); err != io.EOF {
		t.Fatalf("bidi end: %v", err)
	}
	h, _ = bd.Header()
	checkMeta(t, "bidi", h, bd.Trailer())
}

// TestGRPCGatewayStatuses: the answers Weir makes itself to gRPC calls
// are gRPC statuses: key_auth's 401 is UNAUTHENTICATED, rate_limit's 429
// RESOURCE_EXHAUSTED, no route UNIMPLEMENTED, a dead target UNAVAILABLE.
func TestGRPCGatewayStatuses(t *testing.T) {
	up, _ := startGRPC(t)
	w := startWeir(t, grpcCfg(up, `, plugins: [{name: key_auth, config: {header: x-api-key}}, {name: rate_limit, config: {rate: 2, per: 1m, burst: 2, key: consumer}}]`))
	c := dialGRPC(t, w.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("x")}}
	_, err := c.UnaryCall(ctx, req)
	if st, _ := status.FromError(err); st.Code() != codes.Unauthenticated {
		t.Fatalf("no key: want Unauthenticated, got %v", err)
	}
	keyed := metadata.AppendToOutgoingContext(ctx, "x-api-key", "alice-key")
	for i := 0; i < 2; i++ {
		if _, err := c.UnaryCall(keyed, req); err != nil {
			t.Fatalf("call %d with a key: %v", i, err)
		}
	}
	var trl metadata.MD
	_, err = c.UnaryCall(keyed, req, grpc.Trailer(&trl))
	if st, _ := status.FromError(err); st.Code() != codes.ResourceExhausted {
		t.Fatalf("over the limit: want ResourceExhausted, got %v", err)
	}
	// Trailers-only: the answer's own fields travel with the status.
	if len(trl.Get("retry-after")) == 0 {
		t.Errorf("a refused call keeps Retry-After: %v", trl)
	}
	// Also the streaming kinds.
	bd, err := c.FullDuplexCall(keyed)
	if err == nil {
		_, err = bd.Recv()
	}
	if st, _ := status.FromError(err); st.Code() != codes.ResourceExhausted {
		t.Fatalf("bidi over the limit: want ResourceExhausted, got %v", err)
	}

	cc, err := grpc.NewClient(w.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	err = cc.Invoke(ctx, "/other.Service/Method", req, new(testgrpc.SimpleResponse))
	if st, _ := status.FromError(err); st.Code() != codes.Unimplemented {
		t.Fatalf("no route: want Unimplemented, got %v", err)
	}

	dead := startWeir(t, grpcCfg(freeAddr(t), ""))
	_, err = dialGRPC(t, dead.Addr).UnaryCall(ctx, req)
	if st, _ := status.FromError(err); st.Code() != codes.Unavailable {
		t.Fatalf("dead target: want Unavailable, got %v", err)
	}
}

// grpcFrame is one length-prefixed gRPC message.
func grpcFrame(t *testing.T, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 5, 5+len(b))
	binary.BigEndian.PutUint32(out[1:], uint32(len(b)))
	return append(out, b...)
}

// TestGRPCTimeoutBoundsUpstream: a call's grpc-timeout bounds the
// upstream call. The client here sets the field and waits without a
// deadline of its own: Weir answers DEADLINE_EXCEEDED at the timeout, and
// the upstream sees its call cancelled then.
func TestGRPCTimeoutBoundsUpstream(t *testing.T) {
	up, g := startGRPC(t)
	w := startWeir(t, grpcCfg(up, ""))
	hc := &http.Client{Transport: &http2.Transport{AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, n, a string, _ *tls.Config) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, n, a)
		}}}
	body := grpcFrame(t, &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("sleep")}})
	req, _ := http.NewRequest("POST", "http://"+w.Addr+"/grpc.testing.TestService/UnaryCall", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	req.Header.Set("Grpc-Timeout", "300m")
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	code := resp.Header.Get("Grpc-Status") + resp.Trailer.Get("Grpc-Status")
	if code != "4" {
		t.Fatalf("want grpc-status 4 (DEADLINE_EXCEEDED), got %q (header %v trailer %v)", code, resp.Header, resp.Trailer)
	}
	if took < 250*time.Millisecond || took > 3*time.Second {
		t.Errorf("answered after %v, want about 300ms", took)
	}
	if !waitUntil(3*time.Second, 10*time.Millisecond, func() bool { return g.cancelled.Load() == 1 }) {
		t.Fatal("the upstream call was not cancelled at the timeout")
	}
}

// TestGRPCUpstreamNotHTTP2: a grpc:// target that speaks HTTP/1.1 is a
// 502 (UNAVAILABLE to a gRPC client), and the log says why.
func TestGRPCUpstreamNotHTTP2(t *testing.T) {
	up := startEcho(t, "h1")
	w := startWeir(t, grpcCfg(up, ""))
	_, err := dialGRPC(t, w.Addr).UnaryCall(context.Background(), &testgrpc.SimpleRequest{})
	if st, _ := status.FromError(err); st.Code() != codes.Unavailable {
		t.Fatalf("want Unavailable, got %v", err)
	}
	out := curlH2(t, "--http2-prior-knowledge", "http://"+w.Addr+"/grpc.testing.TestService/UnaryCall")
	if !strings.HasSuffix(out, " proto=2 status=502") {
		t.Fatalf("a plain HTTP/2 client: want 502, got %q", out)
	}
	waitLog(t, w, "upstream does not speak HTTP/2", "grpc://"+up)
}

// TestGRPCOverTLSUpstream: a grpcs:// target is HTTP/2 over TLS, verified
// against services[].tls.ca.
func TestGRPCOverTLSUpstream(t *testing.T) {
	ca := newTestCA(t, "grpc CA")
	certPEM, keyPEM, _ := ca.issue(t, leafOpts{names: []string{"127.0.0.1"}})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{pair}})))
	testgrpc.RegisterTestServiceServer(s, &grpcUpstream{})
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	caFile := t.TempDir() + "/ca.pem"
	writeFile(t, caFile, string(ca.pem))
	cfg := strings.Replace(grpcCfg(ln.Addr().String(), ""), `    targets: [{url: "grpc://`, `    tls: {ca: "`+caFile+`"}
    targets: [{url: "grpcs://`, 1)
	w := startWeir(t, cfg)
	r, err := dialGRPC(t, w.Addr).UnaryCall(context.Background(), &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("tls")}})
	if err != nil || string(r.GetPayload().GetBody()) != "tls" {
		t.Fatalf("grpcs:// unary: %v %v", r, err)
	}
}

// TestHTTP2DrainGoaway: SIGTERM sends GOAWAY on HTTP/2 connections; a
// stream in flight still gets its answer.
func TestHTTP2DrainGoaway(t *testing.T) {
	up, _ := slowUpstream(t, 500*time.Millisecond)
	w := startWeir(t, attackCfg(up))
	h := dialH2(t, w.Addr, 0)
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h2Block(w.Addr, "/slow"), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the stream reaches the upstream
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := h.outcome(0, 5*time.Second); got != "goaway NO_ERROR" {
		t.Fatalf("on SIGTERM: got %q, want GOAWAY NO_ERROR", got)
	}
	if got := h.outcome(1, 5*time.Second); got != "status 200" {
		t.Fatalf("the stream in flight: got %q, want status 200", got)
	}
}

// TestGRPCClientCancelReachesUpstream: a client that cancels its call
// (RST_STREAM) cancels the upstream call too, as it would without the
// gateway, instead of leaving it running until the service's timeout.
func TestGRPCClientCancelReachesUpstream(t *testing.T) {
	up, g := startGRPC(t)
	w := startWeir(t, grpcCfg(up, ""))
	c := dialGRPC(t, w.Addr)
	ctx, cancel := context.WithCancel(context.Background()) // no deadline: no grpc-timeout
	done := make(chan error, 1)
	go func() {
		_, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("sleep")}})
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	cancel()
	if err := <-done; status.Code(err) != codes.Canceled {
		t.Fatalf("want Canceled, got %v", err)
	}
	if !waitUntil(2*time.Second, 10*time.Millisecond, func() bool { return g.cancelled.Load() == 1 }) {
		t.Fatal("the upstream call kept running after the client cancelled")
	}
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// TestGRPCUpstreamConnCap: services[].max_conns_per_target caps the
// HTTP/2 connections to a target, each carrying the streams the upstream
// allows (SETTINGS_MAX_CONCURRENT_STREAMS, 2 here): four calls at once take
// two connections, a fifth waits max_conn_wait for a stream and gets
// UNAVAILABLE (503), and once streams end calls go on the same two.
func TestGRPCUpstreamConnCap(t *testing.T) {
	up, g := startGRPC(t, grpc.MaxConcurrentStreams(2))
	cfg := strings.Replace(grpcCfg(up, ""), "  - name: grpc\n", "  - name: grpc\n    max_conns_per_target: 2\n    max_conn_wait: 300ms\n", 1)
	w := startWeir(t, cfg)
	c := dialGRPC(t, w.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	quick := &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("x")}}
	if _, err := c.UnaryCall(ctx, quick); err != nil { // the first connection learns the limit
		t.Fatal(err)
	}
	sleepCtx, stop := context.WithCancel(ctx)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			_, err := c.UnaryCall(sleepCtx, &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("sleep")}})
			errs <- err
		}()
	}
	if !waitUntil(10*time.Second, 10*time.Millisecond, func() bool { return g.sleeping.Load() == 4 }) {
		t.Fatalf("%d of 4 calls reached the upstream", g.sleeping.Load())
	}
	if n := g.accepted.Load(); n != 2 {
		t.Fatalf("4 calls, 2 streams per connection: %d upstream connections, want 2", n)
	}
	start := time.Now()
	_, err := c.UnaryCall(ctx, quick)
	if st, _ := status.FromError(err); st.Code() != codes.Unavailable {
		t.Fatalf("a fifth call past both caps: want Unavailable, got %v", err)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 5*time.Second {
		t.Errorf("the fifth call waited %v, want about max_conn_wait (300ms)", d)
	}
	stop()
	for range 4 {
		<-errs
	}
	if !waitUntil(10*time.Second, 10*time.Millisecond, func() bool { return g.sleeping.Load() == 0 }) {
		t.Fatal("the cancelled calls did not end upstream")
	}
	for i := range 6 {
		if _, err := c.UnaryCall(ctx, quick); err != nil {
			t.Fatalf("call %d after the streams ended: %v", i, err)
		}
	}
	if n := g.accepted.Load(); n != 2 {
		t.Errorf("%d upstream connections in all, want 2", n)
	}
}
