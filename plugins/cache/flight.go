package cache

import (
	"hash/maphash"
	"sync"
	"time"
)

// Request collapsing. The first request that misses (or must revalidate)
// a key becomes the leader of a flight and goes upstream; requests for the
// same key that arrive meanwhile wait, bounded by lock_timeout, and then
// look the key up again: they are served the leader's response as a HIT
// when it was stored, and go upstream themselves when it was not (or when
// it does not match their Vary headers).
//
// A leader whose response turned out not to be storable leaves a short
// "pass" mark (hitForPass) so that the next wave of requests for an
// uncacheable URL goes straight upstream instead of queueing behind one
// another (Varnish's hit-for-pass).

const (
	flightShards = 64
	hitForPass   = 10 * time.Second
	maxPassMarks = 4096 // per shard; beyond that the oldest marks are dropped
)

type flight struct {
	done    chan struct{}
	started int64 // Unix ns; a flight older than lock_timeout is abandoned
	stored  bool  // set before done is closed
}

type flightShard struct {
	mu      sync.Mutex
	flights map[string]*flight
	pass    map[string]int64 // key -> until (Unix ns)
}

type flightGroup struct {
	seed   maphash.Seed
	shards [flightShards]flightShard
}

func newFlightGroup() *flightGroup {
	g := &flightGroup{seed: maphash.MakeSeed()}
	for i := range g.shards {
		g.shards[i].flights = map[string]*flight{}
		g.shards[i].pass = map[string]int64{}
	}
	return g
}

func (g *flightGroup) shard(key []byte) *flightShard {
	return &g.shards[maphash.Bytes(g.seed, key)%flightShards]
}

// join returns the flight for key and whether the caller leads it. A
// flight older than timeout is presumed lost (its leader never reported)
// and taken over. pass reports a recent uncacheable response for key: the
// caller should go upstream without leading or waiting.
func (g *flightGroup) join(key []byte, now int64, timeout time.Duration) (f *flight, leader, pass bool) {
	sh := g.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if until, ok := sh.pass[string(key)]; ok {
		if now < until {
			return nil, false, true
		}
		delete(sh.pass, string(key))
	}
	if f := sh.flights[string(key)]; f != nil && now-f.started < int64(timeout) {
		return f, false, false
	}
	f = &flight{done: make(chan struct{}), started: now}
	sh.flights[string(key)] = f
	return f, true, false
}

// busy reports whether a flight for key is under way (a revalidation
// another request leads), without joining it.
func (g *flightGroup) busy(key []byte, now int64, timeout time.Duration) bool {
	sh := g.shard(key)
	sh.mu.Lock()
	f := sh.flights[string(key)]
	sh.mu.Unlock()
	return f != nil && now-f.started < int64(timeout)
}

// finish ends a flight the caller leads, waking its followers. stored
// says whether the leader's response is now in the store; when it is not,
// the key is marked pass for hitForPass.
func (g *flightGroup) finish(key []byte, f *flight, stored bool, now int64) {
	sh := g.shard(key)
	sh.mu.Lock()
	if sh.flights[string(key)] == f {
		delete(sh.flights, string(key))
	}
	if stored {
		delete(sh.pass, string(key))
	} else {
		if len(sh.pass) >= maxPassMarks {
			for k, until := range sh.pass {
				if now >= until || len(sh.pass) >= maxPassMarks {
					delete(sh.pass, k)
				}
			}
		}
		sh.pass[string(key)] = now + int64(hitForPass)
	}
	sh.mu.Unlock()
	f.stored = stored
	close(f.done)
}

// clearPass forgets a pass mark once a response for key was stored.
func (g *flightGroup) clearPass(key []byte) {
	sh := g.shard(key)
	sh.mu.Lock()
	if len(sh.pass) > 0 {
		delete(sh.pass, string(key))
	}
	sh.mu.Unlock()
}

// wait blocks until f is finished or timeout passes; it reports whether
// the leader finished in time.
func (f *flight) wait(timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-f.done:
		return true
	case <-t.C:
		return false
	}
}
