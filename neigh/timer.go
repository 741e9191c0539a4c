package neigh

import (
	"net/netip"
	"time"

	"github.com/tapnet/tapnet/ethernet"
)

// Each entry has at most one timer, made on first need and re-armed after:
// it retransmits solicitations in Incomplete and Probe and ends Delay.

// armLocked (re)starts e's timer to fire d from now.
func (t *Table) armLocked(e *entry, d time.Duration) {
	t.disarmLocked(e)
	if e.timer == nil {
		e.timer = t.cfg.AfterFunc(d, func() { t.fire(e) })
	} else {
		e.timer.Reset(d)
	}
	e.timerArmed = true
}

// disarmLocked stops e's timer. A callback that already began waits for
// the lock; it is counted so that it does nothing when it gets it.
func (t *Table) disarmLocked(e *entry) {
	if !e.timerArmed {
		return
	}
	e.timerArmed = false
	if !e.timer.Stop() {
		e.staleFires++
	}
}

// fire runs e's timer: the next step of resolution, of Delay or of Probe.
func (t *Table) fire(e *entry) {
	t.mu.Lock()
	if e.staleFires > 0 {
		e.staleFires--
		t.mu.Unlock()
		return
	}
	e.timerArmed = false
	if t.closed || t.m[e.addr] != e {
		t.mu.Unlock()
		return
	}
	now := t.cfg.Now()
	switch e.state {
	case Incomplete:
		t.retransmitLocked(e, t.cfg.MaxMulticastProbes, ethernet.MAC{})
	case Probe:
		t.retransmitLocked(e, t.cfg.MaxUnicastProbes, e.mac)
	case Delay:
		t.endDelayLocked(e, now)
	default:
		t.mu.Unlock()
	}
}

// retransmitLocked sends the next of limit solicitations to dst, or fails
// e when they have all gone unanswered. It unlocks the table.
func (t *Table) retransmitLocked(e *entry, limit int, dst ethernet.MAC) {
	if e.probes >= limit {
		t.failLocked(e)
		return
	}
	e.probes++
	t.armLocked(e, t.cfg.RetransTime)
	t.mu.Unlock()
	t.solicit(e.addr, dst)
}

// endDelayLocked ends e's Delay: reachable if confirmed meanwhile (Linux
// counts a confirmation within DelayFirstProbeTime), else the first
// unicast probe. It unlocks the table.
func (t *Table) endDelayLocked(e *entry, now time.Time) {
	if !now.After(e.confirmed.Add(t.cfg.DelayFirstProbeTime)) {
		t.setStateLocked(e, Reachable, now)
		t.mu.Unlock()
		return
	}
	t.setStateLocked(e, Probe, now)
	e.probes = 1
	t.armLocked(e, t.cfg.RetransTime)
	mac := e.mac
	t.mu.Unlock()
	t.solicit(e.addr, mac)
}

// failLocked removes e, which got no answer (Linux's NUD_FAILED), and hands
// its queued packets to Hooks.Failed. It unlocks the table.
func (t *Table) failLocked(e *entry) {
	t.unlinkLocked(e)
	pkts := e.pending
	e.pending, e.pendingBytes = nil, 0
	addr := e.addr
	t.mu.Unlock()
	t.stats.Failed.Add(1)
	t.stats.PendingDropped.Add(uint64(len(pkts)))
	t.failed(addr, pkts)
}

func (t *Table) failed(addr netip.Addr, pkts []Pending) {
	if t.hooks.Failed != nil {
		t.hooks.Failed(addr, pkts)
		return
	}
	for _, p := range pkts {
		p.Release()
	}
}
