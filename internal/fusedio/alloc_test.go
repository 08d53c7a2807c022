package fusedio

import (
	"bytes"
	"io"
	"testing"
	"time"
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
	go askAfterEachAnswer(srv, len(answer), req)
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

// TestIdleConnKeepsNoLargeBuffer: while a keep-alive connection waits for
// its next request (up to its idle timeout), the buffer its held 10 KB
// answer was sent from is back in the pool.
func TestIdleConnKeepsNoLargeBuffer(t *testing.T) {
	c, srv := pair(t, 0)
	answer := bytes.Repeat([]byte("a"), 10<<10)
	c.Hold()
	if _, err := c.Write(answer); err != nil {
		t.Fatal(err)
	}
	readDone := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 64)) // sends the answer, then waits
		readDone <- err
	}()
	if _, err := io.ReadFull(srv, make([]byte, len(answer))); err != nil {
		t.Fatal(err)
	}
	// The answer arrived; the reader now waits for a request that has
	// not come. Poll (bounded) for the buffer's return.
	var big bool
	for i := 0; i < 200; i++ {
		c.mu.Lock()
		big = c.big != nil
		c.mu.Unlock()
		if !big {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if big {
		t.Fatal("the idle connection still holds the 16 KiB buffer its answer was sent from")
	}
	if _, err := srv.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := <-readDone; err != nil {
		t.Fatal(err)
	}
}

// TestTinyReadReadsAhead: the one-byte read fasthttp's server makes for a
// request's first byte (ReduceMemoryUsage) reads the whole block ahead,
// so the rest costs no second system call, and the bare-LF check sees the
// block, not the byte.
func TestTinyReadReadsAhead(t *testing.T) {
	for _, tc := range []struct {
		name, req string
		bareLF    bool
	}{
		{"CRLF", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"bare LF", "GET / HTTP/1.1\nHost: x\n\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, srv := pair(t, 0)
			c.ExpectRequest()
			if _, err := srv.Write([]byte(tc.req)); err != nil {
				t.Fatal(err)
			}
			one := make([]byte, 1)
			if n, err := c.Read(one); n != 1 || err != nil || one[0] != 'G' {
				t.Fatalf("first byte: %d %v %q", n, err, one[:n])
			}
			if string(c.pend) != tc.req[1:] {
				t.Fatalf("read ahead %q, want the rest of the block %q", c.pend, tc.req[1:])
			}
			rest := make([]byte, 256)
			n, err := c.Read(rest)
			if err != nil || string(rest[:n]) != tc.req[1:] {
				t.Fatalf("rest: %q %v", rest[:n], err)
			}
			if c.pend != nil || c.pendBuf != nil {
				t.Fatal("the read-ahead buffer should be back in the pool once read")
			}
			_ = srv.SetWriteDeadline(time.Now().Add(time.Second))
			go func() { _, _ = srv.Write([]byte("more")) }()
			_, err = c.Read(rest)
			if tc.bareLF != (err == ErrBareLF) {
				t.Fatalf("next read: %v, want ErrBareLF %v", err, tc.bareLF)
			}
		})
	}
}

// TestTinyReadWaitsBeforeBorrowing: a tiny read that has to wait for its
// request (a keep-alive connection between requests, a fresh one before
// its first) borrows the read-ahead buffer only when the bytes are there,
// and still reads the whole block ahead; an end of stream during the wait
// leaves nothing borrowed.
func TestTinyReadWaitsBeforeBorrowing(t *testing.T) {
	c, srv := pair(t, 0)
	c.ExpectRequest()
	req := "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	got := make(chan error, 1)
	one := make([]byte, 1)
	go func() {
		n, err := c.Read(one)
		if err == nil && (n != 1 || one[0] != 'G') {
			err = io.ErrUnexpectedEOF
		}
		got <- err
	}()
	time.Sleep(20 * time.Millisecond) // the read waits
	if _, err := srv.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if string(c.pend) != req[1:] || c.aheadBuf != nil || c.ahead {
		t.Fatalf("read ahead %q (borrowed %v, ahead %v), want the rest of the block %q", c.pend, c.aheadBuf != nil, c.ahead, req[1:])
	}
	rest := make([]byte, 256)
	if n, err := c.Read(rest); err != nil || string(rest[:n]) != req[1:] {
		t.Fatalf("rest: %q %v", rest[:n], err)
	}
	go func() {
		_, err := c.Read(one)
		got <- err
	}()
	time.Sleep(20 * time.Millisecond)
	srv.Close()
	if err := <-got; err != io.EOF {
		t.Fatalf("read at the peer's close: %v, want EOF", err)
	}
	if c.pend != nil || c.pendBuf != nil || c.aheadBuf != nil {
		t.Fatal("a read that got no bytes keeps a buffer")
	}
}

// TestTinyReadAllocatesNothing: the keep-alive exchange the way fasthttp's
// server reads (the first byte alone, then the rest) allocates nothing,
// waiting or not.
func TestTinyReadAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race (sync.Pool drops items); `make unit` runs this test")
	}
	c, srv := pair(t, 0)
	answer := bytes.Repeat([]byte("a"), 64)
	req := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	go askAfterEachAnswer(srv, len(answer), req)
	one, rest := make([]byte, 1), make([]byte, 256)
	round := func() {
		c.Hold()
		if _, err := c.Write(answer); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(one); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, rest[:len(req)-1]); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 20; i++ {
		round()
	}
	if n := testing.AllocsPerRun(200, round); n != 0 {
		t.Fatalf("%.1f allocations per exchange, want 0", n)
	}
}

// askAfterEachAnswer is the client side of a keep-alive exchange: it
// reads each answer (n bytes) whole, then sends the next request, until
// the connection fails.
func askAfterEachAnswer(srv io.ReadWriter, n int, req []byte) {
	buf := make([]byte, n)
	for {
		if _, err := io.ReadFull(srv, buf); err != nil {
			return
		}
		if _, err := srv.Write(req); err != nil {
			return
		}
	}
}
