package stack

import (
	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/ipv6"
	"github.com/tapnet/tapnet/link"
)

// This file holds what differs between a NIC on an Ethernet link and one on
// an IP link (a TUN): whether frames carry an Ethernet header is decided
// once, by linkHeaderLen when the NIC is made, and every path that frames
// or unframes packets asks hasEthernet.

// hasEthernet reports whether the NIC's frames carry an Ethernet header
// (and so whether it resolves neighbours with ARP). lo has no link at all.
func (n *NIC) hasEthernet() bool { return n.hdrLen == ethernet.HeaderLen }

// defaultNamePrefix names NICs after the devices Linux would show: tapN for
// Ethernet links, tunN for IP links.
func defaultNamePrefix(l link.Layer) string {
	if linkHeaderLen(l) == 0 {
		return "tun"
	}
	return "tap"
}

// deliverIP takes a packet from an IP link, which has no header to say what
// it carries: the IP version in its first nibble does. It takes ownership
// of b.
func (n *NIC) deliverIP(b *buffer.Buffer) {
	st := &n.s.stats.Link
	p := b.Bytes()
	switch {
	case len(p) == 0:
		st.Runts.Add(1)
		b.Release()
	case p[0]>>4 == 4:
		// No link-layer broadcast on a point-to-point link: a unicast
		// to us may be answered with ICMP errors.
		n.s.handleIPv4(n, b, false, false)
	case p[0]>>4 == 6 && n.v6.enabled:
		n.s.handleIPv6(n, b, false, false)
	default:
		st.UnknownIPVersion.Add(1)
		b.Release()
	}
}

// putLinkHeader frames an IP packet in b for the wire: an Ethernet header
// to dst from the NIC's address, typed by the packet's version, or nothing
// on an IP link.
func (n *NIC) putLinkHeader(b *buffer.Buffer, dst ethernet.MAC) {
	if n.hasEthernet() {
		typ := uint16(ethernet.TypeIPv4)
		if p := b.Bytes(); len(p) > 0 && p[0]>>4 == 6 {
			typ = ethernet.TypeIPv6
		}
		ethernet.PutHeader(b.Prepend(ethernet.HeaderLen), dst, n.mac, typ)
	}
}

// putLinkAddrOption writes NDP's link-layer address option typ with the
// NIC's MAC and returns its length, or writes nothing on an IP link: RFC
// 4861 §4 leaves the option out on links without link-layer addresses,
// as Linux's ndisc does on a tun device (addr_len 0).
func (n *NIC) putLinkAddrOption(p []byte, typ uint8) int {
	if !n.hasEthernet() {
		return 0
	}
	return ipv6.PutLinkAddrOption(p, typ, n.mac)
}
