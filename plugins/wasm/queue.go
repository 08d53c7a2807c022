package wasm

import (
	"sync"
)

// Shared queues (proxy_register_shared_queue and friends), as Envoy has
// them: a queue is named by the VM ID of the plugin that registers it
// (`vm_id`) and a name, and identified by a token that any plugin of the
// process may resolve (by VM ID and name), enqueue to and dequeue from.
// The root contexts that registered it are told with
// proxy_on_queue_ready(root context, token) that items are there: one
// of them per enqueued item, on a goroutine of its own (the enqueuer
// holds its instance and must not wait for another). Queues and their
// items live as long as the process, so they survive config reloads; a
// filter's registrations end with it (Close).

// Limits of one queue: it is process memory guests control.
const (
	maxQueueItems = 10000
	maxQueueBytes = 16 << 20
	maxQueueName  = 256
)

// sharedQueue is one queue.
type sharedQueue struct {
	token uint32
	mu    sync.Mutex
	items [][]byte
	bytes int
	// ready counts notifications owed to a receiver; delivering says a
	// goroutine is sending them.
	ready      int
	delivering bool
	// receivers are the slots whose instances registered the queue, by
	// filter; the next notification goes to receivers[next%len].
	receivers []receiver
	next      int
}

type receiver struct {
	f *filter
	s *slot
}

// queueRegistry holds every queue of the process.
type queueRegistry struct {
	mu      sync.Mutex
	byName  map[string]*sharedQueue // vm_id + "\x00" + name
	byToken map[uint32]*sharedQueue
	last    uint32
}

var queues = &queueRegistry{byName: map[string]*sharedQueue{}, byToken: map[uint32]*sharedQueue{}}

func queueKey(vmID, name []byte) string { return string(vmID) + "\x00" + string(name) }

// register makes (or finds) the queue vmID/name and records r as one of
// its receivers.
func (qr *queueRegistry) register(vmID, name []byte, r receiver) (uint32, status) {
	if len(name) == 0 || len(name) > maxQueueName {
		return 0, statusBadArgument
	}
	qr.mu.Lock()
	q := qr.byName[queueKey(vmID, name)]
	if q == nil {
		qr.last++
		q = &sharedQueue{token: qr.last}
		qr.byName[queueKey(vmID, name)] = q
		qr.byToken[q.token] = q
	}
	qr.mu.Unlock()
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, x := range q.receivers {
		if x == r {
			return q.token, statusOK
		}
	}
	q.receivers = append(q.receivers, r)
	return q.token, statusOK
}

func (qr *queueRegistry) resolve(vmID, name []byte) (uint32, status) {
	qr.mu.Lock()
	defer qr.mu.Unlock()
	q := qr.byName[queueKey(vmID, name)]
	if q == nil {
		return 0, statusNotFound
	}
	return q.token, statusOK
}

func (qr *queueRegistry) get(token uint32) *sharedQueue {
	qr.mu.Lock()
	defer qr.mu.Unlock()
	return qr.byToken[token]
}

// drop removes f's registrations (f is closing).
func (qr *queueRegistry) drop(f *filter) {
	for _, q := range qr.all() {
		q.mu.Lock()
		q.receivers = removeReceivers(q.receivers, f)
		q.mu.Unlock()
	}
}

func removeReceivers(rs []receiver, f *filter) []receiver {
	out := rs[:0]
	for _, r := range rs {
		if r.f != f {
			out = append(out, r)
		}
	}
	clear(rs[len(out):])
	return out
}

func (qr *queueRegistry) all() []*sharedQueue {
	qr.mu.Lock()
	defer qr.mu.Unlock()
	all := make([]*sharedQueue, 0, len(qr.byToken))
	for _, q := range qr.byToken {
		all = append(all, q)
	}
	return all
}

// kick sends the notifications owed by every queue (a filter has just
// started, and may be the first receiver able to take them).
func (qr *queueRegistry) kick() {
	for _, q := range qr.all() {
		q.mu.Lock()
		q.startDelivery()
		q.mu.Unlock()
	}
}

// enqueue appends a copy of data.
func (q *sharedQueue) enqueue(data []byte) status {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) >= maxQueueItems || q.bytes+len(data) > maxQueueBytes {
		return statusInternalFailure // full: the receiver is not keeping up
	}
	q.items = append(q.items, append([]byte(nil), data...))
	q.bytes += len(data)
	q.ready++
	q.startDelivery()
	return statusOK
}

// dequeue appends the oldest item to dst.
func (q *sharedQueue) dequeue(dst []byte) ([]byte, status) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return dst, statusEmpty
	}
	it := q.items[0]
	q.items[0] = nil
	q.items = q.items[1:]
	q.bytes -= len(it)
	return append(dst, it...), statusOK
}

// startDelivery starts the goroutine that sends owed notifications, if
// there are some, a started receiver and no such goroutine. q.mu is held.
func (q *sharedQueue) startDelivery() {
	if q.delivering || q.ready == 0 || !q.hasReceiver() {
		return
	}
	q.delivering = true
	go q.deliver()
}

func (q *sharedQueue) hasReceiver() bool {
	for _, r := range q.receivers {
		if r.f.started.Load() {
			return true
		}
	}
	return false
}

// deliver calls proxy_on_queue_ready once per owed notification while
// the queue has items (a receiver that emptied it was told enough).
func (q *sharedQueue) deliver() {
	for {
		q.mu.Lock()
		if len(q.items) == 0 {
			q.ready = 0
		}
		var r receiver
		found := false
		for i := 0; i < len(q.receivers) && q.ready > 0; i++ {
			r = q.receivers[(q.next+i)%len(q.receivers)]
			if r.f.started.Load() {
				q.next += i + 1
				found = true
				break
			}
		}
		if !found {
			q.delivering = false
			q.mu.Unlock()
			return
		}
		q.ready--
		q.mu.Unlock()
		r.f.queueReady(r.s, q.token)
	}
}

// queueReady runs proxy_on_queue_ready in s's instance.
func (f *filter) queueReady(s *slot, token uint32) {
	s.mu.Lock()
	in, err := s.instance(f)
	if err != nil || in.onQueueReady == nil {
		s.mu.Unlock()
		return
	}
	in.begin(nil, nil, phaseRoot)
	_, err = in.call(in.onQueueReady, "proxy_on_queue_ready", f.s.timeout, rootContextID, uint64(token), 0)
	in.end()
	s.release()
	if err != nil {
		f.errors.Inc()
		f.log.Error("wasm queue callback failed", "error", err)
	}
}

// --- host functions

func hostRegisterSharedQueue(in *instance, s []uint64) status {
	name, ok := in.read(u32(s, 0), u32(s, 1))
	if !ok || !in.returnSlot(u32(s, 2)) {
		return statusInvalidMemoryAccess
	}
	token, st := queues.register(in.f.s.vmID, name, receiver{in.f, in.slot})
	if st != statusOK {
		return st
	}
	in.mem.WriteUint32Le(u32(s, 2), token)
	return statusOK
}

func hostResolveSharedQueue(in *instance, s []uint64) status {
	vmID, ok1 := in.read(u32(s, 0), u32(s, 1))
	name, ok2 := in.read(u32(s, 2), u32(s, 3))
	if !ok1 || !ok2 || !in.returnSlot(u32(s, 4)) {
		return statusInvalidMemoryAccess
	}
	token, st := queues.resolve(vmID, name)
	if st != statusOK {
		return st
	}
	in.mem.WriteUint32Le(u32(s, 4), token)
	return statusOK
}

func hostEnqueueSharedQueue(in *instance, s []uint64) status {
	data, ok := in.read(u32(s, 1), u32(s, 2))
	if !ok {
		return statusInvalidMemoryAccess
	}
	q := queues.get(u32(s, 0))
	if q == nil {
		return statusNotFound
	}
	return q.enqueue(data)
}

func hostDequeueSharedQueue(in *instance, s []uint64) status {
	if !in.returnSlot(u32(s, 1)) || !in.returnSlot(u32(s, 2)) {
		return statusInvalidMemoryAccess
	}
	q := queues.get(u32(s, 0))
	if q == nil {
		return statusNotFound
	}
	v, st := q.dequeue(in.buf[:0])
	in.buf = v
	if st != statusOK {
		return st
	}
	return in.copyOut(v, u32(s, 1), u32(s, 2))
}
