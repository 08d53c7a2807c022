package fusedio

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// TestLentBodyGivenBackByTheNextRead: a buffer lent for an answer stays
// with the connection until its next Read (the answer is written before
// it), a second lend first gives the earlier one back (pipelined
// requests: no Read between them), and a context whose connection is
// not a *Conn takes none.
func TestLentBodyGivenBackByTheNextRead(t *testing.T) {
	c, srv := pair(t, 0)
	var rc fasthttp.RequestCtx
	rc.Init2(c, nil, false)
	if !CanLend(&rc) {
		t.Fatal("a *Conn should take lent buffers")
	}
	a, b := BorrowBody(), BorrowBody()
	*a = append(*a, "answer one"...)
	LendAnswer(&rc, a)
	if c.lent != a {
		t.Fatal("the buffer is not lent to the connection")
	}
	LendAnswer(&rc, b)
	if c.lent != b || len(*a) != 0 {
		t.Fatalf("a second lend: lent %p (want %p), the first holds %d bytes (want given back, emptied)", c.lent, b, len(*a))
	}
	if _, err := srv.Write([]byte("next request")); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 64)
	if _, err := c.Read(p); err != nil {
		t.Fatal(err)
	}
	if c.lent != nil {
		t.Fatal("the next Read did not give the lent buffer back")
	}
	var other fasthttp.RequestCtx
	other.Init2(srv, nil, false)
	if CanLend(&other) {
		t.Fatal("a plain net.Conn cannot give a buffer back")
	}
	LendAnswer(&other, BorrowBody()) // left to the collector; must not panic
}
