package tap_test

import (
	"encoding/binary"
	"net/netip"

	"github.com/tapnet/tapnet/ethernet"
)

// Hand-built ARP and UDP/IPv4 frames for talking to the kernel through a TAP.

var (
	kernelIP = netip.MustParseAddr("192.0.2.1")
	stackIP  = netip.MustParseAddr("192.0.2.2")
)

func arpRequest(src ethernet.MAC, sip, tip netip.Addr) []byte {
	p := make([]byte, 42)
	ethernet.PutHeader(p, ethernet.Broadcast, src, ethernet.TypeARP)
	a := p[ethernet.HeaderLen:]
	binary.BigEndian.PutUint16(a[0:], 1)      // Ethernet
	binary.BigEndian.PutUint16(a[2:], 0x0800) // IPv4
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], 1) // request
	copy(a[8:], src[:])
	s, t := sip.As4(), tip.As4()
	copy(a[14:], s[:])
	clear(a[18:24])
	copy(a[24:], t[:])
	return p
}

// arpReply parses an ARP reply, reporting the sender's addresses.
func arpReply(f []byte) (sha ethernet.MAC, spa netip.Addr, ok bool) {
	if len(f) < 42 || ethernet.Header(f).Type() != ethernet.TypeARP {
		return sha, spa, false
	}
	a := f[ethernet.HeaderLen:]
	if binary.BigEndian.Uint16(a[6:]) != 2 {
		return sha, spa, false
	}
	copy(sha[:], a[8:14])
	return sha, netip.AddrFrom4([4]byte(a[14:18])), true
}

func udpFrame(dst, src ethernet.MAC, from, to netip.AddrPort, payload []byte) []byte {
	n := ethernet.HeaderLen + 20 + 8 + len(payload)
	p := make([]byte, n)
	ethernet.PutHeader(p, dst, src, ethernet.TypeIPv4)
	ip := p[ethernet.HeaderLen:]
	ip[0], ip[1] = 0x45, 0
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	binary.BigEndian.PutUint32(ip[4:], 0x12344000) // id, DF
	ip[8], ip[9] = 64, 17
	clear(ip[10:12])
	s, d := from.Addr().As4(), to.Addr().As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	binary.BigEndian.PutUint16(ip[10:], ^checksum(ip[:20]))
	u := ip[20:]
	binary.BigEndian.PutUint16(u[0:], from.Port())
	binary.BigEndian.PutUint16(u[2:], to.Port())
	binary.BigEndian.PutUint16(u[4:], uint16(8+len(payload)))
	clear(u[6:8]) // no checksum
	copy(u[8:], payload)
	return p
}

// parseUDP returns the endpoints and payload of a UDP/IPv4 frame.
func parseUDP(f []byte) (from, to netip.AddrPort, payload []byte, ok bool) {
	if len(f) < 42 || ethernet.Header(f).Type() != ethernet.TypeIPv4 {
		return from, to, nil, false
	}
	ip := f[ethernet.HeaderLen:]
	ihl := int(ip[0]&15) * 4
	if ip[9] != 17 || len(ip) < ihl+8 {
		return from, to, nil, false
	}
	u := ip[ihl:]
	from = netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[12:16])), binary.BigEndian.Uint16(u[0:]))
	to = netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[16:20])), binary.BigEndian.Uint16(u[2:]))
	end := min(int(binary.BigEndian.Uint16(u[4:])), len(u))
	return from, to, u[8:end], true
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}
