package udpsock

import (
	"net/netip"
	"strconv"
	"syscall"

	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/udp"
)

// An endpoint is an AF_INET socket (New) or an AF_INET6 one (NewIPv6), as
// net creates them. An AF_INET6 endpoint without IPV6_V6ONLY is
// dual-stack: it speaks IPv4 to IPv4-mapped addresses, and shows IPv4
// peers and local addresses as IPv4-mapped. On the wire and in the demux
// every address is plain IPv4 or IPv6; the endpoint converts at its edges.

// MaxPayload6 is the largest UDP payload an IPv6 datagram carries without
// a jumbogram (Linux's limit for an AF_INET6 socket to an IPv6 peer).
const MaxPayload6 = 65535 - udp.HeaderLen

// NewIPv6 returns an AF_INET6 endpoint on s; v6only is IPV6_V6ONLY, which
// net sets for "udp6" and clears for "udp".
func NewIPv6(s *stack.Stack, v6only bool) *Endpoint {
	e := new(Endpoint)
	e.InitIPv6(s, v6only)
	return e
}

// InitIPv6 is Init for an AF_INET6 endpoint embedded in another struct.
func (e *Endpoint) InitIPv6(s *stack.Stack, v6only bool) {
	e.Init(s)
	e.v6, e.v6only = true, v6only
}

// IPv6 reports whether the endpoint is an AF_INET6 socket.
func (e *Endpoint) IPv6() bool { return e.v6 }

// V6Only reports IPV6_V6ONLY; binding a specific IPv6 address sets it, as
// Linux does.
func (e *Endpoint) V6Only() bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.v6 && e.v6only
}

// SetV6Only sets IPV6_V6ONLY on an unbound AF_INET6 endpoint (EINVAL once
// bound, ENOPROTOOPT on an AF_INET one, as Linux).
func (e *Endpoint) SetV6Only(v bool) error {
	if !e.v6 {
		return syscall.ENOPROTOOPT
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state != StateInitial {
		return syscall.EINVAL
	}
	e.v6only = v
	return nil
}

// wildcardLocked is the demux address of a binding to any address: 0.0.0.0
// for AF_INET, :: with IPV6_V6ONLY, and both families (the invalid
// address) for a dual-stack socket.
func (e *Endpoint) wildcardLocked() netip.Addr {
	switch {
	case !e.v6:
		return netip.IPv4Unspecified()
	case e.v6only:
		return netip.IPv6Unspecified()
	}
	return netip.Addr{}
}

// isSpecific reports whether a demux address is one address rather than a
// wildcard.
func isSpecific(a netip.Addr) bool { return a.IsValid() && !a.IsUnspecified() }

// wireAddr converts an address handed to the endpoint (bind, connect,
// send) into the one on the wire, as the kernel reads a sockaddr of the
// socket's family: AF_INET takes IPv4, mapped or not (EAFNOSUPPORT for
// IPv6); AF_INET6 takes IPv6 and, unless v6only, IPv4 as IPv4-mapped
// (ENETUNREACH with v6only, as udpv6_sendmsg and connect report it). The
// zone, which the NIC carries, is dropped.
func (e *Endpoint) wireAddr(a netip.Addr, v6only bool) (netip.Addr, error) {
	a = a.WithZone("")
	if a.Is4In6() || a.Is4() {
		if e.v6 && v6only {
			return a, syscall.ENETUNREACH
		}
		return a.Unmap(), nil
	}
	if !e.v6 {
		return a, syscall.EAFNOSUPPORT
	}
	return a, nil
}

// needsScope reports whether an IPv6 address means something only on one
// link, so that a zone (sin6_scope_id) picks the NIC.
func needsScope(a netip.Addr) bool {
	return a.Is6() && !a.Is4In6() && (a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast())
}

// zoneNIC resolves an address's zone to a NIC, as net resolves %name or
// %index to sin6_scope_id: a NIC name or a NIC ID; 0 when there is no
// zone or the address needs none. An unknown name is no zone (net gives
// index 0 for it); an unknown index is ENODEV.
func (e *Endpoint) zoneNIC(a netip.Addr) (stack.NICID, error) {
	z := a.Zone()
	if z == "" || !needsScope(a) {
		return 0, nil
	}
	if id, err := strconv.ParseUint(z, 10, 32); err == nil {
		if e.s.NIC(stack.NICID(id)) == nil {
			return 0, syscall.ENODEV
		}
		return stack.NICID(id), nil
	}
	for _, n := range e.s.NICs() {
		if n.Name() == z {
			return n.ID(), nil
		}
	}
	return 0, nil
}

// scopeNIC combines a zone with the socket's NIC binding for an address
// that needs a scope: they must agree (EINVAL otherwise, as Linux's
// sk_dev_equal_l3scope check), and one of them must name a NIC when
// required (EINVAL, as Linux's bind and connect without a scope).
func scopeNIC(zone, bound stack.NICID, required bool) (stack.NICID, error) {
	switch {
	case zone != 0 && bound != 0 && zone != bound:
		return 0, syscall.EINVAL
	case zone != 0:
		return zone, nil
	case bound == 0 && required:
		return 0, syscall.EINVAL
	}
	return bound, nil
}

// userAddr is how an AF_INET6 endpoint shows a wire address: IPv4 as
// IPv4-mapped, link-scoped IPv6 with the zone of the NIC it came through
// (its name, as net's zone cache names an interface index). AF_INET
// endpoints show addresses as they are.
func (e *Endpoint) userAddr(a netip.Addr, nic stack.NICID) netip.Addr {
	if !e.v6 || !a.IsValid() {
		return a
	}
	if a.Is4() {
		return netip.AddrFrom16(a.As16())
	}
	if nic != 0 && needsScope(a) {
		return a.WithZone(e.nicZone(nic))
	}
	return a
}

// nicZone names a NIC as a zone: its name, or its ID when it has none.
func (e *Endpoint) nicZone(id stack.NICID) string {
	if n := e.s.NIC(id); n != nil && n.Name() != "" {
		return n.Name()
	}
	return strconv.FormatUint(uint64(id), 10)
}

// maxPayload is the largest payload a datagram to dst may carry.
func maxPayload(dst netip.Addr) int {
	if dst.Is6() {
		return MaxPayload6
	}
	return udp.MaxPayload
}

// familyMismatch is the error of a peer of the other family than a
// socket's specific local address, as Linux reports it: an IPv6 peer of an
// IPv4 address is EAFNOSUPPORT, an IPv4 peer of an IPv6 one ENETUNREACH.
func familyMismatch(local, peer netip.Addr) error {
	switch {
	case !isSpecific(local) || local.Is4() == peer.Is4():
		return nil
	case local.Is4():
		return syscall.EAFNOSUPPORT
	}
	return syscall.ENETUNREACH
}
