// Package testclock is the settable clock tests drive time with: one type
// for every package whose code takes a clock (breakers and passive health,
// cache freshness, rate-limit buckets), safe for concurrent use.
package testclock

import (
	"sync"
	"time"
)

// Clock stands still until Advance moves it.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a clock reading start.
func New(start time.Time) *Clock { return &Clock{t: start} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// UnixNano is Now in nanoseconds, for code that takes a monotonic
// nanosecond clock.
func (c *Clock) UnixNano() int64 { return c.Now().UnixNano() }

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
