package tlsfront

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/weirgw/weir/internal/testclock"
	"github.com/weirgw/weir/internal/testredis"
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

// TestTicketKeysRedisRotation: two nodes sharing a Redis resume each
// other's sessions, across a rotation too (the previous period's key
// still decrypts), until the key that sealed a ticket retires two
// periods on; Redis keeps only the periods in use. Real handshakes on
// loopback, a real redis-server, a settable clock.
func TestTicketKeysRedisRotation(t *testing.T) {
	rs := testredis.Start(t)
	rc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{rs.Addr}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := writeSelfSigned(t, t.TempDir(), "api", false, "api.test")
	pair, err := tls.LoadX509KeyPair(files[0], files[1])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(pair.Leaf)
	start := time.Unix(1_000_000*3600+600, 0) // ten minutes into a period
	clock := testclock.New(start)

	var keys []*TicketKeys
	var addrs []string
	for range 2 {
		tk := NewTicketKeys(rc, nil)
		tk.now = clock.Now
		cfg := &tls.Config{Certificates: []tls.Certificate{pair}}
		tk.Register(cfg)
		ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				// A byte after the handshake brings TLS 1.3's ticket
				// along with it.
				_, _ = c.Write([]byte{1})
				c.Close()
			}
		}()
		keys, addrs = append(keys, tk), append(addrs, ln.Addr().String())
	}
	refresh := func() {
		for _, tk := range keys {
			tk.Refresh(context.Background())
		}
	}
	// resumed makes a handshake with node n for a client whose sessions
	// are in cache and tells whether it resumed.
	resumed := func(n int, cache tls.ClientSessionCache) bool {
		t.Helper()
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addrs[n],
			&tls.Config{ServerName: "api.test", RootCAs: roots, ClientSessionCache: cache})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		return c.ConnectionState().DidResume
	}

	refresh()
	fresh, kept := tls.NewLRUClientSessionCache(1), tls.NewLRUClientSessionCache(1)
	if resumed(0, fresh) || resumed(0, kept) {
		t.Fatal("a first handshake resumed")
	}
	if !resumed(1, fresh) {
		t.Fatal("a session from node 0 did not resume on node 1")
	}

	// One rotation: the ticket kept from the last period still resumes,
	// on either node.
	clock.Advance(time.Hour)
	refresh()
	if !resumed(1, kept) {
		t.Fatal("after one rotation, a ticket of the previous period did not resume")
	}
	if !resumed(0, fresh) {
		t.Fatal("after one rotation, a ticket from node 1 did not resume on node 0")
	}
	kept = tls.NewLRUClientSessionCache(1)
	if resumed(0, kept) {
		t.Fatal("a first handshake resumed")
	}

	// Two rotations on, the key that sealed it is gone: a full handshake.
	clock.Advance(2 * time.Hour)
	refresh()
	if resumed(1, kept) {
		t.Fatal("a ticket sealed two periods ago still resumed: its key never retired")
	}
	e := clock.Now().UnixNano() / int64(DefaultTicketRotation)
	names, err := rc.Do(context.Background(), rc.B().Hkeys().Key(TicketKeysKey).Build()).AsStrSlice()
	slices.Sort(names)
	want := []string{strconv.FormatInt(e-1, 10), strconv.FormatInt(e, 10), strconv.FormatInt(e+1, 10)}
	if err != nil || !slices.Equal(names, want) {
		t.Fatalf("redis holds the periods %v (%v); want %v", names, err, want)
	}
}
