package tap

import (
	"encoding/binary"
	"net"
)

// Ethernet II framing.
const (
	EthernetHeaderLen = 14
	EtherTypeIPv4     = 0x0800
	EtherTypeARP      = 0x0806
	// MinFrameLen is the shortest frame a link accepts (a header); shorter
	// runts are dropped by the stack.
	MinFrameLen = EthernetHeaderLen
)

// MAC is an Ethernet address held by value, so that hot paths can compare
// and copy it without allocating.
type MAC [6]byte

// BroadcastMAC is ff:ff:ff:ff:ff:ff.
var BroadcastMAC = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

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

// String formats m like net.HardwareAddr: six lower-case hex bytes joined
// by colons, e.g. "02:00:5e:00:53:01".
func (m MAC) String() string { return net.HardwareAddr(m[:]).String() }

// IsMulticast reports whether the group bit is set (broadcast included).
func (m MAC) IsMulticast() bool { return m[0]&1 != 0 }

// MulticastMAC maps an IPv4 multicast group to its Ethernet address
// (01:00:5e followed by the low 23 bits of the group, RFC 1112).
func MulticastMAC(group [4]byte) MAC {
	return MAC{0x01, 0x00, 0x5e, group[1] & 0x7f, group[2], group[3]}
}

// EthernetHeader is a view of the first 14 bytes of a frame.
type EthernetHeader []byte

// Dst returns the destination address.
func (h EthernetHeader) Dst() (m MAC) { copy(m[:], h[0:6]); return }

// Src returns the source address.
func (h EthernetHeader) Src() (m MAC) { copy(m[:], h[6:12]); return }

// EtherType returns the type field.
func (h EthernetHeader) EtherType() uint16 { return binary.BigEndian.Uint16(h[12:14]) }

// PutEthernetHeader writes a header into b, which must hold 14 bytes.
func PutEthernetHeader(b []byte, dst, src MAC, etherType uint16) {
	_ = b[13]
	copy(b[0:6], dst[:])
	copy(b[6:12], src[:])
	binary.BigEndian.PutUint16(b[12:14], etherType)
}
