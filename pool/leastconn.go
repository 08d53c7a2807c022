package pool

import "math/rand/v2"

// leastConn picks the usable member with the fewest in-flight requests
// relative to its weight, comparing (inflight+1)/weight so that idle
// members are still chosen in proportion to weight. The scan starts at a
// random member and keeps the first minimum, so ties (an idle service)
// spread evenly instead of piling on the first target. O(n) per pick.
//
// In-flight counts come from Begin/End and are shared across snapshots.
type leastConn struct {
	members []*Member
}

func newLeastConn(members []*Member) *leastConn { return &leastConn{members: members} }

func (b *leastConn) pick(_ []byte, exclude *Member) *Member {
	n := len(b.members)
	if n == 0 {
		return nil
	}
	i := rand.IntN(n)
	var best *Member
	var bestLoad, bestWeight int64
	for range n {
		m := b.members[i]
		if i++; i == n {
			i = 0
		}
		if m == exclude {
			continue
		}
		if !m.quickReady() {
			switch m.readiness() {
			case notReady:
				continue
			case probeReady:
				// A recovering target gets its half-open probe as soon
				// as it may: whoever claims it sends the probe.
				if m.acquire() {
					return m
				}
				continue
			}
		}
		load, w := m.st.inflight.Load()+1, int64(m.weight)
		if best == nil || load*bestWeight < bestLoad*w {
			best, bestLoad, bestWeight = m, load, w
		}
	}
	return best
}
