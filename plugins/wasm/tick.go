package wasm

import (
	"time"
)

// Ticks: proxy_set_tick_period_milliseconds asks for proxy_on_tick on
// the root context every period. Each instance of the pool is a VM of
// its own (as each Envoy worker's is) and gets its own ticks, from one
// goroutine per plugin instance that wakes at the shortest period any
// instance asked for. The goroutine starts with the plugin (Start), or
// when a guest first asks after that, never under `weir validate`, and
// stops in Close.

// setTickPeriod records d (0: no ticks) for in, and starts the ticker
// when the plugin runs.
func (in *instance) setTickPeriod(d time.Duration) {
	in.tickPeriod = d
	if d <= 0 {
		return
	}
	f := in.f
	for {
		cur := f.tickEvery.Load()
		if cur != 0 && cur <= int64(d) {
			break
		}
		if f.tickEvery.CompareAndSwap(cur, int64(d)) {
			break
		}
	}
	if f.started.Load() {
		f.startTicks()
	}
}

func (f *filter) startTicks() {
	if f.tickEvery.Load() > 0 {
		f.tickOnce.Do(func() { go f.tickLoop() })
	}
}

func (f *filter) tickLoop() {
	every := time.Duration(f.tickEvery.Load())
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case now := <-t.C:
			if e := time.Duration(f.tickEvery.Load()); e != every {
				every = e
				t.Reset(e)
			}
			for i := range f.pool.slots {
				f.tick(&f.pool.slots[i], now, every)
			}
		}
	}
}

// tick runs proxy_on_tick in s's instance if its period has passed.
func (f *filter) tick(s *slot, now time.Time, every time.Duration) {
	s.mu.Lock()
	in := s.inst
	if in == nil || in.spent || in.onTick == nil || in.tickPeriod <= 0 || now.Sub(in.lastTick) < in.tickPeriod-every/2 {
		s.mu.Unlock()
		return
	}
	in.lastTick = now
	in.begin(nil, nil, phaseRoot)
	_, err := in.call(in.onTick, "proxy_on_tick", f.s.timeout, rootContextID, 0, 0)
	in.end()
	s.release()
	if err != nil {
		f.errors.Inc()
		f.log.Error("wasm tick failed", "error", err)
	}
}

// pauseWait is how long a request paused with no HTTP call in flight
// waits for a tick to resume it: two tick periods and a callback's
// timeout when the instance ticks, else nothing (it cannot resume).
func (in *instance) pauseWait() time.Duration {
	if in.onTick == nil || in.tickPeriod <= 0 {
		return 0
	}
	return 2*in.tickPeriod + in.f.s.timeout
}

// resumeCurrent marks the request host calls act on as resumed and, if
// it is not the one the callback runs for (a tick or another request
// resuming it), wakes it from settle.
func (in *instance) resumeCurrent() {
	rs := in.rs
	rs.resumed = true
	if rs != in.own && rs.done != nil {
		select {
		case rs.done <- nil:
		default: // a wake is already queued
		}
	}
}
