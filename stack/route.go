package stack

import (
	"cmp"
	"net/netip"
	"slices"
	"syscall"

	"github.com/tapnet/tapnet/ipv4"
)

// RouteEntry is one line of the route table: datagrams to Dst go out of NIC,
// through Gateway when it is set (else directly to the destination).
type RouteEntry struct {
	Dst     netip.Prefix
	Gateway netip.Addr
	NIC     NICID
	src     netip.Addr // preferred source, set for connected routes
}

// AddRoute adds a route. A default gateway is AddRoute(RouteEntry{Dst:
// netip.MustParsePrefix("0.0.0.0/0"), Gateway: gw, NIC: id}).
//
// IPv6 routes work alike (AddRoute(RouteEntry{Dst: netip.MustParsePrefix("::/0"),
// Gateway: routerLinkLocal, NIC: id})); their gateway is usually a
// link-local address, which the NIC makes unambiguous.
func (s *Stack) AddRoute(r RouteEntry) error {
	if !validRouteDst(r.Dst) || s.NIC(r.NIC) == nil {
		return syscall.EINVAL
	}
	if r.Gateway.IsValid() && r.Gateway.Is4() != r.Dst.Addr().Is4() {
		return syscall.EINVAL
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addRouteLocked(r)
	return nil
}

// RemoveRoute removes the route to r.Dst through r.NIC with r.Gateway (the
// one AddRoute added). It fails with ESRCH, as `ip route del` does, when
// there is none.
func (s *Stack) RemoveRoute(r RouteEntry) error {
	if !validRouteDst(r.Dst) {
		return syscall.EINVAL
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.removeRouteLocked(r) {
		return syscall.ESRCH
	}
	return nil
}

// removeRouteLocked removes the route AddRoute added for r and reports
// whether there was one.
func (s *Stack) removeRouteLocked(r RouteEntry) bool {
	dst := r.Dst.Masked()
	old, _ := s.routes.byDst.get(dst)
	i := slices.IndexFunc(old, func(x routeSlot) bool {
		return x.NIC == r.NIC && x.Gateway == r.Gateway && !x.src.IsValid()
	})
	if i < 0 {
		return false
	}
	if len(old) == 1 {
		s.routes.byDst.delete(dst)
	} else {
		s.routes.byDst.set(dst, slices.Delete(slices.Clone(old), i, i+1))
	}
	return true
}

// SetDefaultGateway routes every destination without a more specific route
// through gw, which must be on one of nic's connected prefixes.
// An IPv6 gw makes the IPv6 default route (::/0).
func (s *Stack) SetDefaultGateway(nic NICID, gw netip.Addr) error {
	if gw.Is6() {
		return s.AddRoute(RouteEntry{Dst: netip.PrefixFrom(netip.IPv6Unspecified(), 0), Gateway: gw, NIC: nic})
	}
	return s.AddRoute(RouteEntry{Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Gateway: gw, NIC: nic})
}

// validRouteDst reports whether p can be a route's destination: an IPv4
// or IPv6 (not IPv4-mapped) prefix without a zone.
func validRouteDst(p netip.Prefix) bool {
	return p.IsValid() && !p.Addr().Is4In6() && p.Addr().Zone() == ""
}

// routeTable holds the routes by destination prefix, so that a lookup
// costs one probe per prefix length in use, not one per route. Writes are
// guarded by the stack's mutex; lookups take no lock.
type routeTable struct {
	seq   uint64 // writers only
	byDst prefixMap[[]routeSlot]
}

// routeSlot is a route with its insertion number: among routes to the same
// prefix (through different NICs), the oldest wins a lookup, and Routes
// lists routes of equal length in that order.
type routeSlot struct {
	RouteEntry
	seq uint64
}

// addRouteLocked adds r, replacing any route to the same prefix through the
// same NIC.
func (s *Stack) addRouteLocked(r RouteEntry) {
	r.Dst = r.Dst.Masked()
	s.routes.seq++
	old, _ := s.routes.byDst.get(r.Dst)
	slots := make([]routeSlot, 0, len(old)+1)
	for _, x := range old {
		if x.NIC != r.NIC {
			slots = append(slots, x)
		}
	}
	s.routes.byDst.set(r.Dst, append(slots, routeSlot{r, s.routes.seq}))
}

// removeConnectedRouteLocked removes the connected route to dst through nic
// whose preferred source is src; a route the user put in its place stays.
func (s *Stack) removeConnectedRouteLocked(dst netip.Prefix, nic NICID, src netip.Addr) {
	old, _ := s.routes.byDst.get(dst)
	slots := make([]routeSlot, 0, len(old))
	for _, x := range old {
		if x.NIC != nic || x.src != src {
			slots = append(slots, x)
		}
	}
	switch {
	case len(slots) == len(old):
	case len(slots) == 0:
		s.routes.byDst.delete(dst)
	default:
		s.routes.byDst.set(dst, slots)
	}
}

// moveConnectedSourceLocked gives the connected route to dst through nic a
// new preferred source (a promoted secondary), keeping its place.
func (s *Stack) moveConnectedSourceLocked(dst netip.Prefix, nic NICID, from, to netip.Addr) {
	old, _ := s.routes.byDst.get(dst)
	i := slices.IndexFunc(old, func(x routeSlot) bool { return x.NIC == nic && x.src == from })
	if i < 0 {
		return
	}
	slots := slices.Clone(old)
	slots[i].src = to
	s.routes.byDst.set(dst, slots)
}

// Routes returns a copy of the route table, longest prefix first (routes of
// equal length in the order they were added).
func (s *Stack) Routes() []RouteEntry {
	s.mu.Lock()
	var slots []routeSlot
	s.routes.byDst.each(func(_ netip.Prefix, v []routeSlot) { slots = append(slots, v...) })
	s.mu.Unlock()
	slices.SortFunc(slots, func(a, b routeSlot) int {
		if a.Dst.Bits() != b.Dst.Bits() {
			return b.Dst.Bits() - a.Dst.Bits()
		}
		return cmp.Compare(a.seq, b.seq)
	})
	out := make([]RouteEntry, len(slots))
	for i := range slots {
		out[i] = slots[i].RouteEntry
	}
	return out
}

// Route is a resolved path for sending: which NIC, which source address and
// which next hop.
type Route struct {
	NIC        *NIC
	LocalAddr  netip.Addr
	RemoteAddr netip.Addr
	NextHop    netip.Addr
	Loopback   bool // RemoteAddr is one of our own addresses
	Broadcast  bool
	Multicast  bool
}

// FindRoute picks the route to remote. local, when valid and not
// unspecified, must be one of our addresses (or the bound multicast or
// broadcast address, for which the NIC's primary address is used instead).
// nic restricts the choice (0: any). Errors are ENETUNREACH and
// EADDRNOTAVAIL, as the kernel reports them.
//
// An IPv6 remote gets an IPv6 route (see findRoute6); an IPv4-mapped one
// is unmapped and routed as IPv4, as Linux sends from a dual-stack socket.
func (s *Stack) FindRoute(nic NICID, local, remote netip.Addr) (Route, error) {
	if remote.Is4In6() {
		remote, local = remote.Unmap(), local.Unmap()
	}
	if local.IsValid() && local.Is4() != remote.Is4() {
		local = netip.Addr{} // a source of the other family: choose one
	}
	if remote.Is6() {
		return s.findRoute6(nic, local, remote)
	}
	if !remote.Is4() {
		return Route{}, syscall.EAFNOSUPPORT
	}
	if local.IsValid() && (local.IsUnspecified() || ipv4.IsMulticast(local) || local == ipv4.Broadcast || !s.IsLocalAddress(local)) {
		local = netip.Addr{}
	}
	if n := s.localNIC(remote); n != nil && (nic == 0 || nic == n.id || n.loopback) {
		if !local.IsValid() {
			local = remote
		}
		return Route{NIC: n, LocalAddr: local, RemoteAddr: remote, NextHop: remote, Loopback: true}, nil
	}
	if remote.IsUnspecified() {
		// Linux sends to 0.0.0.0 as to itself.
		n := s.firstNIC(nic)
		if n == nil {
			return Route{}, syscall.ENETUNREACH
		}
		src := n.primaryAddress(remote)
		if !local.IsValid() {
			local = src
		}
		return Route{NIC: n, LocalAddr: local, RemoteAddr: src, NextHop: src, Loopback: true}, nil
	}
	if remote == ipv4.Broadcast || ipv4.IsMulticast(remote) {
		n := s.firstNIC(nic)
		if n == nil {
			return Route{}, syscall.ENETUNREACH
		}
		if nic == 0 {
			// The route table decides the interface for multicast, as
			// for unicast; without a route, the first NIC.
			if e, ok := s.lookupRoute(remote, 0); ok {
				n = s.NIC(e.NIC)
			}
		}
		if !local.IsValid() {
			local = n.primaryAddress(remote)
		}
		if !local.IsValid() && remote == ipv4.Broadcast && n.unconfigured() {
			// A host without an address yet (a DHCP client) broadcasts
			// from 0.0.0.0, as Linux does on an interface without one.
			local = netip.IPv4Unspecified()
		}
		if !local.IsValid() {
			return Route{}, syscall.EADDRNOTAVAIL
		}
		return Route{NIC: n, LocalAddr: local, RemoteAddr: remote, NextHop: remote,
			Broadcast: remote == ipv4.Broadcast, Multicast: remote != ipv4.Broadcast}, nil
	}
	e, ok := s.lookupRoute(remote, nic)
	if !ok {
		s.stats.IP.NoRoute.Add(1)
		return Route{}, syscall.ENETUNREACH
	}
	n := s.NIC(e.NIC)
	r := Route{NIC: n, RemoteAddr: remote, NextHop: remote, LocalAddr: local}
	if e.Gateway.IsValid() {
		r.NextHop = e.Gateway
	}
	if !r.LocalAddr.IsValid() {
		r.LocalAddr = e.src
		if !r.LocalAddr.IsValid() {
			r.LocalAddr = n.primaryAddress(r.NextHop)
		}
	}
	if !r.LocalAddr.IsValid() {
		return Route{}, syscall.EADDRNOTAVAIL
	}
	r.Broadcast = n.isSubnetBroadcast(remote)
	return r, nil
}

// lookupRoute finds the longest-prefix route to dst (through nic, unless
// it is 0).
func (s *Stack) lookupRoute(dst netip.Addr, nic NICID) (e RouteEntry, ok bool) {
	s.routes.byDst.matches(dst, func(_ int, slots []routeSlot) bool {
		for i := range slots {
			if nic == 0 || slots[i].NIC == nic {
				e, ok = slots[i].RouteEntry, true
				return false
			}
		}
		return true
	})
	return e, ok
}

func (s *Stack) firstNIC(id NICID) *NIC {
	if id != 0 {
		return s.NIC(id)
	}
	nics := *s.nics.Load()
	if len(nics) < 2 {
		return nil
	}
	return nics[1] // the first after lo
}
