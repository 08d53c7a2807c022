package pool

import (
	"strconv"
	"testing"
	"time"
)

func benchService(b *testing.B, bal string, n int) *Service {
	b.Helper()
	w := make([]int, n)
	for i := range w {
		w[i] = 100 + i%3*50 // uneven weights: 100, 150, 200
	}
	return mustService(b, NewRegistry(), ServiceConfig{
		Name:     "bench-" + bal + "-" + strconv.Itoa(n),
		Balancer: bal,
		Targets:  fakeTargets(w...),
		Health:   HealthConfig{Passive: &PassiveConfig{}},
		Breaker:  &BreakerConfig{MinRequests: maxMinRequests},
	})
}

// BenchmarkPick: one Pick per op, per balancer and member count.
func BenchmarkPick(b *testing.B) {
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = []byte("user-" + strconv.Itoa(i))
	}
	for _, bal := range allBalancers {
		for _, n := range []int{2, 10, 100} {
			b.Run(bal+"/"+strconv.Itoa(n), func(b *testing.B) {
				s := benchService(b, bal, n)
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, err := s.Pick(keys[i&1023], nil); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		}
	}
}

// BenchmarkPickParallel: Pick from all Ps at once (lock-freedom check).
func BenchmarkPickParallel(b *testing.B) {
	for _, bal := range allBalancers {
		b.Run(bal+"/10", func(b *testing.B) {
			s := benchService(b, bal, 10)
			key := []byte("user-42")
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					m, err := s.Pick(key, nil)
					if err != nil {
						b.Fatal(err)
					}
					m.Begin()
					m.End(true, time.Millisecond)
				}
			})
		})
	}
}

// BenchmarkEnd: Begin+End with passive health and the breaker on.
func BenchmarkEnd(b *testing.B) {
	for _, c := range []struct {
		name string
		ok   bool
	}{{"ok", true}, {"fail", false}} {
		b.Run(c.name, func(b *testing.B) {
			s := benchService(b, "round_robin", 2)
			m := s.Members()[0]
			b.ReportAllocs()
			for b.Loop() {
				m.Begin()
				m.End(c.ok, time.Millisecond)
			}
		})
	}
}

// BenchmarkPickSkipping: round robin over 10 members with 3 unavailable.
func BenchmarkPickSkipping(b *testing.B) {
	for _, bal := range allBalancers {
		b.Run(bal, func(b *testing.B) {
			s := benchService(b, bal, 10)
			for _, m := range s.Members()[:3] {
				m.st.activeDown.Store(true)
			}
			key := []byte("user-42")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Pick(key, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
