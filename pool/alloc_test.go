package pool

import (
	"testing"
	"time"
)

// TestPickAllocs: Pick allocates nothing, for every balancer, on the plain
// path and when it must skip unavailable members and an excluded one.
func TestPickAllocs(t *testing.T) {
	for _, bal := range allBalancers {
		t.Run(bal, func(t *testing.T) {
			clk := newFakeClock()
			s := mustService(t, newRegistry(clk.Now), ServiceConfig{
				Name: "alloc-" + bal, Balancer: bal,
				Targets: fakeTargets(3, 1, 1, 2, 1, 1, 1, 1, 1, 1),
				Health:  HealthConfig{Passive: &PassiveConfig{UnhealthyAfter: 1, HealthyAfter: time.Hour}},
				Breaker: &BreakerConfig{MinRequests: 1000},
			})
			key := []byte("user-1234")
			if n := testing.AllocsPerRun(1000, func() {
				m, err := s.Pick(key, nil)
				if err != nil {
					t.Fatal(err)
				}
				m.Begin()
				m.End(true, time.Millisecond)
			}); n != 0 {
				t.Errorf("Pick+Begin+End: %.1f allocs, want 0", n)
			}
			ms := s.Members()
			ms[0].st.activeDown.Store(true)
			ms[1].Begin()
			ms[1].End(false, 0) // passive ejection
			ms[2].st.brk.word.Store(packCircuit(0, circuitOpen))
			if n := testing.AllocsPerRun(1000, func() {
				if _, err := s.Pick(key, ms[3]); err != nil {
					t.Fatal(err)
				}
			}); n != 0 {
				t.Errorf("Pick skipping members: %.1f allocs, want 0", n)
			}
		})
	}
}

// TestEndAllocs: End with passive health and the breaker configured, on
// success and failure paths, allocates nothing.
func TestEndAllocs(t *testing.T) {
	s := mustService(t, NewRegistry(), ServiceConfig{
		Name: "alloc-end", Targets: fakeTargets(1),
		Health:  HealthConfig{Passive: &PassiveConfig{UnhealthyAfter: 3}},
		Breaker: &BreakerConfig{MinRequests: 1000},
	})
	m := s.Members()[0]
	ok := false
	if n := testing.AllocsPerRun(1000, func() {
		ok = !ok
		m.Begin()
		m.End(ok, time.Millisecond)
	}); n != 0 {
		t.Errorf("Begin+End: %.1f allocs, want 0", n)
	}
}
