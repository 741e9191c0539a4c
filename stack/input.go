package stack

import (
	"net/netip"

	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/internal/ipfrag"
	"github.com/tapnet/tapnet/ipv4"
	"github.com/tapnet/tapnet/udp"
)

// handleIPv4 processes an IPv4 packet (Ethernet header removed) received on
// n, or looped back from our own output when loop is set; linkMcast says the
// frame was sent to a link-layer broadcast or multicast address, which is
// never answered with an ICMP error (RFC 1122 3.2.2). It takes ownership
// of b.
func (s *Stack) handleIPv4(n *NIC, b *buffer.Buffer, loop, linkMcast bool) {
	st := &s.stats.IP
	st.Received.Add(1)
	h, err := ipv4.Parse(b.Bytes())
	if err != nil {
		switch err {
		case ipv4.ErrTooShort:
			st.TooShort.Add(1)
		case ipv4.ErrVersion:
			st.BadVersion.Add(1)
		case ipv4.ErrHeaderLen:
			st.BadHeaderLen.Add(1)
		case ipv4.ErrTotalLen:
			st.BadTotalLen.Add(1)
		case ipv4.ErrChecksum:
			st.BadChecksum.Add(1)
		default:
			st.BadFragment.Add(1)
		}
		b.Release()
		return
	}
	b.Truncate(h.TotalLen())
	src, dst := h.Src(), h.Dst()
	if !loop && s.isMartianSource(src, dst, h.Protocol()) {
		st.MartianSource.Add(1)
		b.Release()
		return
	}
	if !loop && dst.IsLoopback() {
		// 127.0.0.0/8 never comes from a wire (Linux's martian destination).
		st.MartianDestination.Add(1)
		b.Release()
		return
	}
	if h.TTL() == 0 && !loop { // a looped multicast copy keeps IP_MULTICAST_TTL 0
		st.ZeroTTL.Add(1)
		b.Release()
		return
	}
	if h.HeaderLen() > ipv4.HeaderLen {
		switch h.CheckOptions() {
		case nil:
			st.WithOptions.Add(1)
		case ipv4.ErrSourceRoute:
			st.SourceRoute.Add(1)
			b.Release()
			return
		default:
			st.BadOptions.Add(1)
			b.Release()
			return
		}
	}
	var kind castKind
	switch {
	case ipv4.IsMulticast(dst) && (loop || n.acceptsGroup(dst)):
		// Our own looped sends were checked against the group on output.
		kind = multicast
	case loop || s.IsLocalAddress(dst):
		kind = unicast
	case dst == ipv4.Broadcast || n.isSubnetBroadcast(dst):
		kind = broadcast
	case !loop && n.awaitsDHCPReply(h, b.Bytes()):
		// Delivered like unicast, but nothing is answered with an ICMP
		// error for an address that is not ours yet.
		kind = unicastInLinkBroadcast
	default:
		st.NotForUs.Add(1)
		b.Release()
		return
	}
	proto, hl, ttl, tos := h.Protocol(), h.HeaderLen(), h.TTL(), h.TOS()
	if h.IsFragment() {
		st.FragmentsIn.Add(1)
		id := h.ID()
		key := ipfrag.Key{Src: src, Dst: dst, ID: uint32(id), Protocol: proto}
		head, ok := s.reasm.Add(ipfrag.Fragment{Key: key, Offset: h.FragmentOffset(), More: h.MoreFragments(), HeaderLen: hl, Buf: b})
		if !ok {
			return
		}
		st.Reassembled.Add(1)
		// Give the datagram back a header, so that the rest of input (and
		// ICMP errors quoting it) sees an ordinary packet.
		total := ipv4.HeaderLen + head.ChainLen()
		hdr := head.Prepend(ipv4.HeaderLen)
		if hdr == nil || total > ipv4.MaxTotalLen {
			st.BadFragment.Add(1)
			head.ReleaseChain()
			return
		}
		ipv4.Put(hdr, ipv4.Fields{TOS: tos, TotalLen: total, ID: id, TTL: ttl, Protocol: proto, Src: src, Dst: dst})
		b, hl = head, ipv4.HeaderLen
	}
	st.Delivered.Add(1)
	switch proto {
	case ipv4.ProtocolICMP:
		s.handleICMP(n, b, hl, kind)
		return
	case ipv4.ProtocolIGMP:
		s.handleIGMP(n, b, hl, kind)
		return
	}
	if linkMcast && kind == unicast {
		kind = unicastInLinkBroadcast
	}
	if proto != udp.ProtocolNumber {
		st.UnknownProtocol.Add(1)
		if kind == unicast {
			s.sendICMPError(n, b, ipv4.ICMPDestUnreachable, ipv4.CodeProtocolUnreachable, 0)
		}
		b.ReleaseChain()
		return
	}
	s.deliverUDP(n, b, hl, kind, src, dst, ttl, tos)
}

// isMartianSource reports whether a packet from src to dst arriving on a
// link must be dropped for its source, as Linux's ip_route_input_slow and
// ip_mc_validate_source decide. A host without an address yet (a DHCP
// client) sends from 0.0.0.0: to the limited broadcast, to link-local
// groups and in IGMP, but never to a unicast address.
func (s *Stack) isMartianSource(src, dst netip.Addr, proto uint8) bool {
	if src.As4()[0] == 0 {
		switch {
		case dst == ipv4.Broadcast:
			return false
		case ipv4.IsMulticast(dst):
			return !isLinkLocalGroup(dst) && proto != ipv4.ProtocolIGMP
		}
		return true
	}
	return ipv4.IsMartianSource(src) || s.isLocalOrBroadcast(src)
}

// awaitsDHCPReply reports whether pkt, with header h, is a DHCP server's unicast reply to a
// NIC that has no address yet: a UDP datagram to port 68 (a first
// fragment could not be told apart, and DHCP replies are never
// fragmented). Linux DHCP clients receive these through a packet socket;
// here the socket bound to port 68 does, and nothing else is accepted for
// the address being offered.
func (n *NIC) awaitsDHCPReply(h ipv4.Header, pkt []byte) bool {
	if h.Protocol() != ipv4.ProtocolUDP || h.IsFragment() || !n.unconfigured() {
		return false
	}
	p := pkt[h.HeaderLen():]
	return len(p) >= 4 && uint16(p[2])<<8|uint16(p[3]) == dhcpClientPort
}

// dhcpClientPort is the UDP port DHCP replies go to (RFC 2131 §4.1).
const dhcpClientPort = 68

// isLinkLocalGroup reports whether g is in 224.0.0.0/24, the groups never
// forwarded by routers.
func isLinkLocalGroup(g netip.Addr) bool {
	a := g.As4()
	return a[0] == 224 && a[1] == 0 && a[2] == 0
}

type castKind uint8

const (
	unicast castKind = iota
	broadcast
	multicast
	// unicastInLinkBroadcast is an IP unicast to us in a link-layer
	// broadcast or multicast frame: delivered like unicast, never answered
	// with an ICMP error.
	unicastInLinkBroadcast
)
