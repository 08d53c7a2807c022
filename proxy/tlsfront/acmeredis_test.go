package tlsfront

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/weirgw/weir/internal/testredis"
)

// TestRedisStorage: the storage behaves as certmagic's FileStorage does
// for keys, "directories" and locks.
func TestRedisStorage(t *testing.T) {
	rs := testredis.Start(t)
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{rs.Addr}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	s := NewRedisStorage(c)
	if _, err := s.Load(ctx, "certificates/a/a.crt"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load of a missing key: %v; want fs.ErrNotExist", err)
	}
	for _, k := range []string{"certificates/ca/a.test/a.test.crt", "certificates/ca/a.test/a.test.key", "certificates/ca/b.test/b.test.crt", "users/ops/key"} {
		if err := s.Store(ctx, k, []byte("value of "+k)); err != nil {
			t.Fatal(err)
		}
	}
	if b, err := s.Load(ctx, "users/ops/key"); err != nil || string(b) != "value of users/ops/key" {
		t.Fatalf("Load = %q, %v", b, err)
	}
	got, err := s.List(ctx, "certificates/ca", false)
	slices.Sort(got)
	if err != nil || !slices.Equal(got, []string{"certificates/ca/a.test", "certificates/ca/b.test"}) {
		t.Fatalf("List non-recursive = %q, %v", got, err)
	}
	if got, _ := s.List(ctx, "certificates", true); len(got) != 3 {
		t.Fatalf("List recursive = %q; want the 3 values", got)
	}
	if ki, err := s.Stat(ctx, "certificates/ca/a.test"); err != nil || ki.IsTerminal {
		t.Fatalf("Stat of a directory = %+v, %v", ki, err)
	}
	if ki, err := s.Stat(ctx, "users/ops/key"); err != nil || !ki.IsTerminal || ki.Size != int64(len("value of users/ops/key")) || time.Since(ki.Modified) > time.Minute {
		t.Fatalf("Stat of a value = %+v, %v", ki, err)
	}
	if err := s.Delete(ctx, "certificates/ca/a.test"); err != nil {
		t.Fatal(err)
	}
	if s.Exists(ctx, "certificates/ca/a.test/a.test.key") || !s.Exists(ctx, "certificates/ca/b.test") {
		t.Fatal("Delete of a directory removed the wrong keys")
	}

	// A second holder (another node) waits for the lock until it is
	// released.
	other := NewRedisStorage(c)
	if err := s.Lock(ctx, "issue_cert_a.test"); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 600*time.Millisecond)
	if err := other.Lock(short, "issue_cert_a.test"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock while another holds it: %v; want it to wait until the context ends", err)
	}
	cancel()
	got2 := make(chan error, 1)
	go func() { got2 <- other.Lock(ctx, "issue_cert_a.test") }()
	time.Sleep(100 * time.Millisecond)
	if err := s.Unlock(ctx, "issue_cert_a.test"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got2:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting holder did not get the lock after Unlock")
	}
	if err := other.Unlock(ctx, "issue_cert_a.test"); err != nil {
		t.Fatal(err)
	}
}
