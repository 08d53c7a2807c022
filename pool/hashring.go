package pool

import (
	"math/rand/v2"
	"slices"
	"strconv"
)

// hashRing is ketama-style consistent hashing: each member owns points on
// a 64-bit ring, as many as its share of the total weight (256 per member
// at equal weights; libketama's 160 leaves a member 14% off its share at
// the 95th percentile, 256 about 11%), and a key goes to the owner of the
// first point at or after the key's hash. Adding a member moves only the
// keys that land on its new points (about 1/(n+1) of them); removing one
// moves only its own keys.
//
// When the owner is unusable the key falls to the next distinct member
// clockwise, so an ejected target's keys spread over the others while
// every other key stays where it was.
//
// Point positions hash the target URL, not the member's list position, so
// every gateway node (and every snapshot) builds the same ring from the
// same targets.
type hashRing struct {
	members []*Member
	points  []uint64 // sorted hashes
	owner   []uint32 // owner[i]: member index of points[i]
	// nextOther[i]: the next point clockwise whose owner differs from
	// owner[i]; walking it visits members in ring order without stepping
	// over a member's consecutive points one by one.
	nextOther []uint32
	maxWalk   int
}

const pointsPerMember = 256

func newHashRing(members []*Member) *hashRing {
	b := &hashRing{members: members}
	var total, n int
	for _, m := range members {
		if m.weight > 0 {
			total += m.weight
			n++
		}
	}
	if n == 0 {
		return b
	}
	type point struct {
		h     uint64
		owner uint32
	}
	var pts []point
	var buf []byte
	for i, m := range members {
		if m.weight == 0 {
			continue
		}
		// Proportional to weight, at least one point. A member's points
		// are the first k of its own sequence, so a weight change moves
		// only the points added or dropped.
		k := max(1, (pointsPerMember*n*m.weight+total/2)/total)
		for j := range k {
			buf = strconv.AppendInt(append(append(buf[:0], m.t.url...), '#'), int64(j), 10)
			pts = append(pts, point{h: hashKey(buf), owner: uint32(i)})
		}
	}
	// Ties between equal hashes (practically never) resolve by URL so
	// the ring does not depend on member order.
	slices.SortFunc(pts, func(a, c point) int {
		switch {
		case a.h < c.h:
			return -1
		case a.h > c.h:
			return 1
		}
		if members[a.owner].t.url < members[c.owner].t.url {
			return -1
		}
		return 1
	})
	b.points = make([]uint64, len(pts))
	b.owner = make([]uint32, len(pts))
	for i, p := range pts {
		b.points[i], b.owner[i] = p.h, p.owner
	}
	b.nextOther = make([]uint32, len(pts))
	l := len(pts)
	if n == 1 {
		for i := range b.nextOther {
			b.nextOther[i] = uint32((i + 1) % l)
		}
	} else {
		// Right to left twice around, so the wrap-around is covered.
		next := -1
		for k := 2*l - 1; k >= 0; k-- {
			i := k % l
			j := (i + 1) % l
			if b.owner[j] != b.owner[i] {
				next = j
			} else if next < 0 {
				continue
			}
			b.nextOther[i] = uint32(next)
		}
	}
	// Enough steps to meet every member in the common case; past that a
	// deterministic scan finishes the search.
	b.maxWalk = 2*n + 4
	return b
}

func (b *hashRing) pick(key []byte, exclude *Member) *Member {
	l := len(b.points)
	if l == 0 {
		return nil
	}
	var i int
	if len(key) == 0 {
		// No key (the header or cookie was absent): any member, by weight.
		i = rand.IntN(l)
	} else {
		i = searchUint64(b.points, hashKey(key))
		if i == l {
			i = 0
		}
	}
	first := b.owner[i]
	for range b.maxWalk {
		if m := b.members[b.owner[i]]; m != exclude && m.acquire() {
			return m
		}
		i = int(b.nextOther[i])
	}
	return scanFrom(b.members, int(first), exclude)
}

// hashKey is 64-bit FNV-1a finished with the murmur3 fmix64 avalanche, so
// keys that differ in one trailing byte (user ids, "url#1", "url#2") land
// far apart. Deterministic across processes, unlike hash/maphash, because
// gateway nodes must agree on the ring.
func hashKey(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9a63ec31e63
	h ^= h >> 33
	return h
}
