package pool

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestDiscoveryUnderConcurrentPick adds and removes targets while other
// goroutines pick (run with -race). A pick never fails while a permanent
// target is there, and never returns a member that was never registered.
func TestDiscoveryUnderConcurrentPick(t *testing.T) {
	checkLeaks(t)
	for _, bal := range allBalancers {
		t.Run(bal, func(t *testing.T) {
			r := NewRegistry()
			s := mustService(t, r, ServiceConfig{Name: "disc-" + bal, Balancer: bal, Targets: fakeTargets(1)})
			permanent := s.Members()[0].URL()
			valid := sync.Map{}
			valid.Store(permanent, true)
			for i := 1; i <= 8; i++ {
				valid.Store("http://127.0.0.1:"+strconv.Itoa(20000+i), true)
			}

			var stop atomic.Bool
			var picks atomic.Int64
			errs := make(chan error, 4)
			var wg sync.WaitGroup
			for g := range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					key := []byte("k" + strconv.Itoa(g))
					for !stop.Load() {
						m, err := s.Pick(key, nil)
						if err != nil {
							errs <- fmt.Errorf("pick: %w", err)
							return
						}
						if _, ok := valid.Load(m.URL()); !ok {
							errs <- fmt.Errorf("picked unknown target %s", m.URL())
							return
						}
						m.Begin()
						m.End(true, time.Microsecond)
						picks.Add(1)
					}
				}()
			}
			for round := range 40 {
				u := "http://127.0.0.1:" + strconv.Itoa(20001+round%8)
				if err := s.AddTarget(TargetConfig{URL: u, Weight: 1 + round%3}); err != nil {
					t.Fatal(err)
				}
				if round%2 == 1 {
					if err := s.RemoveTarget(u); err != nil {
						t.Fatal(err)
					}
					if err := s.RemoveTarget("http://127.0.0.1:" + strconv.Itoa(20001+(round-1)%8)); err != nil {
						t.Fatal(err)
					}
				}
				time.Sleep(time.Millisecond)
			}
			stop.Store(true)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if picks.Load() == 0 {
				t.Fatal("no pick ran during the discovery changes")
			}
			if got := len(s.Members()); got != 1 {
				t.Fatalf("%d members left, want the permanent one", got)
			}
			if len(r.states) != 1 || len(r.clients) != 1 {
				t.Fatalf("removed targets left %d states, %d clients", len(r.states), len(r.clients))
			}
		})
	}
}

func TestDiscoveryErrors(t *testing.T) {
	s := mustService(t, NewRegistry(), ServiceConfig{Name: "disc-err", Targets: fakeTargets(1)})
	cases := []struct {
		name string
		do   func() error
		err  string
	}{
		{"add duplicate", func() error { return s.AddTarget(TargetConfig{URL: "http://127.0.0.1:20000/", Weight: 1}) },
			`adding target "http://127.0.0.1:20000/": service "disc-err" already has it`},
		{"add bad url", func() error { return s.AddTarget(TargetConfig{URL: "http://x/y", Weight: 1}) },
			`target "http://x/y": url must not have a path, query or fragment (give scheme://host:port only)`},
		{"add bad weight", func() error { return s.AddTarget(TargetConfig{URL: "http://x", Weight: -3}) },
			`target "http://x": weight -3 must be between 0 and 65535`},
		{"remove unknown", func() error { return s.RemoveTarget("http://127.0.0.1:1") },
			`removing target "http://127.0.0.1:1": service "disc-err" has no such target`},
		{"remove bad url", func() error { return s.RemoveTarget("nope") },
			`target "nope": url must start with http://, https://, h2c://, grpc://, h2:// or grpcs://`},
	}
	for _, c := range cases {
		err := c.do()
		if err == nil || err.Error() != c.err {
			t.Errorf("%s: error %v, want %q", c.name, err, c.err)
		}
	}
	s.Close()
	if err := s.AddTarget(TargetConfig{URL: "http://127.0.0.1:1", Weight: 1}); err == nil ||
		err.Error() != `adding target "http://127.0.0.1:1": service "disc-err" is closed` {
		t.Errorf("add after close: %v", err)
	}
	if err := s.RemoveTarget("http://127.0.0.1:20000"); err == nil ||
		err.Error() != `removing target "http://127.0.0.1:20000": service "disc-err" is closed` {
		t.Errorf("remove after close: %v", err)
	}
}

// TestDiscoveryStartsAndStopsChecks: a target added to a started service is
// probed at once; a removed one stops being probed; a removed member keeps
// working for the request that holds it.
func TestDiscoveryStartsAndStopsChecks(t *testing.T) {
	checkLeaks(t)
	a, b := newUpstream(t), newUpstream(t)
	s := mustService(t, NewRegistry(), ServiceConfig{
		Name:                "disc-check",
		Targets:             []TargetConfig{{URL: a.URL, Weight: 1}},
		MaxIdleConnDuration: 50 * time.Millisecond,
		Health:              HealthConfig{Active: fastActive()},
	})
	s.Start()
	if err := s.AddTarget(TargetConfig{URL: b.URL, Weight: 1}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "probes of the added target", func() bool { return b.probes.Load() >= 2 })
	held, err := s.Pick(nil, nil)
	for err == nil && held.URL() != b.URL {
		held, err = s.Pick(nil, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveTarget(b.URL); err != nil {
		t.Fatal(err)
	}
	n := b.probes.Load()
	time.Sleep(60 * time.Millisecond)
	if got := b.probes.Load(); got > n+1 {
		t.Fatalf("removed target still probed: %d more", got-n)
	}
	forward(t, held, "/in-flight-after-removal")
	for range 20 {
		if m, _ := s.Pick(nil, nil); m.URL() == b.URL {
			t.Fatal("picked a removed target")
		}
	}
	b.status.Store(http.StatusInternalServerError) // no effect on anything now
	if _, err := s.Pick(nil, nil); errors.Is(err, ErrNoTarget) {
		t.Fatal("the remaining target became unavailable")
	}
}
