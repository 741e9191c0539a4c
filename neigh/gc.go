package neigh

import (
	"net/netip"
	"time"
)

// addLocked makes an entry in state st and links it first in its list.
func (t *Table) addLocked(addr netip.Addr, st State, now time.Time) *entry {
	e := &entry{addr: addr, state: st, used: now, changed: now}
	t.m[addr] = e
	t.listOf(st).pushFront(e)
	return e
}

func (t *Table) listOf(st State) *lru {
	if st == Incomplete {
		return &t.incomplete
	}
	return &t.resolved
}

// unlinkLocked takes e out of the map and its list, and stops its timer.
func (t *Table) unlinkLocked(e *entry) {
	delete(t.m, e.addr)
	t.listOf(e.state).remove(e)
	t.disarmLocked(e)
}

// evictLocked removes e to make room, releasing what it queued.
func (t *Table) evictLocked(e *entry) {
	t.unlinkLocked(e)
	for _, p := range e.pending {
		t.drop(p)
	}
	e.pending, e.pendingBytes = nil, 0
	t.stats.Evicted.Add(1)
}

// makeRoomLocked makes room for one more entry, incomplete or not, as
// described on Table, and reports whether there is room.
func (t *Table) makeRoomLocked(now time.Time, incomplete bool) bool {
	t.drawReachableLocked(now)
	t.collectIdleLocked(now)
	if incomplete && t.incomplete.n >= t.cfg.MaxIncomplete {
		return t.evictOldIncompleteLocked(now)
	}
	if len(t.m) < t.cfg.MaxEntries {
		return true
	}
	if e := t.resolved.tail; e != nil && t.unconfirmed(e, now) {
		t.evictLocked(e)
		return true
	}
	if t.evictOldIncompleteLocked(now) {
		return true
	}
	if e := t.resolved.tail; e != nil {
		t.evictLocked(e)
		return true
	}
	return false
}

// unconfirmed reports whether e's last confirmation is older than the
// reachable time: it is stale, or on its way to being probed.
func (t *Table) unconfirmed(e *entry, now time.Time) bool {
	return now.Sub(e.confirmed) > t.reachable
}

// collectBatch bounds the idle entries collected per new entry: enough for
// the table to shrink while it churns, few enough to keep the cost flat.
const collectBatch = 4

// collectIdleLocked removes the least recently used entries while they
// are idle for the table's size (Linux's periodic and threshold-2 GC).
func (t *Table) collectIdleLocked(now time.Time) {
	for i := 0; i < collectBatch; i++ {
		e := t.resolved.tail
		if e == nil || !t.idleLocked(e, now) {
			return
		}
		t.unlinkLocked(e)
		t.stats.Collected.Add(1)
	}
}

// idleLocked reports whether e may be collected. The thresholds count
// resolved entries only: incomplete ones are bounded by MaxIncomplete and
// their own retries, and a flood of them must not shed the neighbours.
func (t *Table) idleLocked(e *entry, now time.Time) bool {
	switch n := t.resolved.n; {
	case n >= t.cfg.SoftEntries && t.unconfirmed(e, now):
		return now.Sub(e.used) > t.cfg.GCMinAge
	case n >= t.cfg.MinEntries:
		return now.Sub(e.used) > t.cfg.StaleTime
	}
	return false
}

// evictOldIncompleteLocked evicts the oldest incomplete entry if it has
// had GCMinAge to resolve.
func (t *Table) evictOldIncompleteLocked(now time.Time) bool {
	e := t.incomplete.tail
	if e == nil || now.Sub(e.changed) <= t.cfg.GCMinAge {
		return false
	}
	t.evictLocked(e)
	return true
}

// lru is an intrusive doubly linked list of entries: linking and
// unlinking write a few pointers and allocate nothing.
type lru struct {
	head, tail *entry
	n          int
}

func (l *lru) pushFront(e *entry) {
	e.prev, e.next = nil, l.head
	if l.head != nil {
		l.head.prev = e
	} else {
		l.tail = e
	}
	l.head = e
	l.n++
}

func (l *lru) remove(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = nil, nil
	l.n--
}

func (l *lru) moveToFront(e *entry) {
	if l.head != e {
		l.remove(e)
		l.pushFront(e)
	}
}
