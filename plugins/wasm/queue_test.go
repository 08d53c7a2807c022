package wasm

import (
	"fmt"
	"testing"
)

// TestHostSharedQueue: register (in the plugin's vm_id, "" here),
// resolve by VM ID and name, enqueue, dequeue in order, Empty when
// drained, NotFound for an unknown token or name, and a bounded size.
func TestHostSharedQueue(t *testing.T) {
	h := newHarness(t, phaseRoot)
	name := fmt.Sprintf("q-%p", h) // the registry outlives the test: a fresh name
	if st := h.call(hostResolveSharedQueue, args(h.put("", name), 24)...); st != statusNotFound {
		t.Fatalf("resolve before register: %d", st)
	}
	if st := h.call(hostRegisterSharedQueue, args(h.put(name), 24)...); st != statusOK {
		t.Fatalf("register: %d", st)
	}
	token, _ := h.in.mem.ReadUint32Le(24)
	if st := h.call(hostRegisterSharedQueue, args(h.put(name), 28)...); st != statusOK {
		t.Fatalf("register again: %d", st)
	}
	if again, _ := h.in.mem.ReadUint32Le(28); again != token {
		t.Fatalf("registering twice gave tokens %d and %d", token, again)
	}
	if st := h.call(hostResolveSharedQueue, args(h.put("", name), 28)...); st != statusOK {
		t.Fatalf("resolve: %d", st)
	}
	if got, _ := h.in.mem.ReadUint32Le(28); got != token {
		t.Fatalf("resolved %d, registered %d", got, token)
	}
	if st := h.call(hostResolveSharedQueue, args(h.put("other-vm", name), 28)...); st != statusNotFound {
		t.Fatalf("resolve in another VM ID: %d", st)
	}
	for _, v := range []string{"a", "bb"} {
		if st := h.call(hostEnqueueSharedQueue, args(token, h.put(v))...); st != statusOK {
			t.Fatalf("enqueue %s: %d", v, st)
		}
	}
	for _, want := range []string{"a", "bb"} {
		if st := h.call(hostDequeueSharedQueue, args(token, hRet, hRetSz)...); st != statusOK || string(h.out()) != want {
			t.Fatalf("dequeue = %q (%d), want %q", h.out(), st, want)
		}
	}
	if st := h.call(hostDequeueSharedQueue, args(token, hRet, hRetSz)...); st != statusEmpty {
		t.Fatalf("dequeue from an empty queue: %d", st)
	}
	if st := h.call(hostEnqueueSharedQueue, args(token+1000, h.put("x"))...); st != statusNotFound {
		t.Fatalf("enqueue to an unknown token: %d", st)
	}
	// Bounded: the filter is not started, so nothing drains the queue.
	q := queues.get(token)
	for i := 0; i < maxQueueItems; i++ {
		if st := q.enqueue([]byte("x")); st != statusOK {
			t.Fatalf("item %d: %d", i, st)
		}
	}
	if st := h.call(hostEnqueueSharedQueue, args(token, h.put("x"))...); st != statusInternalFailure {
		t.Fatalf("enqueue to a full queue: %d", st)
	}
	if st := h.call(hostDequeueSharedQueue, args(token, hRet, hRetSz)...); st != statusOK {
		t.Fatalf("dequeue from a full queue: %d", st)
	}
	if st := h.call(hostEnqueueSharedQueue, args(token, h.put("y"))...); st != statusOK {
		t.Fatalf("enqueue after a dequeue made room: %d", st)
	}
	h.f.Close()
	if len(q.receivers) != 0 {
		t.Fatalf("a closed filter is still a receiver: %d", len(q.receivers))
	}
}
