package pool

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/weirgw/weir/internal/testclock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// checkLeaks verifies, after the test and all its cleanups (servers,
// services), that no goroutine it started is left.
func checkLeaks(t *testing.T) {
	t.Helper()
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
}

// newFakeClock drives breakers and passive health in tests.
func newFakeClock() *testclock.Clock { return testclock.New(time.Unix(1_700_000_000, 0)) }

// upstream is a real HTTP server on 127.0.0.1 whose status can be switched
// and whose health-check hits are counted.
type upstream struct {
	*httptest.Server
	status atomic.Int32
	probes atomic.Int64 // requests to /healthz
	hits   atomic.Int64 // other requests
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	u.status.Store(http.StatusOK)
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			u.probes.Add(1)
		} else {
			u.hits.Add(1)
		}
		w.Header().Set("X-Seen-Host", r.Host)
		w.Header().Set("X-Seen-UA", r.Header.Get("User-Agent"))
		w.WriteHeader(int(u.status.Load()))
		w.Write([]byte("hello from " + r.URL.Path))
	}))
	t.Cleanup(u.Close)
	return u
}

// newServer is a plain real HTTP server on 127.0.0.1.
func newServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// eventually polls cond every 5ms for at most d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fakeTargets returns n target configs on unused loopback ports; nothing is
// dialled in tests that only pick.
func fakeTargets(weights ...int) []TargetConfig {
	ts := make([]TargetConfig, len(weights))
	for i, w := range weights {
		ts[i] = TargetConfig{URL: "http://127.0.0.1:" + strconv.Itoa(20000+i), Weight: w}
	}
	return ts
}

func mustService(t testing.TB, r *Registry, cfg ServiceConfig) *Service {
	t.Helper()
	s, err := r.NewService(cfg)
	if err != nil {
		t.Fatalf("NewService: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// memberIndex maps a member to its position in the service's list.
func memberIndex(s *Service, m *Member) int {
	for i, x := range s.Members() {
		if x == m {
			return i
		}
	}
	return -1
}

// countPicks picks n times (Begin and End at once) and counts per member
// index.
func countPicks(t testing.TB, s *Service, n int, key func(i int) []byte) []int {
	t.Helper()
	counts := make([]int, len(s.Members()))
	for i := range n {
		var k []byte
		if key != nil {
			k = key(i)
		}
		m, err := s.Pick(k, nil)
		if err != nil {
			t.Fatalf("pick %d: %v", i, err)
		}
		counts[memberIndex(s, m)]++
	}
	return counts
}
