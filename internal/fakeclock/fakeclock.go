// Package fakeclock is a manual clock for tests of code that takes a
// Now func (ARP cache, reassembler, ICMP rate limiter), so timeouts are
// tested without sleeping. Its timers (AfterFunc) fire inside Advance, in
// the order of their deadlines, with the clock set to each deadline.
package fakeclock

import (
	"sync"
	"time"
)

// maxFiresPerAdvance bounds the timers one Advance runs, so that a timer
// re-arming itself with no delay fails the test instead of hanging it.
const maxFiresPerAdvance = 1_000_000

// Clock reads a time that moves only when Advance is called. It is safe for
// concurrent use.
type Clock struct {
	mu     sync.Mutex
	t      time.Time
	timers []*Timer // armed timers
	seq    uint64   // arming order, to fire timers due at once in order
}

// New returns a clock at a fixed, arbitrary instant.
func New() *Clock { return &Clock{t: time.Unix(1_700_000_000, 0)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d, running every timer that falls
// due on the way, each with the clock at its deadline. Timers run in the
// caller's goroutine without the clock's lock, so they may use the clock.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	target := c.t.Add(d)
	c.mu.Unlock()
	for fired := 0; ; fired++ {
		if fired == maxFiresPerAdvance {
			panic("fakeclock: timers keep re-arming without delay")
		}
		c.mu.Lock()
		tm := c.nextDueLocked(target)
		if tm == nil {
			c.t = target
			c.mu.Unlock()
			return
		}
		if tm.when.After(c.t) {
			c.t = tm.when
		}
		c.disarmLocked(tm)
		c.mu.Unlock()
		tm.f()
	}
}

// nextDueLocked returns the armed timer with the earliest deadline not
// after target, the first armed among equals, or nil.
func (c *Clock) nextDueLocked(target time.Time) *Timer {
	var next *Timer
	for _, tm := range c.timers {
		if tm.when.After(target) {
			continue
		}
		if next == nil || tm.when.Before(next.when) || (tm.when.Equal(next.when) && tm.seq < next.seq) {
			next = tm
		}
	}
	return next
}

// AfterFunc returns a timer that calls f in the Advance that reaches d
// from now (d <= 0: the next Advance), like time.AfterFunc.
func (c *Clock) AfterFunc(d time.Duration, f func()) *Timer {
	tm := &Timer{c: c, f: f}
	tm.Reset(d)
	return tm
}

// Timer is a timer of a Clock, made by AfterFunc.
type Timer struct {
	c     *Clock
	f     func()
	when  time.Time
	seq   uint64
	armed bool // guarded by c.mu
}

// Stop disarms the timer and reports whether it was armed, like
// time.Timer.Stop.
func (t *Timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	return t.c.disarmLocked(t)
}

// Reset re-arms the timer to fire d from now and reports whether it was
// armed, like time.Timer.Reset.
func (t *Timer) Reset(d time.Duration) bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	was := c.disarmLocked(t)
	c.seq++
	t.when, t.seq, t.armed = c.t.Add(d), c.seq, true
	c.timers = append(c.timers, t)
	return was
}

// disarmLocked takes t off the armed list and reports whether it was on it.
func (c *Clock) disarmLocked(t *Timer) bool {
	if !t.armed {
		return false
	}
	t.armed = false
	for i, tm := range c.timers {
		if tm == t {
			c.timers = append(c.timers[:i], c.timers[i+1:]...)
			break
		}
	}
	return true
}
