package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

// rawGRPCUpstream is an h2c upstream written on x/net's Framer, so a test
// can make it misbehave: on connection number goAwayOn (0-based) it
// answers the first request with GOAWAY instead of an answer (last
// stream 0: nothing processed), or, with drain, with GOAWAY naming that
// stream as the last it takes, then the answer. Requests get an empty
// gRPC message and grpc-status 0. It counts connections, answered
// calls, and calls whose HEADERS said the body's length (sized).
type rawGRPCUpstream struct {
	addr  string
	drain bool
	// trailerPseudo: the first call's trailers carry this pseudo-field
	// (name, value) before grpc-status, which RFC 9113 §8.1 forbids.
	trailerPseudo []string
	conns         atomic.Int32
	answered      atomic.Int32
	sized         atomic.Int32
}

func startRawGRPC(t *testing.T, goAwayOn int32, drain bool, trailerPseudo ...string) *rawGRPCUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	u := &rawGRPCUpstream{addr: ln.Addr().String(), drain: drain, trailerPseudo: trailerPseudo}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := u.conns.Add(1) - 1
			go u.serve(c, n == goAwayOn)
		}
	}()
	return u
}

func (u *rawGRPCUpstream) serve(c net.Conn, goAway bool) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(c, preface); err != nil || string(preface) != http2.ClientPreface {
		return
	}
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if fr.WriteSettings() != nil {
		return
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	block := func(fields ...string) []byte {
		hb.Reset()
		for i := 0; i < len(fields); i += 2 {
			_ = enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
		}
		return append([]byte(nil), hb.Bytes()...)
	}
	trailer := func(first bool) []string {
		if first {
			return append(append([]string(nil), u.trailerPseudo...), "grpc-status", "0")
		}
		return []string{"grpc-status", "0"}
	}
	refused := false
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		var id uint32
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
			continue
		case *http2.MetaHeadersFrame:
			for _, hf := range f.RegularFields() {
				if hf.Name == "content-length" {
					u.sized.Add(1)
				}
			}
			if goAway && u.drain {
				// This stream is the last the connection takes.
				_ = fr.WriteGoAway(f.StreamID, http2.ErrCodeNo, nil)
				goAway = false
			} else if goAway {
				// Nothing on this connection is processed.
				_ = fr.WriteGoAway(0, http2.ErrCodeNo, nil)
				refused, goAway = true, false
			}
			if refused || !f.StreamEnded() {
				continue
			}
			id = f.StreamID
		case *http2.DataFrame:
			if refused || !f.StreamEnded() {
				continue
			}
			id = f.StreamID
		default:
			continue
		}
		if id == 0 {
			continue
		}
		// Counted before the answer goes: a client that has it must
		// find it counted.
		first := u.answered.Add(1) == 1
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true,
			BlockFragment: block(":status", "200", "content-type", "application/grpc")})
		_ = fr.WriteData(id, false, []byte{0, 0, 0, 0, 0})
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, EndStream: true,
			BlockFragment: block(trailer(first)...)})
	}
}

// TestGRPCUpstreamGoAwayRetried: an upstream that sends GOAWAY saying it
// processed none of the connection's streams (a graceful restart) did
// not see the call: the gateway sends it again, body and all, on a new
// connection, and the client gets the answer instead of UNAVAILABLE.
func TestGRPCUpstreamGoAwayRetried(t *testing.T) {
	up := startRawGRPC(t, 0, false)
	w := startWeir(t, grpcCfg(up.addr, ""))
	c := dialGRPC(t, w.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: bytes.Repeat([]byte("g"), 300)}}
	if _, err := c.UnaryCall(ctx, req); err != nil {
		t.Fatalf("call through a GOAWAY: %v", err)
	}
	if n := up.conns.Load(); n != 2 {
		t.Fatalf("upstream connections: %d, want 2 (the refused one and the retry's)", n)
	}
	// Later calls go on the new connection.
	for i := 0; i < 3; i++ {
		if _, err := c.UnaryCall(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	if n, a := up.conns.Load(), up.answered.Load(); n != 2 || a != 4 {
		t.Fatalf("connections %d (want 2), answered %d (want 4)", n, a)
	}
}

// TestGRPCUpstreamLargeMessagesBothWays: calls whose messages are far
// larger than HTTP/2's initial 64 KiB window and the gateway's 1 MiB
// stream window, several at once on one upstream connection, arrive
// whole both ways (flow control in both directions on the upstream leg).
func TestGRPCUpstreamLargeMessagesBothWays(t *testing.T) {
	up, g := startGRPC(t)
	w := startWeir(t, grpcCfg(up, ""))
	c := dialGRPC(t, w.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func(i int) {
			body := make([]byte, 3<<20)
			for j := range body {
				body[j] = byte(j*7 + i)
			}
			resp, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: body}})
			if err == nil && !bytes.Equal(resp.GetPayload().GetBody(), body) {
				err = fmt.Errorf("call %d: %d bytes back, not the %d sent", i, len(resp.GetPayload().GetBody()), len(body))
			}
			errs <- err
		}(i)
	}
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := g.accepted.Load(); n != 1 {
		t.Fatalf("upstream connections: %d, want 1 (the calls multiplexed)", n)
	}
}

// TestGRPCUpstreamGoAwayDrains: an upstream's GOAWAY that names the call
// in flight as its last lets that call finish on the old connection,
// and the calls after it go to a new one.
func TestGRPCUpstreamGoAwayDrains(t *testing.T) {
	up := startRawGRPC(t, 0, true)
	w := startWeir(t, grpcCfg(up.addr, ""))
	c := dialGRPC(t, w.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("d")}}
	for i := 0; i < 3; i++ {
		if _, err := c.UnaryCall(ctx, req); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if n, a := up.conns.Load(), up.answered.Load(); n != 2 || a != 3 {
		t.Fatalf("connections %d (want 2: the drained one, then a new one), answered %d (want 3)", n, a)
	}
}

// TestGRPCUpstreamTrailersWithPseudoFieldRefused: trailers carrying a
// pseudo-field (RFC 9113 §8.1: malformed) are a stream error on the
// upstream leg, so the call fails instead of passing as OK with the
// field dropped or turned into metadata; a well-formed call on the same
// upstream connection still succeeds. Before, x/net's frame reader set
// the pseudo-fields apart and the call passed as OK.
func TestGRPCUpstreamTrailersWithPseudoFieldRefused(t *testing.T) {
	for _, pseudo := range [][]string{{":path", "/x"}, {":status", "200"}} {
		up := startRawGRPC(t, -1, false, pseudo...)
		w := startWeir(t, grpcCfg(up.addr, ""))
		c := dialGRPC(t, w.Addr)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("p")}})
		cancel()
		if err == nil {
			t.Fatalf("trailers with %s: the call passed as OK", pseudo[0])
		}
		t.Logf("trailers with %s: %v", pseudo[0], err)
		ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
		_, err = c.UnaryCall(ctx, &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("p")}})
		cancel()
		if err != nil {
			t.Fatalf("a well-formed call after the malformed one: %v", err)
		}
	}
}
