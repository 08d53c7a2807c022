package pool

// balancer chooses a member for one request. Implementations are built
// once per member list (each config snapshot), immutable
// after that apart from their own atomic counters, and safe for
// concurrent pick calls. pick returns nil when no member is usable; it
// must not allocate.
//
// Every balancer skips members that are drained (weight 0), unhealthy,
// circuit-open or the excluded one, and returns a member only after
// m.acquire() said yes (which may claim a half-open probe).
type balancer interface {
	pick(key []byte, exclude *Member) *Member
}

func newBalancer(kind balancerKind, members []*Member) balancer {
	switch kind {
	case kindLeastConn:
		return newLeastConn(members)
	case kindConsistentHash:
		return newHashRing(members)
	case kindRandom:
		return newWeightedRandom(members)
	default:
		return newRoundRobin(members)
	}
}

// scanFrom is every balancer's last resort: the first usable member in
// list order from start. O(n), and only reached when the balancer's own
// choice and its few alternatives were unusable.
func scanFrom(members []*Member, start int, exclude *Member) *Member {
	n := len(members)
	for k := 0; k < n; k++ {
		m := members[(start+k)%n]
		if m != exclude && m.acquire() {
			return m
		}
	}
	return nil
}
