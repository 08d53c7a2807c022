package pool

import (
	"hash/fnv"
	"strconv"
	"testing"
)

const ringKeys = 10000

func ringKey(i int) []byte { return []byte("user-" + strconv.Itoa(i)) }

// owners maps every test key to the URL it is picked for.
func owners(t *testing.T, s *Service) []string {
	t.Helper()
	out := make([]string, ringKeys)
	for i := range out {
		m, err := s.Pick(ringKey(i), nil)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = m.URL()
	}
	return out
}

// TestHashRingStableOnAdd: adding a 5th target to 4 (a reload, or
// discovery finding one more: both build the next snapshot's Service)
// moves about 1/5 of the keys, all of them to the new target.
func TestHashRingStableOnAdd(t *testing.T) {
	r := NewRegistry()
	five := fakeTargets(1, 1, 1, 1, 1)
	cfg := ServiceConfig{Name: "ring-add", Balancer: "consistent_hash", Targets: five[:4]}
	s := mustService(t, r, cfg)
	before := owners(t, s)
	if again := owners(t, s); !equalStrings(before, again) {
		t.Fatal("the same key went to different members on two picks")
	}
	fifth := five[4]
	cfg.Targets = five
	after := owners(t, mustService(t, r, cfg))
	moved := 0
	for i := range before {
		if before[i] != after[i] {
			moved++
			if after[i] != fifth.URL {
				t.Fatalf("key %d moved from %s to %s, not to the new target", i, before[i], after[i])
			}
		}
	}
	frac := float64(moved) / ringKeys
	t.Logf("adding a 5th target moved %.1f%% of %d keys", frac*100, ringKeys)
	if frac < 0.12 || frac > 0.30 {
		t.Fatalf("moved %.1f%% of keys, want about 20%% (12-30%%)", frac*100)
	}

	// Removing it again puts every key back where it was.
	cfg.Targets = five[:4]
	if back := owners(t, mustService(t, r, cfg)); !equalStrings(before, back) {
		t.Fatal("removing the added target did not restore the previous mapping")
	}
}

// TestHashRingStableOnRemove: removing a target moves only its own keys.
func TestHashRingStableOnRemove(t *testing.T) {
	ts := fakeTargets(1, 1, 1, 1, 1)
	r := NewRegistry()
	s := mustService(t, r, ServiceConfig{Name: "ring-rm", Balancer: "consistent_hash", Targets: ts})
	before := owners(t, s)
	after := owners(t, mustService(t, r, ServiceConfig{Name: "ring-rm", Balancer: "consistent_hash",
		Targets: []TargetConfig{ts[0], ts[1], ts[3], ts[4]}}))
	for i := range before {
		if before[i] != ts[2].URL && before[i] != after[i] {
			t.Fatalf("key %d moved from %s to %s though its target stayed", i, before[i], after[i])
		}
		if after[i] == ts[2].URL {
			t.Fatalf("key %d still goes to the removed target", i)
		}
	}
}

// TestHashRingSameAcrossBuilds: the ring depends on the targets, not on
// their order or on the process (gateway nodes must agree).
func TestHashRingSameAcrossBuilds(t *testing.T) {
	ts := fakeTargets(1, 2, 3)
	a := mustService(t, NewRegistry(), ServiceConfig{Name: "ring-a", Balancer: "consistent_hash", Targets: ts})
	b := mustService(t, NewRegistry(), ServiceConfig{Name: "ring-b", Balancer: "consistent_hash",
		Targets: []TargetConfig{ts[2], ts[0], ts[1]}})
	if !equalStrings(owners(t, a), owners(t, b)) {
		t.Fatal("target order changed the key mapping")
	}
}

// TestHashKey: hashKey is FNV-1a 64 (checked against hash/fnv) followed by
// murmur3's fmix64, so any node computes the same ring positions.
func TestHashKey(t *testing.T) {
	for _, k := range []string{"", "user-42", "http://127.0.0.1:20000#0", "\x00\xff"} {
		f := fnv.New64a()
		f.Write([]byte(k))
		h := f.Sum64()
		h ^= h >> 33
		h *= 0xff51afd7ed558ccd
		h ^= h >> 33
		h *= 0xc4ceb9a63ec31e63
		h ^= h >> 33
		if got := hashKey([]byte(k)); got != h {
			t.Errorf("hashKey(%q) = %#x, want %#x", k, got, h)
		}
	}
}

// TestHashRingUnavailableFallsToNextDistinct: an ejected member's keys go
// to the next distinct member clockwise; every other key stays.
func TestHashRingUnavailableFallsToNextDistinct(t *testing.T) {
	ts := fakeTargets(1, 1, 1, 1)
	s := mustService(t, NewRegistry(), ServiceConfig{Name: "ring-down", Balancer: "consistent_hash", Targets: ts})
	before := owners(t, s)
	down := s.Members()[1]
	down.st.activeDown.Store(true)
	after := owners(t, s)
	ring := s.bal.(*hashRing)
	spread := map[string]int{}
	for i := range before {
		if before[i] != down.URL() {
			if after[i] != before[i] {
				t.Fatalf("key %d moved from healthy %s to %s", i, before[i], after[i])
			}
			continue
		}
		// Expected: walk the ring from the key's point to the first point
		// owned by another member.
		p := searchUint64(ring.points, hashKey(ringKey(i))) % len(ring.points)
		for ring.members[ring.owner[p]] == down {
			p = (p + 1) % len(ring.points)
		}
		if want := ring.members[ring.owner[p]].URL(); after[i] != want {
			t.Fatalf("key %d of the down member went to %s, next distinct on the ring is %s", i, after[i], want)
		}
		spread[after[i]]++
	}
	if len(spread) != 3 {
		t.Errorf("the down member's keys went to %d members (%v), want spread over all 3 others", len(spread), spread)
	}
	down.st.activeDown.Store(false)
	if back := owners(t, s); !equalStrings(before, back) {
		t.Fatal("keys did not return when the member came back")
	}
}

func TestHashRingEmptyKeyAndSingleMember(t *testing.T) {
	s := mustService(t, NewRegistry(), ServiceConfig{Name: "ring-one", Balancer: "consistent_hash", Targets: fakeTargets(1)})
	for range 20 {
		if m, err := s.Pick(nil, nil); err != nil || m != s.Members()[0] {
			t.Fatalf("single member, empty key: %v %v", m, err)
		}
	}
	s2 := mustService(t, NewRegistry(), ServiceConfig{Name: "ring-two", Balancer: "consistent_hash", Targets: fakeTargets(1, 1)})
	counts := countPicks(t, s2, 2000, nil)
	if counts[0] < 700 || counts[1] < 700 {
		t.Errorf("empty keys should spread by weight, got %v", counts)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// FuzzPickHashKey: the hash key comes from client bytes (header, cookie,
// path); any key picks a member, always the same one.
func FuzzPickHashKey(f *testing.F) {
	for _, k := range []string{"", "user-1", "\x00", "192.168.0.1", "/a/b?c=d", "\xff\xfe"} {
		f.Add([]byte(k))
	}
	r := NewRegistry()
	s, err := r.NewService(ServiceConfig{Name: "fuzz-ring", Balancer: "consistent_hash", Targets: fakeTargets(1, 2, 3)})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	f.Fuzz(func(t *testing.T, key []byte) {
		a, err := s.Pick(key, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(key) == 0 {
			return // random by design
		}
		b, _ := s.Pick(key, nil)
		if a != b {
			t.Fatalf("key %q went to %s then %s", key, a.URL(), b.URL())
		}
		c, err := s.Pick(key, a)
		if err != nil || c == a {
			t.Fatalf("key %q excluding %s: %v, %v", key, a.URL(), c, err)
		}
	})
}
