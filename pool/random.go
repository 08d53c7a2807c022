package pool

import "math/rand/v2"

// weightedRandom picks a member with probability weight/total using the
// runtime's per-thread generator (math/rand/v2 top-level functions: no
// lock, no shared state) and a binary search over cumulative weights.
type weightedRandom struct {
	members []*Member
	idx     []uint32 // members with weight > 0
	cum     []uint64 // cum[i] = sum of the weights of idx[0..i]
	total   uint64
}

// randomRetries is how many more draws a pick makes when the drawn member
// is unusable, before scanning.
const randomRetries = 2

func newWeightedRandom(members []*Member) *weightedRandom {
	b := &weightedRandom{members: members}
	for i, m := range members {
		if m.weight > 0 {
			b.total += uint64(m.weight)
			b.idx = append(b.idx, uint32(i))
			b.cum = append(b.cum, b.total)
		}
	}
	return b
}

func (b *weightedRandom) pick(_ []byte, exclude *Member) *Member {
	if b.total == 0 {
		return nil
	}
	var i uint32
	for range 1 + randomRetries {
		i = b.idx[searchUint64(b.cum, rand.Uint64N(b.total)+1)]
		if m := b.members[i]; m != exclude && m.acquire() {
			return m
		}
	}
	return scanFrom(b.members, int(i), exclude)
}

// searchUint64 returns the first index i with a[i] >= x (len(a) when
// none), without sort.Search's closure.
func searchUint64(a []uint64, x uint64) int {
	lo, hi := 0, len(a)
	for lo < hi {
		h := int(uint(lo+hi) >> 1)
		if a[h] < x {
			lo = h + 1
		} else {
			hi = h
		}
	}
	return lo
}
