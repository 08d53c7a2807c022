package fusedio

import (
	"bytes"
	"io"
	"testing"
)

// TestHeldLargeAnswerAllocatesNothing: a keep-alive answer of 10 KB (the
// users' average) is held until the next read, round after round, without
// a new buffer each time: held buffers past the connection's own small
// one are borrowed from a pool and go back once sent.
func TestHeldLargeAnswerAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race (sync.Pool drops items); `make unit` runs this test")
	}
	c, srv := pair(t, 0)
	answer := bytes.Repeat([]byte("a"), 10<<10)
	req := []byte("GET / HTTP/1.1\r\n\r\n")
	// The peer reads each answer whole, then sends the next request.
	go func() {
		buf := make([]byte, len(answer))
		for {
			if _, err := io.ReadFull(srv, buf); err != nil {
				return
			}
			if _, err := srv.Write(req); err != nil {
				return
			}
		}
	}()
	in := make([]byte, 64)
	round := func() {
		c.Hold()
		if _, err := c.Write(answer); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, in[:len(req)]); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 20; i++ {
		round()
	}
	if n := testing.AllocsPerRun(200, round); n != 0 {
		t.Fatalf("%.1f allocations per held 10 KB answer, want 0", n)
	}
	if c.holding() || cap(c.held) > smallHeld {
		t.Fatalf("after the answer went out the connection still keeps a %d-byte buffer", cap(c.held))
	}
}
