package pool

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
)

var allBalancers = []string{"round_robin", "least_conn", "consistent_hash", "random"}

// TestSWRRSequence checks the exact sequence of nginx's smooth weighted
// round robin: weights 5,1,1 give a a b a c a a.
func TestSWRRSequence(t *testing.T) {
	r := NewRegistry()
	s := mustService(t, r, ServiceConfig{Name: "swrr-seq", Targets: fakeTargets(5, 1, 1)})
	var got strings.Builder
	for range 14 {
		m, err := s.Pick(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		got.WriteByte("abc"[memberIndex(s, m)])
	}
	if want := "aabacaaaabacaa"; got.String() != want {
		t.Fatalf("sequence %s, want %s", got.String(), want)
	}
}

func TestSWRRSchedule(t *testing.T) {
	cases := []struct {
		weights []int
		want    string
	}{
		{[]int{5, 1, 1}, "0010200"},
		{[]int{100, 100, 100}, "012"},       // divided by the gcd, even spread
		{[]int{200, 100, 0, 100}, "0130"},   // weight 0 never scheduled
		{[]int{2, 3}, "10101"},              // nginx: b a b a b
		{[]int{0, 0}, ""},                   // nothing to schedule
		{[]int{1, 1, 1, 1}, "0123"},         // equal weights rotate
		{[]int{3, 0, 3, 0, 3}, "024"},       //
		{[]int{1000, 1}, "000000000000000"}, // only its head checked here
	}
	for _, c := range cases {
		sched := swrrSchedule(c.weights)
		var b strings.Builder
		for _, i := range sched {
			b.WriteString(strconv.Itoa(int(i)))
		}
		got := b.String()
		if c.weights[0] == 1000 {
			if len(sched) != 1001 || !strings.HasPrefix(got, c.want) || strings.Count(got, "1") != 1 {
				t.Errorf("%v: schedule length %d with %d ones", c.weights, len(sched), strings.Count(got, "1"))
			}
			continue
		}
		if got != c.want {
			t.Errorf("%v: schedule %q, want %q", c.weights, got, c.want)
		}
	}
}

// TestSWRRScheduleScaling: co-prime large weights over many members exceed
// the schedule bound and are scaled, keeping proportions within 1%.
func TestSWRRScheduleScaling(t *testing.T) {
	w := make([]int, 200)
	sum := 0
	for i := range w {
		w[i] = 60000 + i*7 + 1
		sum += w[i]
	}
	w[0] = 1 // tiny weights still get at least one slot
	sum = sum - 60001 + 1
	sched := swrrSchedule(w)
	if len(sched) > maxSchedule+len(w) {
		t.Fatalf("schedule of %d entries, bound %d", len(sched), maxSchedule)
	}
	counts := make([]int, len(w))
	for _, i := range sched {
		counts[i]++
	}
	if counts[0] != 1 {
		t.Errorf("weight 1 got %d slots, want 1", counts[0])
	}
	for i := 1; i < len(w); i++ {
		want := float64(w[i]) / float64(sum)
		got := float64(counts[i]) / float64(len(sched))
		if math.Abs(got-want)/want > 0.01 {
			t.Errorf("member %d: share %.5f, want %.5f", i, got, want)
		}
	}
}

// TestBalancerDistribution: every balancer honours weights.
func TestBalancerDistribution(t *testing.T) {
	weights := []int{300, 200, 100}
	const n = 30000
	for _, bal := range allBalancers {
		t.Run(bal, func(t *testing.T) {
			r := NewRegistry()
			s := mustService(t, r, ServiceConfig{Name: "dist-" + bal, Balancer: bal, Targets: fakeTargets(weights...)})
			var counts []int
			switch bal {
			case "least_conn":
				// Requests that stay in flight: the in-flight counts must
				// settle in proportion to the weights.
				counts = make([]int, len(weights))
				for range 600 {
					m, err := s.Pick(nil, nil)
					if err != nil {
						t.Fatal(err)
					}
					m.Begin()
					counts[memberIndex(s, m)]++
				}
				for i, m := range s.Members() {
					if got := m.st.inflight.Load(); got != int64(counts[i]) {
						t.Errorf("member %d in flight %d, picked %d", i, got, counts[i])
					}
					for range counts[i] {
						m.End(true, 0)
					}
				}
				want := []int{300, 200, 100}
				for i := range counts {
					if counts[i] < want[i]-1 || counts[i] > want[i]+1 {
						t.Errorf("least_conn in-flight spread %v, want about %v", counts, want)
						break
					}
				}
				return
			case "consistent_hash":
				counts = countPicks(t, s, n, func(i int) []byte { return []byte("user-" + strconv.Itoa(i)) })
			default:
				counts = countPicks(t, s, n, nil)
			}
			tol := 0.0
			switch bal {
			case "consistent_hash":
				tol = 0.2 // ring variance: 256 points per member leave ~11% at p95
			case "random":
				tol = 0.05
			}
			for i, w := range weights {
				want := float64(n) * float64(w) / 600
				if math.Abs(float64(counts[i])-want) > want*tol+0.5 {
					t.Errorf("member %d (weight %d): %d picks, want %.0f ±%.0f%% (all %v)", i, w, counts[i], want, tol*100, counts)
				}
			}
		})
	}
}

// TestEqualWeightsSpread: equal weights spread evenly, including
// least_conn's tie-breaking when every request ends at once.
func TestEqualWeightsSpread(t *testing.T) {
	const n, members = 8000, 4
	for _, bal := range allBalancers {
		t.Run(bal, func(t *testing.T) {
			s := mustService(t, NewRegistry(), ServiceConfig{Name: "even-" + bal, Balancer: bal, Targets: fakeTargets(1, 1, 1, 1)})
			var key func(int) []byte
			if bal == "consistent_hash" {
				key = func(i int) []byte { return []byte(fmt.Sprintf("k%d", i)) }
			}
			counts := make([]int, members)
			for i := range n {
				var k []byte
				if key != nil {
					k = key(i)
				}
				m, err := s.Pick(k, nil)
				if err != nil {
					t.Fatal(err)
				}
				m.Begin()
				m.End(true, 0)
				counts[memberIndex(s, m)]++
			}
			tol := map[string]float64{"round_robin": 0, "least_conn": 0.1, "random": 0.1, "consistent_hash": 0.2}[bal]
			for i, c := range counts {
				if math.Abs(float64(c)-n/members) > n/members*tol {
					t.Errorf("member %d got %d of %d (all %v), tolerance %.0f%%", i, c, n, counts, tol*100)
				}
			}
		})
	}
}

// TestLeastConnPrefersIdle: a busy member is avoided, weights scale the
// comparison.
func TestLeastConnPrefersIdle(t *testing.T) {
	s := mustService(t, NewRegistry(), ServiceConfig{Name: "lc-idle", Balancer: "least_conn", Targets: fakeTargets(1, 1, 3)})
	ms := s.Members()
	for range 5 {
		ms[0].Begin()
	}
	ms[2].Begin() // weight 3: (1+1)/3 still below (0+1)/1
	for range 50 {
		m, _ := s.Pick(nil, nil)
		if m == ms[0] {
			t.Fatal("picked the member with 5 requests in flight")
		}
	}
	for range 3 {
		ms[2].Begin()
	}
	// Now member 2 has 4 in flight: (4+1)/3 > (0+1)/1, member 1 wins.
	for range 50 {
		if m, _ := s.Pick(nil, nil); m != ms[1] {
			t.Fatalf("picked member %d, want the idle member 1", memberIndex(s, m))
		}
	}
	for range 5 {
		ms[0].End(true, 0)
	}
	for range 4 {
		ms[2].End(true, 0)
	}
}

// TestPickSkipsUnavailable: drained, unhealthy and circuit-open members and
// the excluded one are never picked, by any balancer; with none left Pick
// returns ErrNoTarget.
func TestPickSkipsUnavailable(t *testing.T) {
	for _, bal := range allBalancers {
		t.Run(bal, func(t *testing.T) {
			clk := newFakeClock()
			r := newRegistry(clk.Now)
			s := mustService(t, r, ServiceConfig{
				Name: "skip-" + bal, Balancer: bal,
				Targets: fakeTargets(1, 1, 1, 1, 0),
				Health:  HealthConfig{Passive: &PassiveConfig{UnhealthyAfter: 1, HealthyAfter: 10}},
				Breaker: &BreakerConfig{MinRequests: 100, OpenFor: 10},
			})
			ms := s.Members()
			ms[0].st.activeDown.Store(true)                              // active check: down
			ms[1].Begin()                                                // passive: one failure ejects
			ms[1].End(false, 0)                                          //
			ms[2].st.brk.word.Store(packCircuit(r.clock(), circuitOpen)) // breaker open
			// ms[4] has weight 0 (drained)
			key := func(i int) []byte { return []byte("key-" + strconv.Itoa(i)) }
			for i := range 500 {
				m, err := s.Pick(key(i), nil)
				if err != nil {
					t.Fatalf("pick %d: %v", i, err)
				}
				if m != ms[3] {
					t.Fatalf("pick %d: got member %d, only member 3 is usable", i, memberIndex(s, m))
				}
				if _, err := s.Pick(key(i), ms[3]); !errors.Is(err, ErrNoTarget) {
					t.Fatalf("pick excluding the only usable member: err %v, want ErrNoTarget", err)
				}
			}
			ms[3].st.activeDown.Store(true)
			if m, err := s.Pick([]byte("k"), nil); !errors.Is(err, ErrNoTarget) || m != nil {
				t.Fatalf("all unavailable: got %v, %v; want nil, ErrNoTarget", m, err)
			}
			if ErrNoTarget.Error() != "no healthy target" {
				t.Errorf("ErrNoTarget text %q", ErrNoTarget)
			}
			// Time heals the passive ejection and opens the breaker's probe.
			clk.Advance(10)
			seen := map[int]bool{}
			for i := range 200 {
				m, err := s.Pick(key(i), nil)
				if err != nil {
					t.Fatalf("after recovery, pick %d: %v", i, err)
				}
				seen[memberIndex(s, m)] = true
			}
			if !seen[1] || !seen[2] || seen[0] || seen[3] || seen[4] {
				t.Fatalf("after recovery picked %v; want members 1 (passive over) and 2 (one half-open probe) only", seen)
			}
			if st := ms[2].st.brk.state(); st != circuitHalfOpen {
				t.Errorf("breaker of member 2 is %s, want half_open after its probe was claimed", circuitNames[st])
			}
		})
	}
}

// TestExcludeRetry: a retry that excludes the first member gets another
// one whenever there is one.
func TestExcludeRetry(t *testing.T) {
	for _, bal := range allBalancers {
		t.Run(bal, func(t *testing.T) {
			s := mustService(t, NewRegistry(), ServiceConfig{Name: "excl-" + bal, Balancer: bal, Targets: fakeTargets(5, 1)})
			for i := range 300 {
				k := []byte(strconv.Itoa(i))
				first, err := s.Pick(k, nil)
				if err != nil {
					t.Fatal(err)
				}
				second, err := s.Pick(k, first)
				if err != nil {
					t.Fatal(err)
				}
				if second == first {
					t.Fatalf("retry picked the excluded member %s", first.URL())
				}
			}
		})
	}
}

func TestEmptyService(t *testing.T) {
	for _, bal := range allBalancers {
		s := mustService(t, NewRegistry(), ServiceConfig{Name: "empty-" + bal, Balancer: bal})
		if _, err := s.Pick([]byte("k"), nil); !errors.Is(err, ErrNoTarget) {
			t.Errorf("%s: empty service: err %v, want ErrNoTarget", bal, err)
		}
		d := mustService(t, NewRegistry(), ServiceConfig{Name: "drained-" + bal, Balancer: bal, Targets: fakeTargets(0, 0)})
		if _, err := d.Pick([]byte("k"), nil); !errors.Is(err, ErrNoTarget) {
			t.Errorf("%s: all drained: err %v, want ErrNoTarget", bal, err)
		}
	}
}
