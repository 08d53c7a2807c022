package pool

import "sync/atomic"

// roundRobin is smooth weighted round robin (nginx's algorithm,
// https://github.com/nginx/nginx/commit/52327e0627f49dbda1e8db695e63a4b0af4448b1),
// precomputed: the schedule is one full cycle of member indexes, and pick
// is an atomic counter into it, so concurrent picks share no lock and the
// sequence is exactly nginx's (weights 5,1,1 give a a b a c a a).
type roundRobin struct {
	members []*Member
	sched   []uint32
	next    atomic.Uint64
	probes  uint64 // schedule entries tried before the linear fallback
}

// maxScheduleWork bounds len(schedule) * len(members), the cost of
// building the schedule, to keep a reload with many weighted targets fast.
const (
	maxSchedule     = 1 << 16
	maxScheduleWork = 1 << 24
)

func newRoundRobin(members []*Member) *roundRobin {
	w := make([]int, len(members))
	for i, m := range members {
		w[i] = m.weight
	}
	b := &roundRobin{members: members, sched: swrrSchedule(w)}
	b.probes = min(uint64(len(b.sched)), uint64(len(members))+8)
	return b
}

func (b *roundRobin) pick(_ []byte, exclude *Member) *Member {
	l := uint64(len(b.sched))
	if l == 0 {
		return nil
	}
	n := b.next.Add(1) - 1
	// A skipped member's turn goes to the next entries of the schedule,
	// so the others keep their proportions.
	for k := uint64(0); k < b.probes; k++ {
		m := b.members[b.sched[(n+k)%l]]
		if m != exclude && m.acquire() {
			return m
		}
	}
	return scanFrom(b.members, int(n%uint64(len(b.members))), exclude)
}

// swrrSchedule returns one cycle of smooth weighted round robin over the
// members with weight > 0. Weights are divided by their greatest common
// divisor; if the cycle would still be too long (maxSchedule entries, or
// maxScheduleWork to build) they are scaled down proportionally, keeping
// every positive weight at least 1.
func swrrSchedule(weights []int) []uint32 {
	g, n := 0, 0
	for _, x := range weights {
		if x > 0 {
			g = gcd(g, x)
			n++
		}
	}
	if n == 0 {
		return nil
	}
	w := make([]int, len(weights))
	total := 0
	for i, x := range weights {
		if x > 0 {
			w[i] = x / g
			total += w[i]
		}
	}
	if limit := max(min(maxSchedule, maxScheduleWork/len(weights)), n); total > limit {
		scaled := 0
		for i, x := range w {
			if x > 0 {
				w[i] = max(1, x*limit/total)
				scaled += w[i]
			}
		}
		total = scaled
	}
	return swrrCycle(w, total)
}

// swrrCycle runs nginx's selection total times: every member's current
// weight grows by its weight, the largest (first on ties) is chosen and
// pays back the total. After total steps every current weight is 0 again,
// so the cycle repeats exactly.
func swrrCycle(w []int, total int) []uint32 {
	cur := make([]int, len(w))
	sched := make([]uint32, 0, total)
	for range total {
		best := -1
		for i, x := range w {
			if x == 0 {
				continue
			}
			cur[i] += x
			if best < 0 || cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		sched = append(sched, uint32(best))
	}
	return sched
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
