package gonet

import (
	"sync"
	"time"
)

// deadline turns a time into a channel that closes when it passes, so a
// blocked read can select on it. Moving the deadline keeps the same channel
// (a waiting reader sees the new time at once); only a channel that already
// fired is replaced.
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{}
	gen    uint64 // bumped by every set, so a timer that lost the race to Stop does nothing
}

func (d *deadline) init() { d.cancel = make(chan struct{}) }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	select {
	case <-d.cancel:
		d.cancel = make(chan struct{})
	default:
	}
	if t.IsZero() {
		return
	}
	wait := time.Until(t)
	if wait <= 0 {
		close(d.cancel)
		return
	}
	ch, gen := d.cancel, d.gen
	d.timer = time.AfterFunc(wait, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.gen == gen {
			close(ch)
		}
	})
}

// wait returns the channel for a blocking call and whether the deadline has
// already passed.
func (d *deadline) wait() (<-chan struct{}, bool) {
	d.mu.Lock()
	ch := d.cancel
	d.mu.Unlock()
	select {
	case <-ch:
		return ch, true
	default:
		return ch, false
	}
}

func (d *deadline) stop() {
	d.mu.Lock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	d.mu.Unlock()
}
