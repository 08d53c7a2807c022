package cache

import (
	"fmt"
	"testing"
	"time"

	"github.com/weirgw/weir/internal/testredis"
	"github.com/weirgw/weir/plugins/internal/redisguard"
)

// TestRedisStoreHungRedis: with Redis frozen, one request's lookups and
// write together wait at most its budget, a lookup is a miss and a write
// an error; after a few failures the breaker answers at once; once Redis
// resumes the store works again.
func TestRedisStoreHungRedis(t *testing.T) {
	srv := testredis.Start(t)
	s := newRedisStore(newRedisClient(t, srv.Addr), 50*time.Millisecond)
	now := time.Now().UnixNano()
	until := now + int64(time.Hour)
	// The setup write has the store's 50ms too: a loaded machine may
	// need a few tries (the breaker may open between them).
	for deadline := time.Now().Add(10 * time.Second); ; {
		err := s.set([]byte("k"), testEntry(t, 5, until, ""), now, nil)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	srv.Pause()
	for i := range 3 {
		b := redisguard.NewBudget(50 * time.Millisecond)
		start := time.Now()
		_, ok1 := s.get([]byte(fmt.Sprintf("miss-%d", i)), now, &b)
		_, ok2 := s.get([]byte(fmt.Sprintf("miss2-%d", i)), now, &b)
		err := s.set([]byte(fmt.Sprintf("new-%d", i)), testEntry(t, 5, until, ""), now, &b)
		// The three calls share 50ms; 100ms more is room for a loaded
		// machine, far below the 150ms three separate timeouts would take.
		if el := time.Since(start); el > 150*time.Millisecond || ok1 || ok2 || err == nil {
			t.Fatalf("request %d with redis hung: %v, hits %v %v, write error %v", i, el, ok1, ok2, err)
		}
	}
	if !s.guard.Breaker.Open() {
		t.Fatal("breaker not open after three failed requests")
	}
	start := time.Now()
	b := redisguard.NewBudget(50 * time.Millisecond)
	if _, ok := s.get([]byte("k"), now, &b); ok || time.Since(start) > 10*time.Millisecond {
		t.Fatalf("open breaker: hit %v after %v, want an immediate miss", ok, time.Since(start))
	}
	srv.Resume()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := s.get([]byte("k"), now, nil); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("store not back 5s after redis resumed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
