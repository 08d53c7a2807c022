package ratelimit

import (
	"time"
)

// localStore keeps GCRA buckets in process memory (policy: local, and the
// per-node fallback of policy: redis). Entry slots: [0] latest TAT (the
// expiry), [1+j] the TAT of limit j.
type localStore struct {
	t *table
}

func newLocalStore(maxKeys, nlimits int) *localStore {
	return &localStore{t: newTable(maxKeys, 1+nlimits)}
}

// take decides for key at now under lims (len(lims) is fixed per store).
// It does not allocate when key already has an entry.
func (s *localStore) take(key []byte, now int64, lims []limit, want int64) decision {
	sh := s.t.shardFor(key)
	sh.mu.Lock()
	e := s.t.entry(sh, key, now)
	d := gcraTake(e[1:], now, lims, want)
	if d.granted > 0 {
		e[0] = maxTAT(e[1:])
	}
	sh.mu.Unlock()
	return d
}

// clock is the time source of the in-process stores: monotonic
// nanoseconds. Offset by an hour so that a zero slot (a new entry) is
// always in the past.
var clockBase = time.Now().Add(-time.Hour)

func monoNow() int64 { return int64(time.Since(clockBase)) }
