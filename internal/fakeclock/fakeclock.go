// Package fakeclock is a manual clock for tests of code that takes a
// Now func (ARP cache, reassembler, ICMP rate limiter), so timeouts are
// tested without sleeping.
package fakeclock

import (
	"sync"
	"time"
)

// Clock reads a time that moves only when Advance is called. It is safe for
// concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a clock at a fixed, arbitrary instant.
func New() *Clock { return &Clock{t: time.Unix(1_700_000_000, 0)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
