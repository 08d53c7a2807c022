package pool

import (
	"errors"
	"sync"
)

// ErrNoTarget is returned by Pick when no member can take the request: none
// registered, all drained, unhealthy or circuit-open, or the only usable
// one is the excluded member. The proxy answers 503 "no healthy target".
//
// The pool fails closed on purpose: when every target is unhealthy it does
// not try one anyway (Envoy's panic mode), because the gateway promises 503 for
// that case and a fast 503 beats piling requests onto targets known to be
// failing. Passive ejections end by themselves after HealthyAfter and
// breakers half-open after OpenFor, so traffic resumes without an operator.
var ErrNoTarget = errors.New("no healthy target")

// Service is one service of one config snapshot: its members and their
// balancer, both immutable (a change of targets, discovery included, is a
// new snapshot with a new Service). Pick is safe for concurrent use and
// lock-free; Start and Close serialize on an internal mutex.
type Service struct {
	reg     *Registry
	spec    *serviceSpec
	members []*Member
	bal     balancer

	mu      sync.Mutex
	started bool
	closed  bool
}

// NewService validates cfg and builds the service, taking references on
// the registry's target states (creating them, with their gauges, when
// new). It starts no goroutine and does no I/O, so a config
// can be validated by building its services and closing them.
func (r *Registry) NewService(cfg ServiceConfig) (*Service, error) {
	sp, err := compileService(cfg)
	if err != nil {
		return nil, err
	}
	s := &Service{reg: r, spec: sp}
	members := make([]*Member, len(sp.targets))
	r.mu.Lock()
	for i, t := range sp.targets {
		members[i] = s.newMemberLocked(t, sp.weights[i])
	}
	r.mu.Unlock()
	s.members, s.bal = members, newBalancer(sp.kind, members)
	return s, nil
}

func (s *Service) newMemberLocked(t target, weight int) *Member {
	r := s.reg
	return &Member{
		svc:    s,
		t:      t,
		weight: weight,
		st:     r.acquireStateLocked(s.spec.name, t),
	}
}

// Name is the service name.
func (s *Service) Name() string { return s.spec.name }

// Balancer is the balancer's config name.
func (s *Service) Balancer() string { return s.spec.kind.String() }

// Start begins active health checks for every member (when configured).
// Idempotent. A checker already running for the same service, target and
// check settings (the previous snapshot's) is shared, not duplicated, and
// keeps its state; one with different settings is replaced.
//
// Start also hands the shared state over to this snapshot's settings: with
// no breaker configured an open circuit is closed, with no passive check a
// passive ejection is lifted, since nothing would ever end them.
func (s *Service) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return
	}
	s.started = true
	for _, m := range s.members {
		s.startMemberLocked(m)
	}
}

func (s *Service) startMemberLocked(m *Member) {
	st := m.st
	if s.spec.breaker == nil && st.brk.state() != circuitClosed {
		st.brk.reset(s.reg.clock())
	}
	if s.spec.passive == nil {
		st.passiveUntil.Store(0)
		st.consecFail.Store(0)
	}
	if a := s.spec.active; a != nil {
		m.chk = s.reg.acquireChecker(st, m.t, *a, s.spec.tls)
	}
}

// Close stops what Start started (a shared checker only when this was its
// last user, waiting for its goroutine to exit) and releases the
// service's references; target states nobody else holds are dropped,
// with their gauges. Members already picked stay
// usable for the requests in flight. Idempotent.
func (s *Service) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	for _, m := range s.members {
		s.stopMemberLocked(m)
	}
	s.reg.mu.Lock()
	for _, m := range s.members {
		s.reg.releaseStateLocked(m.st)
	}
	s.reg.mu.Unlock()
}

func (s *Service) stopMemberLocked(m *Member) {
	if m.chk != nil {
		s.reg.releaseChecker(m.st, m.chk)
		m.chk = nil
	}
}

// Pick chooses a member for one request with the service's balancer.
// hashKey is the consistent_hash key (ignored by the other balancers; an
// empty key picks by weight at random). exclude is the member a retry must
// avoid (nil on the first try). It returns ErrNoTarget when no member is
// usable. Pick does not count the request: call Begin on the member before
// forwarding. Zero allocations, no locks.
func (s *Service) Pick(hashKey []byte, exclude *Member) (*Member, error) {
	if m := s.bal.pick(hashKey, exclude); m != nil {
		return m, nil
	}
	return nil, ErrNoTarget
}

// Members returns the current member list (shared, read-only).
func (s *Service) Members() []*Member { return s.members }

// Status reports every member for the admin API
// (GET /services/{name}/health). It allocates; not for the request path.
func (s *Service) Status() []MemberStatus {
	out := make([]MemberStatus, len(s.members))
	for i, m := range s.members {
		out[i] = m.status()
	}
	return out
}
