// Package ethernet is the Ethernet II wire format: addresses, the 14-byte
// header, and the mapping of IP multicast groups to Ethernet addresses.
// It is pure: plain functions and types over []byte with no state, used by
// the link devices (tap), ARP and the stack alike.
package ethernet

import (
	"crypto/rand"
	"encoding/binary"
	"net"
)

// Header fields and sizes.
const (
	HeaderLen = 14
	TypeIPv4  = 0x0800
	TypeARP   = 0x0806
	TypeIPv6  = 0x86dd
)

// MAC is an Ethernet address held by value, so that hot paths compare and
// copy it without allocating.
type MAC [6]byte

// Broadcast is ff:ff:ff:ff:ff:ff.
var Broadcast = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// MACFrom converts a net.HardwareAddr of length 6; other lengths give the
// zero MAC and false.
func MACFrom(h net.HardwareAddr) (MAC, bool) {
	var m MAC
	if len(h) != 6 {
		return m, false
	}
	copy(m[:], h)
	return m, true
}

// HardwareAddr returns m as a freshly allocated net.HardwareAddr.
func (m MAC) HardwareAddr() net.HardwareAddr { return append(net.HardwareAddr(nil), m[:]...) }

// String formats m as net.HardwareAddr does (02:00:00:00:00:01).
func (m MAC) String() string { return net.HardwareAddr(m[:]).String() }

// IsMulticast reports whether the group bit is set (broadcast included).
func (m MAC) IsMulticast() bool { return m[0]&1 != 0 }

// RandomMAC returns a random locally administered unicast address, the kind
// a virtual NIC makes up for itself.
func RandomMAC() MAC {
	var m MAC
	_, _ = rand.Read(m[:]) // crypto/rand.Read never fails
	m[0] = m[0]&^0x01 | 0x02
	return m
}

// MulticastIPv4 maps an IPv4 multicast group to its Ethernet address
// (01:00:5e followed by the low 23 bits of the group, RFC 1112).
func MulticastIPv4(group [4]byte) MAC {
	return MAC{0x01, 0x00, 0x5e, group[1] & 0x7f, group[2], group[3]}
}

// Header is a view of the first 14 bytes of a frame.
type Header []byte

// Dst returns the destination address.
func (h Header) Dst() (m MAC) { copy(m[:], h[0:6]); return }

// Src returns the source address.
func (h Header) Src() (m MAC) { copy(m[:], h[6:12]); return }

// Type returns the EtherType field.
func (h Header) Type() uint16 { return binary.BigEndian.Uint16(h[12:14]) }

// PutHeader writes a header into b, which must hold HeaderLen bytes.
func PutHeader(b []byte, dst, src MAC, etherType uint16) {
	_ = b[HeaderLen-1]
	copy(b[0:6], dst[:])
	copy(b[6:12], src[:])
	binary.BigEndian.PutUint16(b[12:14], etherType)
}
