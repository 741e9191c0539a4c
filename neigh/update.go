package neigh

import (
	"net/netip"
	"time"

	"github.com/tapnet/tapnet/ethernet"
)

// Update is what a received packet says about a neighbour's link address.
// Its flags are those of RFC 4861's neighbour advertisement and Linux's
// neigh_update; the rules they drive are RFC 4861 §7.2.3–§7.2.6:
//
//   - neighbour advertisement: Solicited and Override from its S and O
//     flags, Router from R, NoMAC without a target link-layer address;
//   - neighbour solicitation, router solicitation and advertisement,
//     redirect with a link-layer address: Create and Override (a new or
//     changed address makes the entry stale), Router IsRouter for a router
//     advertisement;
//   - ARP (see arp.Cache.Learn): Override, subject to LockTime, with
//     Solicited only for a reply unicast to us; a request aimed at us adds
//     Create and IgnoreLockTime; a gratuitous ARP IgnoreLockTime.
type Update struct {
	MAC ethernet.MAC
	// NoMAC: the packet carried no link-layer address. It can confirm an
	// entry but not resolve one.
	NoMAC bool
	// Solicited: the packet answers our solicitation, so the neighbour is
	// reachable (the entry becomes Reachable). Otherwise a new or changed
	// address makes the entry Stale and an unchanged one keeps its state.
	Solicited bool
	// Override: a different address replaces the cached one. Without it,
	// a different address only makes a reachable entry stale.
	Override bool
	// IgnoreLockTime lets Override replace an address within LockTime of
	// its last change (Linux: gratuitous ARP, a request aimed at us).
	IgnoreLockTime bool
	// Create: the packet may make an entry when there is none. Answers do
	// not (Linux's arp_accept=0, RFC 4861 §7.2.5), so that unsolicited
	// traffic cannot fill the table.
	Create bool
	// Router is what the packet says of the neighbour being a router.
	Router RouterFlag
}

// RouterFlag is an Update's news of a neighbour's IsRouter flag.
type RouterFlag uint8

const (
	// RouterUnknown: the packet says nothing; the flag is kept (false on
	// a new entry).
	RouterUnknown RouterFlag = iota
	// IsRouter: the neighbour is a router.
	IsRouter
	// NotRouter: the neighbour is a host.
	NotRouter
)

// Update applies what a packet says about addr, as described on Update.
func (t *Table) Update(addr netip.Addr, u Update) {
	t.mu.Lock()
	now := t.cfg.Now()
	e := t.m[addr]
	switch {
	case e == nil:
		t.createLocked(addr, u, now)
		return
	case e.state == Incomplete:
		t.completeLocked(e, u, now)
		return
	}
	t.expireLocked(e, now)
	changes := !u.NoMAC && u.MAC != e.mac
	switch {
	case changes && u.Override && !u.IgnoreLockTime && t.lockedLocked(e, now):
		t.mu.Unlock()
		t.stats.LockTimeIgnored.Add(1)
		return
	case changes && !u.Override:
		// RFC 4861 §7.2.5: keep the address, but doubt it.
		doubt := e.state == Reachable
		if doubt {
			t.setStateLocked(e, Stale, now)
		}
		t.mu.Unlock()
		if doubt {
			t.stats.Updates.Add(1)
		}
		return
	}
	if changes {
		e.mac = u.MAC
		e.changed = now
	}
	switch {
	case u.Solicited:
		t.confirmLocked(e, now)
	case changes:
		t.setStateLocked(e, Stale, now)
		t.disarmLocked(e)
	}
	lost := t.setRouterLocked(e, u.Router)
	t.mu.Unlock()
	t.stats.Updates.Add(1)
	t.routerLost(addr, lost)
}

// createLocked makes an entry for addr if u may, Reachable when solicited
// and Stale otherwise. It unlocks the table.
func (t *Table) createLocked(addr netip.Addr, u Update, now time.Time) {
	if !u.Create || u.NoMAC || t.closed || !t.makeRoomLocked(now, false) {
		t.mu.Unlock()
		t.stats.UnsolicitedSeen.Add(1)
		return
	}
	st := Stale
	if u.Solicited {
		st = Reachable
	}
	e := t.addLocked(addr, st, now)
	e.mac = u.MAC
	if u.Solicited {
		e.confirmed = now
	}
	t.setRouterLocked(e, u.Router)
	t.mu.Unlock()
	t.stats.Updates.Add(1)
}

// completeLocked resolves an incomplete entry with u's address and sends
// what waited for it. Packets sent on an unconfirmed address use it, so a
// stale entry with packets enters Delay at once. It unlocks the table.
func (t *Table) completeLocked(e *entry, u Update, now time.Time) {
	if u.NoMAC {
		t.mu.Unlock() // RFC 4861 §7.2.5: nothing to resolve with
		return
	}
	t.disarmLocked(e)
	t.incomplete.remove(e)
	t.resolved.pushFront(e)
	e.mac, e.used = u.MAC, now
	if u.Solicited {
		e.confirmed = now
		t.setStateLocked(e, Reachable, now)
	} else {
		t.setStateLocked(e, Stale, now)
	}
	t.setRouterLocked(e, u.Router)
	pkts := e.pending
	e.pending, e.pendingBytes = nil, 0
	if len(pkts) > 0 {
		if e.state == Stale {
			t.useLocked(e, now)
		}
		t.flushLocked(e, pkts)
	}
	t.mu.Unlock()
	t.stats.Resolved.Add(1)
	t.stats.Updates.Add(1)
}

// setRouterLocked applies r to e and reports whether e stopped being a
// router.
func (t *Table) setRouterLocked(e *entry, r RouterFlag) bool {
	if r == RouterUnknown {
		return false
	}
	was := e.router
	e.router = r == IsRouter
	return was && !e.router
}

func (t *Table) routerLost(addr netip.Addr, lost bool) {
	if lost && t.hooks.RouterLost != nil {
		t.hooks.RouterLost(addr)
	}
}

// lockedLocked reports whether e must keep its address against another:
// it changed no longer ago than LockTime (Linux overrides only once
// jiffies are strictly after updated + locktime).
func (t *Table) lockedLocked(e *entry, now time.Time) bool {
	return t.cfg.LockTime > 0 && !now.After(e.changed.Add(t.cfg.LockTime))
}

// flushLocked sends the packets that waited for e. Doing it under the lock
// keeps them ahead of any a writer sends once it sees the entry resolved.
func (t *Table) flushLocked(e *entry, pkts []Pending) {
	if t.hooks.Resolved == nil {
		for _, p := range pkts {
			t.drop(p)
		}
		return
	}
	t.hooks.Resolved(e.addr, e.mac, pkts)
}
