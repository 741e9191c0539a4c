package gonet

// Multicast group membership: joins, leaves and source filters, and
// ListenMulticastUDP.

import (
	"net"
	"net/netip"
	"syscall"

	"github.com/tapnet/tapnet/internal/udpsock"
	"github.com/tapnet/tapnet/stack"
)

// netAddrIP is the IP of a *net.UDPAddr or *net.IPAddr, as x/net's
// netAddrToIP4 and netAddrToIP16 read it; nil for anything else.
func netAddrIP(a net.Addr) net.IP {
	switch v := a.(type) {
	case *net.UDPAddr:
		if v != nil {
			return v.IP
		}
	case *net.IPAddr:
		if v != nil {
			return v.IP
		}
	}
	return nil
}

// netAddrToAddr4 is x/net/ipv4's netAddrToIP4: an IPv4 address (or an
// IPv4-mapped one) of a *net.UDPAddr or *net.IPAddr.
func netAddrToAddr4(a net.Addr) (netip.Addr, bool) {
	ip4 := netAddrIP(a).To4()
	if ip4 == nil {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte(ip4)), true
}

// nic maps an interface to a NIC; ok is false for one the stack lacks.
func (p *PacketConn) nic(ifi *net.Interface) (*stack.NIC, bool) {
	return p.stack().NICForInterface(ifi)
}

// group runs a membership change after x/net/ipv4's argument checks.
func (p *PacketConn) group(ifi *net.Interface, group, source net.Addr, withSource bool,
	f func(n *stack.NIC, g, s netip.Addr) error) error {
	if !p.ok() {
		return errInvalidConn
	}
	return p.membership(ifi, group, source, withSource, netAddrToAddr4, p.option, f)
}

// membership runs a membership change for either family: parse reads the
// family's group and source addresses, option is its socket-option check
// (a closed socket, or IPv6 options on an IPv4 socket), f the change.
func (p *PacketConn) membership(ifi *net.Interface, group, source net.Addr, withSource bool,
	parse func(net.Addr) (netip.Addr, bool), option func() error,
	f func(n *stack.NIC, g, s netip.Addr) error) error {
	g, ok := parse(group)
	if !ok {
		return errMissingAddress
	}
	var s netip.Addr
	if withSource {
		if s, ok = parse(source); !ok {
			return errMissingAddress
		}
	}
	if err := option(); err != nil {
		return err
	}
	n, ok := p.nic(ifi)
	if !ok {
		return setsockopt(syscall.ENODEV)
	}
	return p.optErr(f(n, g, s))
}

// JoinGroup joins group on ifi (nil: the default NIC) for every source.
func (p *PacketConn) JoinGroup(ifi *net.Interface, group net.Addr) error {
	return p.group(ifi, group, nil, false, func(n *stack.NIC, g, _ netip.Addr) error { return p.ep().JoinGroup(n, g) })
}

// LeaveGroup leaves group on ifi whatever its source filter.
func (p *PacketConn) LeaveGroup(ifi *net.Interface, group net.Addr) error {
	return p.group(ifi, group, nil, false, func(n *stack.NIC, g, _ netip.Addr) error { return p.ep().LeaveGroup(n, g) })
}

// JoinSourceSpecificGroup joins the source-specific group (group, source)
// on ifi.
func (p *PacketConn) JoinSourceSpecificGroup(ifi *net.Interface, group, source net.Addr) error {
	return p.group(ifi, group, source, true, func(n *stack.NIC, g, s netip.Addr) error { return p.ep().JoinSourceGroup(n, g, s) })
}

// LeaveSourceSpecificGroup leaves the source-specific group (group, source)
// on ifi; leaving the last source leaves the group.
func (p *PacketConn) LeaveSourceSpecificGroup(ifi *net.Interface, group, source net.Addr) error {
	return p.group(ifi, group, source, true, func(n *stack.NIC, g, s netip.Addr) error { return p.ep().LeaveSourceGroup(n, g, s) })
}

// ExcludeSourceSpecificGroup stops receiving group's datagrams from source,
// on a group joined with JoinGroup.
func (p *PacketConn) ExcludeSourceSpecificGroup(ifi *net.Interface, group, source net.Addr) error {
	return p.group(ifi, group, source, true, func(n *stack.NIC, g, s netip.Addr) error { return p.ep().BlockSource(n, g, s) })
}

// IncludeSourceSpecificGroup undoes ExcludeSourceSpecificGroup.
func (p *PacketConn) IncludeSourceSpecificGroup(ifi *net.Interface, group, source net.Addr) error {
	return p.group(ifi, group, source, true, func(n *stack.NIC, g, s netip.Addr) error { return p.ep().UnblockSource(n, g, s) })
}

// ListenMulticastUDP is net.ListenMulticastUDP on stack s: it binds the
// group's port on every address with SO_REUSEADDR (so several listeners
// share it), turns multicast loopback off, sets ifi (nil: the default NIC)
// as the multicast interface and joins the group there.
func ListenMulticastUDP(s *stack.Stack, network string, ifi *net.Interface, gaddr *net.UDPAddr) (*UDPConn, error) {
	fail := func(err error) (*UDPConn, error) {
		return nil, &net.OpError{Op: "listen", Net: network, Source: nil, Addr: opAddr(gaddr), Err: err}
	}
	if err := checkNetwork(network); err != nil {
		return fail(err)
	}
	if gaddr == nil || gaddr.IP == nil {
		return fail(errMissingAddress)
	}
	// net opens the socket for the network or the group's family, binds
	// the wildcard and joins with the group's own family's option: an
	// IPv6 group on an AF_INET socket is ENOPROTOOPT.
	f := listenFamily(network, &net.UDPAddr{IP: gaddr.IP})
	if gaddr.Port < 0 || gaddr.Port > 0xffff {
		return fail(sysErr("bind", syscall.EINVAL))
	}
	group, ok := netip.AddrFromSlice(gaddr.IP)
	if !ok {
		return fail(&net.AddrError{Err: "invalid IP address", Addr: gaddr.IP.String()})
	}
	group = group.Unmap()
	if group.Is6() && !f.v6 {
		return fail(setsockopt(syscall.ENOPROTOOPT))
	}
	ga := netip.AddrPortFrom(group, uint16(gaddr.Port))
	var nic *stack.NIC
	if ifi != nil {
		var ok bool
		if nic, ok = s.NICForInterface(ifi); !ok {
			return fail(setsockopt(syscall.EADDRNOTAVAIL))
		}
	}
	c := newConn(s, network, f)
	ep := &c.ep
	ep.SetReuseAddr(true)
	if err := ep.Bind(netip.AddrPortFrom(unspecifiedFor(f.v6).Addr(), ga.Port())); err != nil {
		ep.Close()
		return fail(sysErr("bind", err))
	}
	ep.UpdateOptions(func(o *udpsock.Options) {
		if group.Is6() {
			o.MulticastLoop6 = false
		} else {
			o.MulticastLoop = false
		}
		if nic == nil {
			return
		}
		if group.Is6() {
			o.MulticastNIC6 = nic.ID()
		} else {
			o.MulticastNIC = nic.ID()
		}
	})
	if err := ep.JoinGroup(nic, group); err != nil {
		ep.Close()
		return fail(setsockopt(err))
	}
	return c, nil
}
