package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

// TestGRPCStreamsKeepTheirBodies: bidirectional calls whose request
// messages keep coming after the answer started, with other calls (and
// calls cut short) running at the same time, each get back exactly their
// own messages, and Weir stays up. The body an HTTP/2 upstream reads
// outlives the gateway's handler; kept in pooled per-request state it was
// reset or taken over by the next request: the process crashed (nil
// dereference in the body reader) or a stream read another's state.
func TestGRPCStreamsKeepTheirBodies(t *testing.T) {
	up, _ := startGRPC(t)
	w := startWeir(t, grpcCfg(up, ""))
	c := dialGRPC(t, w.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 20 {
				s, err := c.FullDuplexCall(ctx)
				if err != nil {
					errs <- err
					return
				}
				for k := range 10 {
					want := fmt.Sprintf("stream %d round %d message %d", i, round, k)
					if err := s.Send(&testgrpc.StreamingOutputCallRequest{Payload: &testgrpc.Payload{Body: []byte(want)}}); err != nil {
						errs <- fmt.Errorf("send: %w", err)
						return
					}
					got, err := s.Recv()
					if err != nil {
						errs <- fmt.Errorf("recv %q: %w", want, err)
						return
					}
					if string(got.GetPayload().GetBody()) != want {
						errs <- fmt.Errorf("sent %q, got back %q", want, got.GetPayload().GetBody())
						return
					}
				}
				_ = s.CloseSend()
				if _, err := s.Recv(); err == nil {
					errs <- fmt.Errorf("stream %d: a message after CloseSend", i)
					return
				}
			}
		}()
	}
	// Calls cut short while their bodies are being sent.
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				cctx, ccancel := context.WithTimeout(ctx, time.Duration(100+time.Now().UnixNano()%900)*time.Microsecond)
				if s, err := c.StreamingInputCall(cctx); err == nil {
					for range 5 {
						if s.Send(&testgrpc.StreamingInputCallRequest{Payload: &testgrpc.Payload{Body: make([]byte, 1024)}}) != nil {
							break
						}
					}
				}
				ccancel()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.Fatalf("weir logs:\n%s", w.Logs())
	}
	if _, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("still up")}}); err != nil {
		t.Fatalf("after the calls: %v\n%s", err, w.Logs())
	}
}
