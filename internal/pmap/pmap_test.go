package pmap

import (
	"hash/maphash"
	"math/rand/v2"
	"strconv"
	"testing"
)

var seed = maphash.MakeSeed()

func strHash(s string) uint64 { return maphash.String(seed, s) }

// check compares m with want entry by entry, both ways.
func check(t *testing.T, m *Map[string, int], want map[string]int) {
	t.Helper()
	if m.Len() != len(want) {
		t.Fatalf("Len %d, want %d", m.Len(), len(want))
	}
	for k, v := range want {
		if got, ok := m.Get(k); !ok || got != v {
			t.Fatalf("Get(%q) = %d, %v; want %d", k, got, ok, v)
		}
	}
	n := 0
	m.Range(func(k string, v int) bool {
		n++
		if want[k] != v {
			t.Fatalf("Range gave %q=%d, want %d", k, v, want[k])
		}
		return true
	})
	if n != len(want) {
		t.Fatalf("Range visited %d, want %d", n, len(want))
	}
}

// TestPersistent changes maps at random and checks that every earlier
// version still holds what it held, with a good hash and with one that
// sends every key to the same leaf.
func TestPersistent(t *testing.T) {
	for name, hash := range map[string]func(string) uint64{
		"maphash":   strHash,
		"collision": func(string) uint64 { return 42 },
		"low bits":  func(s string) uint64 { n, _ := strconv.Atoi(s[1:]); return uint64(n) << 58 },
	} {
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			m := New[string, int](hash, 0)
			want := map[string]int{}
			// Half the keys built in place first, as a load does.
			for i := range 500 {
				k := "k" + strconv.Itoa(i*2)
				m.Set(k, -i)
				want[k] = -i
			}
			type version struct {
				m    *Map[string, int]
				want map[string]int
			}
			var versions []version
			for i := range 3000 {
				k := "k" + strconv.Itoa(r.IntN(1000))
				if r.IntN(4) == 0 {
					m = m.Without(k)
					delete(want, k)
				} else {
					m = m.With(k, i)
					want[k] = i
				}
				if i%250 == 0 {
					cp := make(map[string]int, len(want))
					for k, v := range want {
						cp[k] = v
					}
					versions = append(versions, version{m, cp})
				}
			}
			check(t, m, want)
			for _, v := range versions {
				check(t, v.m, v.want)
			}
			if _, ok := m.Get("absent"); ok {
				t.Fatal("Get found a key never set")
			}
		})
	}
}

// TestSetInPlace builds a map with Set, as a first load does, then
// derives a version from it and checks both.
func TestSetInPlace(t *testing.T) {
	m := New[string, int](strHash, 0)
	want := map[string]int{}
	for i := range 10000 {
		k := "c" + strconv.Itoa(i)
		m.Set(k, i)
		want[k] = i
	}
	m.Set("c5", -5)
	want["c5"] = -5
	check(t, m, want)
	next := m.With("new", 1).Without("c7")
	check(t, m, want)
	want["new"] = 1
	delete(want, "c7")
	check(t, next, want)
}

// TestGetDoesNotAllocate: lookups are on the request path.
func TestGetDoesNotAllocate(t *testing.T) {
	m := New[string, int](strHash, 0)
	for i := range 1000 {
		m.Set("c"+strconv.Itoa(i), i)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = m.Get("c500") }); n != 0 {
		t.Fatalf("Get allocates %v times", n)
	}
}
