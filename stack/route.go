package stack

import (
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
func (s *Stack) AddRoute(r RouteEntry) error {
	if !r.Dst.IsValid() || !r.Dst.Addr().Is4() || s.NIC(r.NIC) == nil {
		return syscall.EINVAL
	}
	if r.Gateway.IsValid() && !r.Gateway.Is4() {
		return syscall.EINVAL
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addRouteLocked(r)
	return nil
}

// SetDefaultGateway routes every destination without a more specific route
// through gw, which must be on one of nic's connected prefixes.
func (s *Stack) SetDefaultGateway(nic NICID, gw netip.Addr) error {
	return s.AddRoute(RouteEntry{Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Gateway: gw, NIC: nic})
}

func (s *Stack) addRouteLocked(r RouteEntry) {
	r.Dst = r.Dst.Masked()
	rs := slices.Clone(*s.routes.Load())
	rs = slices.DeleteFunc(rs, func(x RouteEntry) bool { return x.Dst == r.Dst && x.NIC == r.NIC })
	rs = append(rs, r)
	// Longest prefix first, so lookup takes the first match.
	slices.SortStableFunc(rs, func(a, b RouteEntry) int { return b.Dst.Bits() - a.Dst.Bits() })
	s.routes.Store(&rs)
}

// Routes returns a copy of the route table.
func (s *Stack) Routes() []RouteEntry { return slices.Clone(*s.routes.Load()) }

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
func (s *Stack) FindRoute(nic NICID, local, remote netip.Addr) (Route, error) {
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

func (s *Stack) lookupRoute(dst netip.Addr, nic NICID) (RouteEntry, bool) {
	for _, e := range *s.routes.Load() {
		if (nic == 0 || e.NIC == nic) && e.Dst.Contains(dst) {
			return e, true
		}
	}
	return RouteEntry{}, false
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
