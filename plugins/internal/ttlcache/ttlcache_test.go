package ttlcache

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

func TestNewOff(t *testing.T) {
	for _, size := range []int{0, -1} {
		if c := New[string, int](size); c != nil {
			t.Fatalf("New(%d) = %p, want nil (no cache)", size, c)
		}
	}
}

func TestGetPut(t *testing.T) {
	c := New[string, int](64)
	if _, ok := c.Get(1, "a", 0); ok {
		t.Fatal("empty cache answered")
	}
	c.Put(1, "a", 7, 100, 0)
	cases := []struct {
		shard uint8
		key   string
		now   int64
		v     int
		ok    bool
	}{
		{1, "a", 0, 7, true},
		{1, "a", 99, 7, true},
		{1, "a", 100, 0, false}, // until is exclusive
		{1, "a", 1000, 0, false},
		{1 + Shards, "a", 50, 7, true}, // shard is taken modulo Shards
		{1, "b", 50, 0, false},
	}
	for _, tc := range cases {
		v, ok := c.Get(tc.shard, tc.key, tc.now)
		if v != tc.v || ok != tc.ok {
			t.Errorf("Get(%d, %q, %d) = %d %v, want %d %v", tc.shard, tc.key, tc.now, v, ok, tc.v, tc.ok)
		}
	}
	c.Put(1, "a", 8, 200, 150) // replaces
	if v, ok := c.Get(1, "a", 150); !ok || v != 8 || c.Len() != 1 {
		t.Fatalf("after replace: %d %v, len %d", v, ok, c.Len())
	}
}

func TestBounded(t *testing.T) {
	c := New[string, int](32)
	for i := 0; i < 1000; i++ {
		c.Put(uint8(i), fmt.Sprintf("k-%d", i), i, 1<<62, 0)
	}
	if n := c.Len(); n > 32 {
		t.Fatalf("cache grew to %d entries, bound 32", n)
	}
}

// TestEvictsExpiredFirst: a full shard makes room by dropping expired
// entries, so the live ones stay.
func TestEvictsExpiredFirst(t *testing.T) {
	c := New[int, int](Shards) // one entry per shard
	c.Put(0, 1, 1, 10, 0)      // expires at 10
	c.Put(0, 2, 2, 100, 20)    // shard full: 1 is expired and goes
	if _, ok := c.Get(0, 2, 20); !ok || c.Len() != 1 {
		t.Fatalf("live entry missing, len %d", c.Len())
	}
	c.Put(0, 3, 3, 100, 30) // shard full, nothing expired: one goes anyway
	if _, ok := c.Get(0, 3, 30); !ok || c.Len() != 1 {
		t.Fatalf("new entry missing, len %d", c.Len())
	}
}

func TestGetZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race (sync.Pool drops items); make unit runs this test")
	}
	c := New[string, *int](64)
	v := 1
	tok := strings.Repeat("a.b-c_", 100) // a JWT-sized key
	c.Put(3, tok, &v, 1<<62, 0)
	key := []byte(tok)
	n := testing.AllocsPerRun(200, func() {
		// A view of the request's bytes, as the jwt plugin looks up.
		view := unsafe.String(unsafe.SliceData(key), len(key))
		if got, ok := c.Get(3, view, 1); !ok || got != &v {
			t.Fatal("miss")
		}
	})
	if n != 0 {
		t.Fatalf("%v allocations per Get, want 0", n)
	}
}

func TestConcurrent(t *testing.T) {
	c := New[[32]byte, int](64)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				var k [32]byte
				k[0], k[1] = byte(i), byte(g)
				c.Put(k[0], k, i, int64(i+10), int64(i))
				c.Get(k[0], k, int64(i))
			}
		}()
	}
	wg.Wait()
	if n := c.Len(); n > 64 {
		t.Fatalf("len %d above the bound", n)
	}
}
