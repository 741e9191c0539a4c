package stack

import (
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
)

// The demultiplexer maps received datagrams to endpoints in constant time
// whatever the number of bindings, the way Linux's UDP tables do: a
// datagram is matched first against connected bindings by its exact
// 4-tuple, then against bindings to its destination address, then against
// bindings to any address (Linux's hash4, then hslot2 for daddr, then for
// INADDR_ANY). Within one of those buckets the most specific binding wins
// (bound to the arrival NIC beats unbound), and ties go to the earliest
// bound.
//
// Locking: ports are grouped 64 to a group, and each group has its own
// RWMutex. The receive path read-locks one group per datagram; bind,
// connect and close write-lock one group for O(1) work. So readers only
// ever wait for a short write to one of the same 64 ports, and writers on
// different groups (ephemeral ports are random) run in parallel. A
// copy-on-write table read through atomic pointers would spare readers
// even that, but would make every bind on a busy port copy what the port
// holds (50,000 connected sockets sharing a server port) or need a
// persistent hash map; measured, the read lock costs the receive path
// about as much as one map probe.
//
// A binding's local address says which datagrams it takes, as Linux's
// socket families and IPV6_V6ONLY do: an invalid address takes every
// datagram of either family (a dual-stack socket on the wildcard), the
// unspecified address of a family takes that family's (0.0.0.0, or :: with
// IPV6_V6ONLY), any other address only datagrams to it. IPv4-mapped
// addresses never reach the demux: the socket layer unmaps them.

const (
	portsPerGroup = 64 // one word of the used-port bitmap
	portGroups    = 1 << 16 / portsPerGroup
)

// demux holds the bindings of every transport protocol.
type demux struct {
	tablesMu sync.Mutex // serializes creating a protocol's table; taken alone
	tables   [256]atomic.Pointer[portTable]
	closed   atomic.Bool // set by Stack.Close, so no binding slips in after
}

// portTable holds one protocol's bindings.
type portTable struct {
	groups [portGroups]atomic.Pointer[portGroup]
	// used has a bit set for each port with at least one binding. A word
	// covers exactly one group and changes only under its lock, so the
	// ephemeral port search reads it without locks, as a hint it then
	// confirms under the group's lock.
	used [portGroups]atomic.Uint64
}

// portGroup holds the bindings of 64 consecutive ports.
type portGroup struct {
	// mu guards ports and the group's word of portTable.used. One group
	// is locked at a time, and endpoints call in holding their own lock
	// (bind, connect, close), so it comes after theirs.
	mu    sync.RWMutex
	ports [portsPerGroup]*portEntry
}

// smallPort is how many bindings a port keeps in one list, scanned as
// the kernel scans a hash chain, before it gets the maps that make every
// operation O(1). Most ports have one binding, and maps would cost an idle
// socket several hundred bytes.
const smallPort = 8

// portEntry holds the bindings of one local port.
type portEntry struct {
	n    int        // bindings
	seq  uint64     // bind order
	list *binding   // every binding, until the port is indexed
	idx  *portIndex // once the port held more than smallPort bindings

	// first is storage for one binding, used whenever it is free, so
	// that a port with one binding (most ports) costs one allocation.
	first     binding
	firstUsed bool
}

// portIndex holds a busy port's bindings in buckets by what a datagram
// matches them on; each binding is in exactly one bucket list.
type portIndex struct {
	all       useCounts                  // every binding
	anyFamily useCounts                  // those on any address of either family
	family    [2]useCounts               // those of one family (by familyIndex), wildcard or not
	wild      [2]useCounts               // those on any address of one family
	addrs     map[[16]byte]portAddrEntry // by local address, as bytes like connKey
	connected map[connKey]*binding       // connected, by 4-tuple
	wildcard  *binding                   // the rest, on any local address
	byEP      map[TransportEndpoint]*binding
}

// portAddrEntry is what a busy port holds for one local address.
type portAddrEntry struct {
	use         useCounts // every binding to the address, connected or not
	unconnected *binding  // those not in the 4-tuple map
}

// useCounts are what bind's conflict check needs to know of a set of
// bindings: how many, and how many refuse sharing.
type useCounts struct{ n, exclusive int }

func (c *useCounts) add(b *binding, delta int) {
	c.n += delta
	if !b.reuse {
		c.exclusive += delta
	}
}

// conflictsWith reports whether a new binding, with or without reuse,
// clashes with these: both sides must allow reuse to share.
func (c useCounts) conflictsWith(reuse bool) bool {
	if reuse {
		return c.exclusive > 0
	}
	return c.n > 0
}

// connKey is a connected binding's 4-tuple (the local port is implied),
// as plain bytes so that the map hashes it in one pass. Addresses that
// differ only in zone share a key; the score check tells them apart.
type connKey struct {
	local, remote [16]byte
	remotePort    uint16
}

func makeConnKey(local netip.Addr, remote netip.AddrPort) connKey {
	return connKey{local.As16(), remote.Addr().As16(), remote.Port()}
}

type binding struct {
	id         TransportID
	ep         TransportEndpoint
	reuse      bool
	nic        NICID    // bound to a device; 0 for any
	seq        uint64   // bind order on the port; ties go to the earliest
	prev, next *binding // in its list
}

// connected reports whether b belongs in the 4-tuple map. A connect always
// narrows the local address, so the other case does not arise in practice;
// it is kept with the wildcard bindings, where its score still applies.
func (b *binding) connected() bool {
	return isSpecific(b.id.LocalAddr) && b.id.RemoteAddr.IsValid()
}

// isSpecific reports whether a binding to local address a takes only
// datagrams to a, rather than to any address (of one family or both).
func isSpecific(a netip.Addr) bool { return a.IsValid() && !a.IsUnspecified() }

// familyIndex is 0 for IPv4 addresses and 1 for IPv6.
func familyIndex(a netip.Addr) int {
	if a.Is4() {
		return 0
	}
	return 1
}

// overlaps reports whether bindings to local addresses a and b (invalid:
// either family) could both take some datagram, which is when they
// conflict unless both allow reuse.
func overlaps(a, b netip.Addr) bool {
	switch {
	case !a.IsValid() || !b.IsValid():
		return true
	case a.Is4() != b.Is4():
		return false
	case a.IsUnspecified() || b.IsUnspecified():
		return true
	}
	return a.WithZone("") == b.WithZone("")
}

func (b *binding) connKey() connKey {
	return makeConnKey(b.id.LocalAddr, netip.AddrPortFrom(b.id.RemoteAddr, b.id.RemotePort))
}

// score reports whether b accepts a datagram (-1 if not), and how
// specifically, as Linux's compute_score.
//
// An IPv4 wildcard outranks a dual-stack one by 1 for IPv4, as Linux
// prefers an AF_INET socket to an AF_INET6 one.
func (b *binding) score(local, remote netip.AddrPort, nic NICID) int {
	s := 1
	switch la := b.id.LocalAddr; {
	case !la.IsValid():
	case la.Is4() != local.Addr().Is4():
		return -1
	case la.IsUnspecified():
		if la.Is4() {
			s++
		}
	default:
		if la != local.Addr() {
			return -1
		}
		s += 4
	}
	if b.id.RemoteAddr.IsValid() {
		if b.id.RemoteAddr != remote.Addr() {
			return -1
		}
		s += 4
	}
	if b.id.RemotePort != 0 {
		if b.id.RemotePort != remote.Port() {
			return -1
		}
		s += 4
	}
	if b.nic != 0 {
		if b.nic != nic {
			return -1
		}
		s += 4
	}
	return s
}

// rank orders the bindings accepting a unicast datagram as Linux's lookup
// does: any bound to the destination address (connected or not) before any
// bound to the wildcard, then by score.
func (b *binding) rank(local, remote netip.AddrPort, nic NICID) int {
	s := b.score(local, remote, nic)
	if s >= 0 && isSpecific(b.id.LocalAddr) {
		s += 32
	}
	return s
}

// best returns the binding of a list that ranks highest for a datagram,
// the earliest bound among equals; nil if none accepts it.
func best(list *binding, local, remote netip.AddrPort, nic NICID) *binding {
	var top *binding
	topRank := -1
	for b := list; b != nil; b = b.next {
		r := b.rank(local, remote, nic)
		if r > topRank || r == topRank && r >= 0 && b.seq < top.seq {
			top, topRank = b, r
		}
	}
	return top
}

// appendMatching appends the endpoints of a list that accept a datagram.
func appendMatching(dst []TransportEndpoint, list *binding, local, remote netip.AddrPort, nic NICID) []TransportEndpoint {
	for b := list; b != nil; b = b.next {
		if b.score(local, remote, nic) >= 0 {
			dst = append(dst, b.ep)
		}
	}
	return dst
}

// push puts b at the head of a list.
func push(head **binding, b *binding) {
	b.prev, b.next = nil, *head
	if *head != nil {
		(*head).prev = b
	}
	*head = b
}

// unlink takes b out of a list.
func unlink(head **binding, b *binding) {
	if b.prev != nil {
		b.prev.next = b.next
	} else {
		*head = b.next
	}
	if b.next != nil {
		b.next.prev = b.prev
	}
	b.prev, b.next = nil, nil
}

// lookup returns the binding for a unicast datagram.
func (pe *portEntry) lookup(local, remote netip.AddrPort, nic NICID) *binding {
	if pe.idx == nil {
		return best(pe.list, local, remote, nic)
	}
	return pe.idx.lookup(local, remote, nic)
}

// lookup probes the buckets in Linux's order: exact 4-tuple, then the
// destination address, then any address. Every binding of an earlier
// bucket ranks above every one of a later bucket.
func (x *portIndex) lookup(local, remote netip.AddrPort, nic NICID) *binding {
	if len(x.connected) > 0 {
		if b := best(x.connected[makeConnKey(local.Addr(), remote)], local, remote, nic); b != nil {
			return b
		}
	}
	if len(x.addrs) > 0 {
		if b := best(x.addrs[local.Addr().As16()].unconnected, local, remote, nic); b != nil {
			return b
		}
	}
	return best(x.wildcard, local, remote, nic)
}

// appendAll appends every endpoint accepting a datagram. Of a busy port,
// only the buckets probed hold bindings that can: any other binding has a
// different local address or a different peer.
func (pe *portEntry) appendAll(dst []TransportEndpoint, local, remote netip.AddrPort, nic NICID) []TransportEndpoint {
	x := pe.idx
	if x == nil {
		return appendMatching(dst, pe.list, local, remote, nic)
	}
	if len(x.connected) > 0 {
		dst = appendMatching(dst, x.connected[makeConnKey(local.Addr(), remote)], local, remote, nic)
	}
	if len(x.addrs) > 0 {
		dst = appendMatching(dst, x.addrs[local.Addr().As16()].unconnected, local, remote, nic)
	}
	return appendMatching(dst, x.wildcard, local, remote, nic)
}

// conflicts reports whether a new binding to addr (invalid: any address
// of either family) clashes with the port's: overlapping local addresses,
// unless both sides allow reuse. So a dual-stack wildcard clashes with
// every IPv4 and IPv6 binding, as on Linux, and 0.0.0.0 with :: only
// when the latter is dual-stack.
func (pe *portEntry) conflicts(addr netip.Addr, reuse bool) bool {
	if pe == nil {
		return false
	}
	if x := pe.idx; x != nil {
		return x.conflicts(addr, reuse)
	}
	for b := pe.list; b != nil; b = b.next {
		if b.reuse && reuse {
			continue
		}
		if overlaps(b.id.LocalAddr, addr) {
			return true
		}
	}
	return false
}

// conflicts is portEntry.conflicts on a busy port, from its counts.
func (x *portIndex) conflicts(addr netip.Addr, reuse bool) bool {
	if !addr.IsValid() {
		return x.all.conflictsWith(reuse)
	}
	f := familyIndex(addr)
	if x.anyFamily.conflictsWith(reuse) {
		return true
	}
	if addr.IsUnspecified() {
		return x.family[f].conflictsWith(reuse)
	}
	return x.wild[f].conflictsWith(reuse) || x.addrs[addr.As16()].use.conflictsWith(reuse)
}

// find returns ep's binding, or nil.
func (pe *portEntry) find(ep TransportEndpoint) *binding {
	if pe.idx != nil {
		return pe.idx.byEP[ep]
	}
	for b := pe.list; b != nil; b = b.next {
		if b.ep == ep {
			return b
		}
	}
	return nil
}

// add files a new binding.
func (pe *portEntry) add(b *binding) {
	pe.n++
	pe.seq++
	b.seq = pe.seq
	if pe.idx == nil && pe.n > smallPort {
		pe.index()
	}
	if pe.idx == nil {
		push(&pe.list, b)
		return
	}
	pe.idx.byEP[b.ep] = b
	pe.idx.attach(b)
}

// index moves the port's bindings from its list into buckets.
func (pe *portEntry) index() {
	x := &portIndex{byEP: make(map[TransportEndpoint]*binding, 2*smallPort)}
	for b := pe.list; b != nil; {
		next := b.next
		x.byEP[b.ep] = b
		x.attach(b)
		b = next
	}
	pe.list, pe.idx = nil, x
}

// remove takes b off the port.
func (pe *portEntry) remove(b *binding) {
	pe.n--
	if pe.idx == nil {
		unlink(&pe.list, b)
		return
	}
	delete(pe.idx.byEP, b.ep)
	pe.idx.detach(b)
}

// free returns a removed binding's record: the port's own is cleared, so
// that it holds no closed endpoint, and can serve the next bind.
func (pe *portEntry) free(b *binding) {
	if b == &pe.first {
		pe.first = binding{}
		pe.firstUsed = false
	}
}

// rebind changes b's id; its seniority stays.
func (pe *portEntry) rebind(b *binding, id TransportID) {
	if pe.idx == nil {
		b.id = id
		return
	}
	pe.idx.detach(b)
	b.id = id
	pe.idx.attach(b)
}

// attach files b in its bucket, counting it.
func (x *portIndex) attach(b *binding) {
	x.count(b, 1)
	if !isSpecific(b.id.LocalAddr) {
		push(&x.wildcard, b)
		return
	}
	if x.addrs == nil {
		x.addrs = make(map[[16]byte]portAddrEntry)
	}
	a := b.id.LocalAddr.As16()
	ae := x.addrs[a]
	ae.use.add(b, 1)
	if !b.connected() {
		push(&ae.unconnected, b)
	} else {
		if x.connected == nil {
			x.connected = make(map[connKey]*binding)
		}
		k := b.connKey()
		head := x.connected[k]
		push(&head, b)
		x.connected[k] = head
	}
	x.addrs[a] = ae
}

// count adds delta to the counts b is in: all, and by its address's
// family and wildcard kind.
func (x *portIndex) count(b *binding, delta int) {
	x.all.add(b, delta)
	la := b.id.LocalAddr
	if !la.IsValid() {
		x.anyFamily.add(b, delta)
		return
	}
	f := familyIndex(la)
	x.family[f].add(b, delta)
	if la.IsUnspecified() {
		x.wild[f].add(b, delta)
	}
}

// detach undoes attach.
func (x *portIndex) detach(b *binding) {
	x.count(b, -1)
	if !isSpecific(b.id.LocalAddr) {
		unlink(&x.wildcard, b)
		return
	}
	a := b.id.LocalAddr.As16()
	ae := x.addrs[a]
	ae.use.add(b, -1)
	if !b.connected() {
		unlink(&ae.unconnected, b)
	} else {
		k := b.connKey()
		head := x.connected[k]
		unlink(&head, b)
		if head != nil {
			x.connected[k] = head
		} else {
			delete(x.connected, k)
		}
	}
	if ae.use.n > 0 {
		x.addrs[a] = ae
	} else {
		delete(x.addrs, a)
	}
}

// table returns proto's bindings, creating them when create is set.
func (d *demux) table(proto uint8, create bool) *portTable {
	if t := d.tables[proto].Load(); t != nil || !create {
		return t
	}
	d.tablesMu.Lock()
	defer d.tablesMu.Unlock()
	t := d.tables[proto].Load()
	if t == nil {
		t = &portTable{}
		d.tables[proto].Store(t)
	}
	return t
}

// group returns the group holding port, creating it when create is set.
func (t *portTable) group(port uint16, create bool) *portGroup {
	slot := &t.groups[port/portsPerGroup]
	if g := slot.Load(); g != nil || !create {
		return g
	}
	slot.CompareAndSwap(nil, &portGroup{})
	return slot.Load()
}

// bindLocked adds a binding to port, whose group the caller holds locked.
func (t *portTable) bindLocked(g *portGroup, id TransportID, ep TransportEndpoint, reuse bool, nic NICID) {
	i := id.LocalPort % portsPerGroup
	pe := g.ports[i]
	if pe == nil {
		pe = &portEntry{}
		g.ports[i] = pe
		w := &t.used[id.LocalPort/portsPerGroup]
		w.Store(w.Load() | 1<<i)
	}
	pe.add(pe.newBinding(id, ep, reuse, nic))
}

// newBinding returns a binding record, the port's own when it is free.
func (pe *portEntry) newBinding(id TransportID, ep TransportEndpoint, reuse bool, nic NICID) *binding {
	b := &pe.first
	if pe.firstUsed {
		b = new(binding)
	} else {
		pe.firstUsed = true
	}
	*b = binding{id: id, ep: ep, reuse: reuse, nic: nic}
	return b
}

// unbindLocked removes ep's binding from port, whose group the caller
// holds locked.
func (t *portTable) unbindLocked(g *portGroup, port uint16, ep TransportEndpoint) {
	i := port % portsPerGroup
	pe := g.ports[i]
	if pe == nil {
		return
	}
	b := pe.find(ep)
	if b == nil {
		return
	}
	pe.remove(b)
	pe.free(b)
	if pe.n == 0 {
		g.ports[i] = nil
		w := &t.used[port/portsPerGroup]
		w.Store(w.Load() &^ (1 << i))
	}
}

// register binds ep to id, picking an ephemeral port when id has none.
func (d *demux) register(proto uint8, id TransportID, ep TransportEndpoint, reuse bool, nic NICID) (TransportID, error) {
	if d.closed.Load() {
		return id, ErrStackClosed
	}
	t := d.table(proto, true)
	if id.LocalPort == 0 {
		return d.registerEphemeral(t, id, ep, reuse, nic)
	}
	g := t.group(id.LocalPort, true)
	g.mu.Lock()
	defer g.mu.Unlock()
	if d.closed.Load() {
		return id, ErrStackClosed
	}
	if g.ports[id.LocalPort%portsPerGroup].conflicts(id.LocalAddr, reuse) {
		return id, syscall.EADDRINUSE
	}
	t.bindLocked(g, id, ep, reuse, nic)
	return id, nil
}

// registerEphemeral binds ep to a port of the ephemeral range that no
// binding uses, searched from a random start through the used bitmap (64
// ports a word, so a nearly full range costs a few hundred word reads).
// Only when none is free does it look for a port it can share: one whose
// bindings are all on other addresses, or all allow reuse, as Linux's
// udp_lib_get_port would pick. It fails with EADDRINUSE, bind's error;
// the implicit bind of connect or send reports EAGAIN instead, as Linux's
// autobind does.
func (d *demux) registerEphemeral(t *portTable, id TransportID, ep TransportEndpoint, reuse bool, nic NICID) (TransportID, error) {
	start := EphemeralMin + rand.IntN(EphemeralMax-EphemeralMin+1)
	try := func(p int) (bool, error) {
		id.LocalPort = uint16(p)
		g := t.group(id.LocalPort, true)
		g.mu.Lock()
		defer g.mu.Unlock()
		if d.closed.Load() {
			return false, ErrStackClosed
		}
		if g.ports[id.LocalPort%portsPerGroup].conflicts(id.LocalAddr, reuse) {
			return false, nil
		}
		t.bindLocked(g, id, ep, reuse, nic)
		return true, nil
	}
	for _, r := range [2][2]int{{start, EphemeralMax}, {EphemeralMin, start - 1}} {
		for p := t.nextUnused(r[0], r[1]); p >= 0; p = t.nextUnused(p+1, r[1]) {
			if ok, err := try(p); ok || err != nil {
				return id, err
			}
		}
	}
	if id.LocalAddr.IsValid() || reuse {
		for i := range EphemeralMax - EphemeralMin + 1 {
			p := EphemeralMin + (start-EphemeralMin+i)%(EphemeralMax-EphemeralMin+1)
			if ok, err := try(p); ok || err != nil {
				return id, err
			}
		}
	}
	id.LocalPort = 0
	return id, syscall.EADDRINUSE
}

// nextUnused returns the first port in [from, to] with no binding, by the
// used bitmap, or -1.
func (t *portTable) nextUnused(from, to int) int {
	for w := from / portsPerGroup; w <= to/portsPerGroup; w++ {
		free := ^t.used[w].Load()
		if lo := w * portsPerGroup; from > lo {
			free &= ^uint64(0) << (from - lo)
		}
		if free == 0 {
			continue
		}
		p := w*portsPerGroup + bits.TrailingZeros64(free)
		if p > to {
			return -1
		}
		return p
	}
	return -1
}

// replace moves ep's binding to a new id on the same port (connect and
// disconnect), keeping its seniority, with no conflict check. Readers
// see either the old binding or the new one, never neither.
func (d *demux) replace(proto uint8, old, id TransportID, ep TransportEndpoint) {
	t := d.table(proto, false)
	if t == nil {
		return
	}
	g := t.group(old.LocalPort, false)
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	pe := g.ports[old.LocalPort%portsPerGroup]
	if pe == nil {
		return
	}
	if b := pe.find(ep); b != nil {
		id.LocalPort = old.LocalPort
		pe.rebind(b, id)
	}
}

func (d *demux) unregister(proto uint8, id TransportID, ep TransportEndpoint) {
	t := d.table(proto, false)
	if t == nil {
		return
	}
	g := t.group(id.LocalPort, false)
	if g == nil {
		return
	}
	g.mu.Lock()
	t.unbindLocked(g, id.LocalPort, ep)
	g.mu.Unlock()
}

// readPort read-locks the group of a port and returns its bindings (nil
// if none) and the group to unlock (nil if there is none).
func (d *demux) readPort(proto uint8, port uint16) (*portEntry, *portGroup) {
	t := d.tables[proto].Load()
	if t == nil {
		return nil, nil
	}
	g := t.groups[port/portsPerGroup].Load()
	if g == nil {
		return nil, nil
	}
	g.mu.RLock()
	return g.ports[port%portsPerGroup], g
}

// lookup returns the best endpoint for a unicast datagram.
func (d *demux) lookup(proto uint8, local, remote netip.AddrPort, nic NICID) TransportEndpoint {
	pe, g := d.readPort(proto, local.Port())
	if g == nil {
		return nil
	}
	var ep TransportEndpoint
	if pe != nil {
		if b := pe.lookup(local, remote, nic); b != nil {
			ep = b.ep
		}
	}
	g.mu.RUnlock()
	return ep
}

// lookupAll appends every endpoint accepting a broadcast or multicast
// datagram to dst.
func (d *demux) lookupAll(dst []TransportEndpoint, proto uint8, local, remote netip.AddrPort, nic NICID) []TransportEndpoint {
	pe, g := d.readPort(proto, local.Port())
	if g == nil {
		return dst
	}
	if pe != nil {
		dst = pe.appendAll(dst, local, remote, nic)
	}
	g.mu.RUnlock()
	return dst
}

// closeAll refuses further bindings and returns every bound endpoint.
func (d *demux) closeAll() []TransportEndpoint {
	d.closed.Store(true)
	var out []TransportEndpoint
	for i := range d.tables {
		t := d.tables[i].Load()
		if t == nil {
			continue
		}
		for j := range t.groups {
			g := t.groups[j].Load()
			if g == nil {
				continue
			}
			// A register that saw the demux open finishes under this
			// lock, so its binding is collected here.
			g.mu.Lock()
			for _, pe := range g.ports {
				if pe == nil {
					continue
				}
				out = pe.appendEndpoints(out)
			}
			g.mu.Unlock()
		}
	}
	return out
}

// appendEndpoints appends the endpoint of every binding.
func (pe *portEntry) appendEndpoints(dst []TransportEndpoint) []TransportEndpoint {
	if pe.idx == nil {
		for b := pe.list; b != nil; b = b.next {
			dst = append(dst, b.ep)
		}
		return dst
	}
	for ep := range pe.idx.byEP {
		dst = append(dst, ep)
	}
	return dst
}
