package e2e

import (
	"bytes"
	"context"
	"testing"
	"time"

	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

// TestGRPCUnaryBodyGoesWhole: a unary call's message, which comes with
// its END_STREAM, goes to the upstream whole, sized (content-length) and
// in the HEADERS' write, not streamed by a goroutine of its own. A call
// whose END_STREAM had not yet arrived when the gateway routed it still
// streams, as it must (a client-streaming call's body may never end
// before the answer), so a few of the calls may go unsized; the old
// gateway sized none.
func TestGRPCUnaryBodyGoesWhole(t *testing.T) {
	up := startRawGRPC(t, -1, false)
	w := startWeir(t, grpcCfg(up.addr, ""))
	c := dialGRPC(t, w.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req := &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: bytes.Repeat([]byte("u"), 300)}}
	const calls = 20
	for i := 0; i < calls; i++ {
		if _, err := c.UnaryCall(ctx, req); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if a := up.answered.Load(); a != calls {
		t.Fatalf("upstream answered %d calls, want %d", a, calls)
	}
	n := up.sized.Load()
	t.Logf("%d of %d calls sized", n, calls)
	if n < calls*3/4 {
		t.Fatalf("%d of %d unary calls reached the upstream whole with a content-length, want at least %d", n, calls, calls*3/4)
	}
}
