package wasm

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/weirgw/weir/sdk"
)

// slot holds one module instance and the lock that serialises calls into
// it. A request takes a slot's lock for each of its phases (request,
// response, log), not for its whole life: between phases the slot serves
// other requests, whose HTTP contexts live side by side in the same
// instance. A failed instance is dropped (inst = nil) and replaced on the
// slot's next use, so one runaway guest call costs one instance, not the
// pool.
type slot struct {
	mu   sync.Mutex
	inst *instance // nil until created, or after a failure
}

// pool is a fixed set of slots; its size is the plugin's pool_size.
type pool struct {
	slots  []slot
	next   atomic.Uint32
	closed atomic.Bool
}

func newPool(n int) *pool { return &pool{slots: make([]slot, n)} }

// acquire locks a slot for a new request: the first idle one from a
// round-robin starting point, else (all busy) the starting one, waiting
// for it. Callbacks are short and CPU-bound, so waiting for a slot is
// waiting for a core.
func (p *pool) acquire() *slot {
	n := uint32(len(p.slots))
	start := p.next.Add(1) % n
	for i := uint32(0); i < n; i++ {
		s := &p.slots[(start+i)%n]
		if s.mu.TryLock() {
			return s
		}
	}
	s := &p.slots[start]
	s.mu.Lock()
	return s
}

var errClosed = errors.New("the plugin instance is closed (its config was replaced)")

// instance returns s's instance, creating it if needed. s must be locked.
func (s *slot) instance(f *filter) (*instance, error) {
	if s.inst != nil {
		return s.inst, nil
	}
	if f.pool.closed.Load() {
		return nil, errClosed
	}
	in, err := f.newInstance(s)
	if err != nil {
		return nil, err
	}
	s.inst = in
	return in, nil
}

// release unlocks s, first dropping its instance if a call left it spent.
func (s *slot) release() {
	if in := s.inst; in != nil && in.spent {
		s.inst = nil
		in.close()
	}
	s.mu.Unlock()
}

// fill creates the instance of every slot that has none.
func (p *pool) fill(f *filter) error {
	for i := range p.slots {
		s := &p.slots[i]
		s.mu.Lock()
		_, err := s.instance(f)
		s.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// close closes every instance; later requests get errClosed.
func (p *pool) close() {
	p.closed.Store(true)
	for i := range p.slots {
		s := &p.slots[i]
		s.mu.Lock()
		if s.inst != nil {
			s.inst.close()
			s.inst = nil
		}
		s.mu.Unlock()
	}
}

// reqState is what a request keeps between its phases: which instance
// holds its HTTP context, and that context's ID. It is stored on the
// sdk.Ctx under the filter's key and pooled; it is owned by its request
// and returned to the pool by OnLog.
type reqState struct {
	slot *slot
	inst *instance
	id   uint32
	// local: the guest answered the request (proxy_send_local_response)
	// in the request phase.
	local bool
	// path is the :path the guest set, if any (pathSet).
	path    []byte
	pathSet bool
	// props are the properties the guest set with proxy_set_property.
	props []kv
	// HTTP callouts (callout.go): calls in flight, the channel their
	// answers arrive on (made by the first call), whether the guest
	// resumed the request, and the answer being delivered.
	pending int
	done    chan *callout
	resumed bool
	answer  *callout
	// c and ph are the request and phase of its last callback, for a
	// guest that resumes or answers it from another context.
	c  *sdk.Ctx
	ph phase
}

var reqStatePool = sync.Pool{New: func() any { return new(reqState) }}

func acquireReqState() *reqState { return reqStatePool.Get().(*reqState) }

func releaseReqState(rs *reqState) {
	rs.slot, rs.inst, rs.id, rs.local = nil, nil, 0, false
	rs.path, rs.pathSet = rs.path[:0], false
	for i := range rs.props {
		rs.props[i] = kv{}
	}
	rs.props = rs.props[:0]
	rs.pending, rs.done, rs.resumed, rs.answer, rs.c = 0, nil, false, nil, nil
	reqStatePool.Put(rs)
}
