package gonet

import (
	"net"
	"net/netip"
	"syscall"
)

// Socket families are chosen as net's favoriteAddrFamily does on Linux:
// "udp4" is AF_INET, "udp6" AF_INET6 with IPV6_V6ONLY, and "udp" a
// dual-stack AF_INET6 socket when listening on the wildcard, AF_INET when
// both addresses are IPv4 and AF_INET6 otherwise.

// family is a socket's address family and IPV6_V6ONLY.
type family struct{ v6, v6only bool }

// addrIsV4 reports whether net would give a of this shape AF_INET: no
// address, a short IP, or an IPv4(-mapped) one.
func addrIsV4(a *net.UDPAddr) bool {
	return a == nil || len(a.IP) <= net.IPv4len || a.IP.To4() != nil
}

// isWildcard reports whether a listens on every address.
func isWildcard(a *net.UDPAddr) bool { return a == nil || a.IP == nil || a.IP.IsUnspecified() }

// byNetwork is the family "udp4" and "udp6" force; ok is false for "udp".
func byNetwork(network string) (family, bool) {
	switch network {
	case "udp4":
		return family{}, true
	case "udp6":
		return family{v6: true, v6only: true}, true
	}
	return family{}, false
}

// listenFamily is the family of a socket net.ListenUDP would open.
func listenFamily(network string, laddr *net.UDPAddr) family {
	if f, ok := byNetwork(network); ok {
		return f
	}
	if isWildcard(laddr) {
		return family{v6: true}
	}
	return family{v6: !addrIsV4(laddr)}
}

// dialFamily is the family of a socket net.DialUDP would open.
func dialFamily(network string, laddr, raddr *net.UDPAddr) family {
	if f, ok := byNetwork(network); ok {
		return f
	}
	return family{v6: !(addrIsV4(laddr) && addrIsV4(raddr))}
}

// sockaddr converts a *net.UDPAddr as net's sockaddr conversion does for
// the socket's family: a nil IP is the unspecified address (0.0.0.0 too,
// on AF_INET6); on AF_INET,
// IPv4-mapped addresses are unmapped and IPv6 is an error; on AF_INET6,
// IPv4 becomes IPv4-mapped and the zone is kept (the endpoint maps it to
// a NIC). A port outside 0–65535 is EINVAL, as bind, connect and sendto
// report it.
func sockaddr(a *net.UDPAddr, v6 bool) (netip.AddrPort, error) {
	if a.Port < 0 || a.Port > 0xffff {
		if !v6 && len(a.IP) != 0 && a.IP.To4() == nil {
			return netip.AddrPort{}, nonIPv4(a.IP.String())
		}
		return netip.AddrPort{}, syscall.EINVAL
	}
	port := uint16(a.Port)
	if !v6 {
		ip := netip.IPv4Unspecified()
		if len(a.IP) != 0 {
			ip4 := a.IP.To4()
			if ip4 == nil {
				return netip.AddrPort{}, nonIPv4(a.IP.String())
			}
			ip = netip.AddrFrom4([4]byte(ip4))
		}
		return netip.AddrPortFrom(ip, port), nil
	}
	switch {
	case len(a.IP) == 0 || a.IP.Equal(net.IPv4zero): // net binds 0.0.0.0 as :: on AF_INET6
		return netip.AddrPortFrom(netip.IPv6Unspecified(), port), nil
	case len(a.IP) == net.IPv4len:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(a.IP.To16())), port), nil
	case len(a.IP) == net.IPv6len:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(a.IP)).WithZone(a.Zone), port), nil
	}
	return netip.AddrPort{}, &net.AddrError{Err: "invalid IP address", Addr: a.IP.String()}
}

func nonIPv4(addr string) error { return &net.AddrError{Err: "non-IPv4 address", Addr: addr} }

// loopbackFor is where a dial to the unspecified address goes: the
// loopback address of the peer's family, as the kernel reads "nowhere".
func loopbackFor(a netip.Addr) netip.Addr {
	switch {
	case a.Is4():
		return netip.AddrFrom4([4]byte{127, 0, 0, 1})
	case a.Is4In6():
		return netip.AddrFrom16(netip.AddrFrom4([4]byte{127, 0, 0, 1}).As16())
	}
	return netip.IPv6Loopback()
}

// isUnspecified reports whether a is 0.0.0.0, :: or ::ffff:0.0.0.0.
func isUnspecified(a netip.Addr) bool { return a.Unmap().IsUnspecified() }

// unspecifiedFor is the unspecified address net reports for a failed read
// on a socket of the family.
func unspecifiedFor(v6 bool) netip.AddrPort {
	if v6 {
		return netip.AddrPortFrom(netip.IPv6Unspecified(), 0)
	}
	return netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
}

// resolveFamily picks the address net's resolver would for network:
// "udp6" wants IPv6, "udp4" IPv4 (mapped counts), "udp" either; otherwise
// net's "no suitable address found".
func resolveFamily(network, host string, ip netip.Addr) error {
	want, ok := byNetwork(network)
	if !ok || want.v6 == (ip.Is6() && !ip.Is4In6()) {
		return nil
	}
	return &net.AddrError{Err: "no suitable address found", Addr: host}
}
