package tlsfront

import (
	"context"
	"crypto/tls"
	"testing"
	"time"
)

// TestTicketKeysLocalRotation: without Redis each period gets a key of
// its own, and the previous period's key stays for decryption.
func TestTicketKeysLocalRotation(t *testing.T) {
	tk := NewTicketKeys(nil, nil)
	now := time.Unix(1_000_000*3600, 0)
	tk.now = func() time.Time { return now }
	cfg := &tls.Config{}
	tk.Register(cfg)
	tk.Refresh(context.Background())
	first := tk.keys
	if len(first) != 3 || first[0] == first[1] {
		t.Fatalf("keys %x", first)
	}
	tk.Refresh(context.Background())
	if tk.keys[0] != first[0] {
		t.Fatal("a refresh within the period changed the current key")
	}
	now = now.Add(time.Hour)
	tk.Refresh(context.Background())
	// The next period's key was made early (decrypt-only), so it is the
	// new current key, and the old current key is now the previous one.
	if tk.keys[0] != first[2] || tk.keys[1] != first[0] {
		t.Fatalf("after rotation: %x, before %x", tk.keys, first)
	}
	if len(tk.local) != 3 {
		t.Errorf("%d local keys kept; want 3", len(tk.local))
	}
}
