package ipv6

import (
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
)

// Well-known multicast groups (RFC 4291 2.7.1, RFC 3810 11).
var (
	AllNodes        = netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 1})
	AllRouters      = netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 2})
	AllMLDv2Routers = netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 0x16})
)

// LinkLocalPrefix is fe80::/64, the prefix of link-local addresses a host
// forms (RFC 4291 2.5.6).
var LinkLocalPrefix = netip.PrefixFrom(netip.AddrFrom16([16]byte{0: 0xfe, 1: 0x80}), 64)

// SolicitedNode returns the solicited-node multicast group of addr,
// ff02::1:ff00:0 with the address's low 24 bits (RFC 4291 2.7.1).
func SolicitedNode(addr netip.Addr) netip.Addr {
	a := addr.As16()
	return netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 11: 0x01, 12: 0xff, 13: a[13], 14: a[14], 15: a[15]})
}

// isSolicitedNode reports whether addr is in ff02::1:ff00:0/104.
func isSolicitedNode(addr netip.Addr) bool {
	if !addr.Is6() {
		return false
	}
	a := addr.As16()
	return a[0] == 0xff && a[1] == 0x02 && [9]byte(a[2:11]) == [9]byte{} && a[11] == 0x01 && a[12] == 0xff
}

// isMulticast and isLinkLocal test the IPv6 bytes of an address; netip's
// predicates also accept IPv4-mapped addresses, which no IPv6 packet may
// use as either.
func isMulticast(addr netip.Addr) bool { return addr.Is6() && addr.As16()[0] == 0xff }

func isLinkLocal(addr netip.Addr) bool {
	a := addr.As16()
	return addr.Is6() && a[0] == 0xfe && a[1]&0xc0 == 0x80
}

// IsSolicitedNode reports whether addr is a solicited-node multicast group.
func IsSolicitedNode(addr netip.Addr) bool { return isSolicitedNode(addr) }

// MulticastMAC returns the Ethernet address an IPv6 group is sent to:
// 33:33 and the group's low 32 bits (RFC 2464 7).
func MulticastMAC(group netip.Addr) [6]byte {
	a := group.As16()
	return [6]byte{0x33, 0x33, a[12], a[13], a[14], a[15]}
}

// InterfaceID is the low 64 bits of an address.
type InterfaceID [8]byte

// EUI64 returns the modified EUI-64 interface identifier of an Ethernet
// address: ff:fe in the middle and the universal/local bit inverted (RFC
// 4291 appendix A).
func EUI64(mac [6]byte) InterfaceID {
	return InterfaceID{mac[0] ^ 0x02, mac[1], mac[2], 0xff, 0xfe, mac[3], mac[4], mac[5]}
}

// AddrFromPrefix returns the address made of prefix's first 64 bits and id.
func AddrFromPrefix(prefix netip.Prefix, id InterfaceID) netip.Addr {
	a := prefix.Addr().As16()
	copy(a[8:], id[:])
	return netip.AddrFrom16(a)
}

// StableInterfaceID returns the RFC 7217 stable-privacy interface
// identifier for prefix on the interface named ifname: the first 64 bits
// of SHA-256 over the prefix's first 64 bits, the length of ifname (2
// bytes) and ifname, the DAD counter, and secret. The same inputs always
// give the same identifier; another prefix or secret gives an unrelated
// one. An identifier that is reserved (RFC 5453) is skipped by counting on,
// as RFC 7217 5 asks: counter is the DAD counter actually used, from which
// the caller counts on after a duplicate.
func StableInterfaceID(prefix netip.Prefix, ifname string, dadCounter uint8, secret []byte) (id InterfaceID, counter uint8) {
	p := prefix.Masked().Addr().As16()
	var n [2]byte
	binary.BigEndian.PutUint16(n[:], uint16(len(ifname)))
	for counter = dadCounter; ; counter++ {
		h := sha256.New()
		h.Write(p[:8])
		h.Write(n[:])
		h.Write([]byte(ifname))
		h.Write([]byte{counter})
		h.Write(secret)
		var sum [sha256.Size]byte
		id = InterfaceID(h.Sum(sum[:0])[:8])
		if !IsReservedInterfaceID(id) || counter == 255 {
			return id, counter
		}
	}
}

// IsReservedInterfaceID reports whether id must not be used for an
// address (RFC 5453): the subnet-router anycast (zero), the proxy mobile
// range 0200:5efe:fe00:0000–5212, and the subnet anycast range
// fdff:ffff:ffff:ff80–ffff (RFC 2526).
func IsReservedInterfaceID(id InterfaceID) bool {
	v := binary.BigEndian.Uint64(id[:])
	switch {
	case v == 0:
		return true
	case v >= 0x02005efffe000000 && v <= 0x02005efffe005212:
		return true
	case v >= 0xfdffffffffffff80:
		return true
	}
	return false
}

// Scope is an address or multicast scope (RFC 4291 2.7, RFC 7346), the
// values of a multicast address's scope field.
type Scope uint8

// Scopes.
const (
	ScopeInterfaceLocal    Scope = 0x1
	ScopeLinkLocal         Scope = 0x2
	ScopeRealmLocal        Scope = 0x3
	ScopeAdminLocal        Scope = 0x4
	ScopeSiteLocal         Scope = 0x5
	ScopeOrganizationLocal Scope = 0x8
	ScopeGlobal            Scope = 0xe
)

// MulticastScope returns the scope field of a multicast address; ok is
// false if addr is not IPv6 multicast.
func MulticastScope(addr netip.Addr) (s Scope, ok bool) {
	if !isMulticast(addr) {
		return 0, false
	}
	return Scope(addr.As16()[1] & 0x0f), true
}

// Multicast address flags (RFC 4291 2.7, RFC 3956, RFC 3306).
const (
	MulticastFlagTransient = 0x1 // T: not permanently assigned
	MulticastFlagPrefix    = 0x2 // P: based on a unicast prefix
	MulticastFlagRP        = 0x4 // R: embeds a rendezvous point
)

// MulticastFlags returns the flags field of a multicast address.
func MulticastFlags(addr netip.Addr) uint8 { return addr.As16()[1] >> 4 }

// IsSourceSpecific reports whether addr is in ff3x::/32, the groups of
// source-specific multicast (RFC 4607), which only ever have sources.
func IsSourceSpecific(addr netip.Addr) bool {
	if !addr.Is6() {
		return false
	}
	a := addr.As16()
	return a[0] == 0xff && a[1]&0xf0 == 0x30 && a[2] == 0 && a[3] == 0
}

// AddrScope returns the scope of any IPv6 address as RFC 6724 3.1 defines
// it for source address selection: a multicast address's own scope,
// link-local for link-local unicast and loopback, site-local for the
// deprecated fec0::/10, global otherwise.
func AddrScope(addr netip.Addr) Scope {
	if s, ok := MulticastScope(addr); ok {
		return s
	}
	a := addr.As16()
	switch {
	case addr.IsLoopback(), addr.IsLinkLocalUnicast():
		return ScopeLinkLocal
	case a[0] == 0xfe && a[1]&0xc0 == 0xc0:
		return ScopeSiteLocal
	}
	return ScopeGlobal
}
