package gonet

import (
	"net"
	"net/netip"
	"slices"

	"github.com/tapnet/tapnet/stack"
)

// InterfaceAddrs lists the addresses of the stack's NIC ifi, as
// (*net.Interface).Addrs does for the host's, or of every NIC when ifi is
// nil, as net.InterfaceAddrs does. Each is a *net.IPNet shaped as net
// gives it on Linux: IPv4 with a 16-byte IP and a 4-byte mask, IPv6
// (tentative ones included) with 16 bytes of each; per NIC the IPv4
// addresses come first, then the IPv6 ones by scope, global before
// link-local. An interface the stack lacks is net's "no such network
// interface" error.
func InterfaceAddrs(s *stack.Stack, ifi *net.Interface) ([]net.Addr, error) {
	nics := s.NICs()
	if ifi != nil {
		n, ok := s.NICForInterface(ifi)
		if !ok {
			_, err := s.InterfaceByIndex(0x7fffffff)
			return nil, err
		}
		nics = []*stack.NIC{n}
	}
	var out []net.Addr
	for _, n := range nics {
		out = appendNICAddrs(out, n.Addresses())
	}
	return out, nil
}

// appendNICAddrs appends one NIC's prefixes in net's order and shape.
func appendNICAddrs(out []net.Addr, ps []netip.Prefix) []net.Addr {
	v6 := slices.DeleteFunc(slices.Clone(ps), func(p netip.Prefix) bool { return p.Addr().Is4() })
	slices.SortStableFunc(v6, func(a, b netip.Prefix) int { return scopeRank(a.Addr()) - scopeRank(b.Addr()) })
	for _, p := range ps {
		if p.Addr().Is4() {
			out = append(out, &net.IPNet{IP: net.IP(p.Addr().AsSlice()).To16(), Mask: net.CIDRMask(p.Bits(), 8*net.IPv4len)})
		}
	}
	for _, p := range v6 {
		a := p.Addr().WithZone("").As16()
		out = append(out, &net.IPNet{IP: net.IP(a[:]), Mask: net.CIDRMask(p.Bits(), 8*net.IPv6len)})
	}
	return out
}

// scopeRank orders IPv6 addresses as Linux lists them: wider scopes first.
func scopeRank(a netip.Addr) int {
	switch {
	case a.IsLoopback():
		return 2
	case a.IsLinkLocalUnicast():
		return 1
	}
	return 0
}
