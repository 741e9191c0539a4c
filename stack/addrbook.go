package stack

import (
	"cmp"
	"net/netip"
	"slices"
)

// lo's permanent address, and its broadcast. Both are covered by lo's
// ownership of 127.0.0.0/8 (hasAddress), so they stay out of lo's map,
// which then costs nothing to look in.
var (
	loopbackPrefix    = netip.MustParsePrefix("127.0.0.1/8")
	loopbackBroadcast = netip.MustParseAddr("127.255.255.255")
	loopbackPrefix6   = netip.PrefixFrom(netip.IPv6Loopback(), 128)
)

// addrBook is the writers' record of a NIC's addresses, guarded by the
// stack's mutex. Every change is mirrored into the NIC's lock-free maps
// (local, primaries, firstPrimary) that the packet paths read.
type addrBook struct {
	seq     uint64
	entries map[netip.Prefix]addrEntry
	groups  map[netip.Prefix]*addrGroup // by masked prefix
	first   netip.Prefix                // the oldest primary, if any
	ordered []netip.Prefix              // cached Addresses order; nil when stale
}

type addrEntry struct {
	seq       uint64 // orders primaries among themselves, and secondaries
	secondary bool
}

// addrGroup holds the addresses of one prefix: its primary and its
// secondaries, oldest first (the next to be promoted).
type addrGroup struct {
	primary     netip.Prefix
	secondaries []netip.Prefix
}

// addrUse counts what an address is to a NIC: the address of so many
// assigned prefixes, the broadcast address of so many.
type addrUse struct{ own, broadcast int32 }

// primaryAddr is a prefix's primary address with its age, so that the
// oldest of several matching primaries can be picked.
type primaryAddr struct {
	addr netip.Addr
	seq  uint64
}

// assignLocked records p, making it its prefix's primary (with a connected
// route when route is set) unless the prefix already has one. It reports
// false when p was already assigned.
func (n *NIC) assignLocked(p netip.Prefix, route bool) bool {
	b := &n.addrs
	if b.entries == nil {
		b.entries = make(map[netip.Prefix]addrEntry)
		b.groups = make(map[netip.Prefix]*addrGroup)
	}
	if _, dup := b.entries[p]; dup {
		return false
	}
	b.seq++
	b.ordered = nil
	key := p.Masked()
	g := b.groups[key]
	b.entries[p] = addrEntry{seq: b.seq, secondary: g != nil}
	n.countUseLocked(p, 1)
	if g != nil {
		g.secondaries = append(g.secondaries, p)
		return true
	}
	b.groups[key] = &addrGroup{primary: p}
	n.primaries.set(key, primaryAddr{p.Addr(), b.seq})
	if !b.first.IsValid() && p.Addr().Is4() { // IPv4's source of last resort
		n.setFirstPrimaryLocked(p)
	}
	if route {
		n.s.addRouteLocked(RouteEntry{Dst: key, NIC: n.id, src: p.Addr()})
	}
	return true
}

// unassignLocked forgets p, promoting the oldest secondary of its prefix
// when p was the primary. It reports false when p was not assigned.
func (n *NIC) unassignLocked(p netip.Prefix) bool {
	b := &n.addrs
	e, ok := b.entries[p]
	if !ok {
		return false
	}
	delete(b.entries, p)
	b.ordered = nil
	n.countUseLocked(p, -1)
	key := p.Masked()
	g := b.groups[key]
	if e.secondary {
		if i := slices.Index(g.secondaries, p); i >= 0 {
			g.secondaries = slices.Delete(g.secondaries, i, i+1)
		}
		return true
	}
	if len(g.secondaries) == 0 {
		delete(b.groups, key)
		n.primaries.delete(key)
		n.s.removeConnectedRouteLocked(key, n.id, p.Addr())
	} else {
		// Promotion puts the address after the other primaries, as
		// Linux moves it in the device's address list.
		next := g.secondaries[0]
		g.primary, g.secondaries = next, slices.Delete(g.secondaries, 0, 1)
		b.seq++
		b.entries[next] = addrEntry{seq: b.seq}
		n.primaries.set(key, primaryAddr{next.Addr(), b.seq})
		n.s.moveConnectedSourceLocked(key, n.id, p.Addr(), next.Addr())
	}
	if b.first == p {
		n.setFirstPrimaryLocked(b.oldestPrimary())
	}
	return true
}

// countUseLocked adds delta to the counts of p's address and of its subnet
// broadcast address (prefixes of /31 and /32 have none, RFC 3021).
func (n *NIC) countUseLocked(p netip.Prefix, delta int32) {
	if n.loopback && p == loopbackPrefix {
		return
	}
	u, _ := n.local.get(p.Addr())
	u.own += delta
	n.storeUseLocked(p.Addr(), u)
	if p.Addr().Is4() && p.Bits() < 31 {
		bc := subnetBroadcast(p)
		u, _ := n.local.get(bc)
		u.broadcast += delta
		n.storeUseLocked(bc, u)
	}
}

func (n *NIC) storeUseLocked(a netip.Addr, u addrUse) {
	if u == (addrUse{}) {
		n.local.delete(a)
		return
	}
	n.local.set(a, u)
}

// setFirstPrimaryLocked publishes p (none when invalid) as the source of
// last resort.
func (n *NIC) setFirstPrimaryLocked(p netip.Prefix) {
	n.addrs.first = p
	if !p.IsValid() {
		n.firstPrimary.Store(nil)
		return
	}
	a := p.Addr()
	n.firstPrimary.Store(&a)
}

// oldestPrimary scans the prefixes for the primary added (or promoted)
// first; only removing the current oldest needs it.
func (b *addrBook) oldestPrimary() netip.Prefix {
	var best netip.Prefix
	var bestSeq uint64
	for _, g := range b.groups {
		if !g.primary.Addr().Is4() {
			continue
		}
		if s := b.entries[g.primary].seq; !best.IsValid() || s < bestSeq {
			best, bestSeq = g.primary, s
		}
	}
	return best
}

// orderedLocked returns the addresses as Linux lists them, primaries then
// secondaries, each in the order they were added (or promoted). The result
// is cached until the next change and must not be modified.
func (b *addrBook) orderedLocked() []netip.Prefix {
	if b.ordered != nil {
		return b.ordered
	}
	type item struct {
		p netip.Prefix
		e addrEntry
	}
	items := make([]item, 0, len(b.entries))
	for p, e := range b.entries {
		items = append(items, item{p, e})
	}
	slices.SortFunc(items, func(x, y item) int {
		if x.e.secondary != y.e.secondary {
			if x.e.secondary {
				return 1
			}
			return -1
		}
		return cmp.Compare(x.e.seq, y.e.seq)
	})
	b.ordered = make([]netip.Prefix, len(items))
	for i, it := range items {
		b.ordered[i] = it.p
	}
	return b.ordered
}
