package gonet

import (
	"sync"
	"time"
)

// deadline turns a time into a channel that closes when it passes, so a
// blocked read can select on it. Moving the deadline keeps the same channel
// (a waiting reader sees the new time at once); only a channel that already
// fired is replaced. One timer is reused, so setting a deadline per read
// (as DNS servers do) does not allocate.
//
// The channel and the timer are made when first needed: a conn that is
// opened, written and closed (or only ever checks its write deadline)
// makes neither. The zero deadline is ready to use.
type deadline struct {
	mu     sync.Mutex // guards the fields below; taken alone
	timer  *time.Timer
	when   time.Time // zero: no deadline
	cancel chan struct{}
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	select {
	case <-d.cancel: // a nil channel (none made yet) is never ready
		d.cancel = make(chan struct{})
	default:
	}
	d.when = t
	if t.IsZero() {
		if d.timer != nil {
			d.timer.Stop()
		}
		return
	}
	if d.cancel == nil {
		d.cancel = make(chan struct{})
	}
	wait := time.Until(t)
	if wait <= 0 {
		close(d.cancel)
		return
	}
	if d.timer == nil {
		d.timer = time.AfterFunc(wait, d.fire)
	} else {
		d.timer.Reset(wait)
	}
}

// fire closes the channel if the deadline it was armed for still stands: a
// timer that lost a race with set must not cut a later deadline short.
func (d *deadline) fire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.when.IsZero() {
		return
	}
	if wait := time.Until(d.when); wait > 0 {
		d.timer.Reset(wait)
		return
	}
	select {
	case <-d.cancel:
	default:
		close(d.cancel)
	}
}

// wait returns the channel for a blocking call and whether the deadline has
// already passed. The channel is made here if need be, since a deadline
// set while the call blocks must wake it.
func (d *deadline) wait() (<-chan struct{}, bool) {
	d.mu.Lock()
	if d.cancel == nil {
		d.cancel = make(chan struct{})
	}
	ch := d.cancel
	d.mu.Unlock()
	select {
	case <-ch:
		return ch, true
	default:
		return ch, false
	}
}

// expired reports whether the deadline has passed, for calls that do not
// block on it.
func (d *deadline) expired() bool {
	d.mu.Lock()
	ch := d.cancel
	d.mu.Unlock()
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func (d *deadline) stop() {
	d.mu.Lock()
	if d.timer != nil {
		d.timer.Stop()
	}
	d.mu.Unlock()
}
