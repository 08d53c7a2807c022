package pool

import "sync/atomic"

// Circuit states. The breaker of a target is shared by every snapshot of
// its service (it lives in the registry's targetState).
const (
	circuitClosed   = 0 // requests flow; outcomes are counted
	circuitOpen     = 1 // no requests until OpenFor has passed
	circuitHalfOpen = 2 // one probe request is out; its outcome decides
)

var circuitNames = [...]string{"closed", "open", "half_open"}

// The failure window is nBuckets buckets of Window/nBuckets each, so a
// window slides in steps of a tenth of its length. Each bucket is one
// uint64, updated with compare-and-swap, so End never takes a lock:
//
//	bits 63..40  bucket index (time / width), modulo 2^24
//	bits 39..20  requests in the bucket (saturates at 2^20-1)
//	bits 19..0   failures in the bucket
const (
	nBuckets       = 10
	idxShift       = 40
	idxMask        = 1<<24 - 1
	cntBits        = 20
	cntMask        = 1<<cntBits - 1
	maxMinRequests = 1_000_000 // below nBuckets * cntMask, so a window can always reach it
)

// breaker is a lock-free circuit breaker:
//
//	closed --(failures/requests >= ratio over >= minRequests in window)--> open
//	open --(openFor elapsed; the next Pick claims the probe)--> half_open
//	half_open --(probe ok)--> closed (window cleared)
//	half_open --(probe failed)--> open (for openFor again)
//	half_open --(no outcome within openFor: probe lost)--> half_open, a new probe
//
// Times are nanoseconds of the registry clock (see Registry.clock), so
// tests drive it with a fake clock.
type breaker struct {
	// word packs the state (low 2 bits) with the time of the last
	// transition (the rest), so a reader never sees one without the other.
	word    atomic.Int64
	buckets [nBuckets]atomic.Uint64
}

func packCircuit(since int64, state int64) int64 { return since<<2 | state }

func (b *breaker) state() int { return int(b.word.Load() & 3) }

// admission says whether a request may go to the target now:
// ready (closed), notReady (open or probe out), or probeReady (the open
// period is over, or a half-open probe was lost, and whoever claims the
// probe may send one request).
func (b *breaker) admission(c *breakerCfg, now int64) int {
	w := b.word.Load()
	if w&3 == circuitClosed {
		return ready
	}
	if now-w>>2 < c.openFor {
		return notReady
	}
	return probeReady
}

// claimProbe moves an expired open (or lost half-open) breaker to
// half-open at now; only one caller wins. It reports whether the caller
// may send a request.
func (b *breaker) claimProbe(c *breakerCfg, now int64) bool {
	for {
		w := b.word.Load()
		if w&3 == circuitClosed {
			return true
		}
		if now-w>>2 < c.openFor {
			return false
		}
		if b.word.CompareAndSwap(w, packCircuit(now, circuitHalfOpen)) {
			return true
		}
	}
}

// record counts one outcome. In the open state outcomes are ignored (they
// come from requests sent before the breaker opened); in half-open the
// first outcome decides, whichever request it comes from.
func (b *breaker) record(c *breakerCfg, ok bool, now int64) {
	w := b.word.Load()
	switch w & 3 {
	case circuitOpen:
		return
	case circuitHalfOpen:
		if ok {
			if b.word.CompareAndSwap(w, packCircuit(now, circuitClosed)) {
				b.clearWindow()
			}
		} else {
			b.word.CompareAndSwap(w, packCircuit(now, circuitOpen))
		}
		return
	}
	idx := uint64(now/c.width) & idxMask
	b.add(idx, ok)
	if ok {
		return // a success never makes the ratio worse
	}
	total, fails := b.sum(idx)
	if total >= c.minRequests && float64(fails) >= c.ratio*float64(total) {
		b.word.CompareAndSwap(w, packCircuit(now, circuitOpen))
	}
}

func (b *breaker) add(idx uint64, ok bool) {
	bk := &b.buckets[idx%nBuckets]
	for {
		old := bk.Load()
		var total, fails uint64
		if old>>idxShift == idx {
			total, fails = old>>cntBits&cntMask, old&cntMask
		}
		if total < cntMask {
			total++
			if !ok {
				fails++
			}
		}
		if bk.CompareAndSwap(old, idx<<idxShift|total<<cntBits|fails) {
			return
		}
	}
}

// sum adds the buckets of the window ending at bucket idx.
func (b *breaker) sum(idx uint64) (total, fails uint64) {
	for i := range b.buckets {
		v := b.buckets[i].Load()
		if (idx-v>>idxShift)&idxMask < nBuckets {
			total += v >> cntBits & cntMask
			fails += v & cntMask
		}
	}
	return total, fails
}

func (b *breaker) clearWindow() {
	for i := range b.buckets {
		b.buckets[i].Store(0)
	}
}

// reset closes the breaker; used when a snapshot without a breaker takes
// over, so a stale open state neither blocks traffic nor shows in metrics.
func (b *breaker) reset(now int64) {
	b.word.Store(packCircuit(now, circuitClosed))
	b.clearWindow()
}
