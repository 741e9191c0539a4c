package stack

import (
	"net/netip"
	"sync/atomic"

	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/internal/ipfrag"
	"github.com/tapnet/tapnet/ipv4"
	"github.com/tapnet/tapnet/udp"
)

// handleIPv4 processes an IPv4 packet (Ethernet header removed) received on
// n, or looped back from our own output when loop is set; linkMcast says the
// frame was sent to a link-layer broadcast or multicast address, which is
// never answered with an ICMP error (RFC 1122 3.2.2). It takes ownership
// of b. Each step either passes the packet on or drops it and counts why.
func (s *Stack) handleIPv4(n *NIC, b *buffer.Buffer, loop, linkMcast bool) {
	st := &s.stats.IP
	st.Received.Add(1)
	h, err := ipv4.Parse(b.Bytes())
	if err != nil {
		drop(b, s.parseDrop(err))
		return
	}
	b.Truncate(h.TotalLen())
	if !loop {
		if why := s.screenArrival(h); why != nil {
			drop(b, why)
			return
		}
	}
	if h.HeaderLen() > ipv4.HeaderLen {
		if why := s.screenOptions(h); why != nil {
			drop(b, why)
			return
		}
	}
	kind, ok := s.classifyDestination(n, h, b.Bytes(), loop)
	if !ok {
		drop(b, &st.NotForUs)
		return
	}
	if h.IsFragment() {
		if b = s.reassemble(b, h); b == nil {
			return
		}
		h = ipv4.Header(b.Bytes())
	}
	st.Delivered.Add(1)
	s.deliverIPv4(n, b, h, kind, linkMcast)
}

// drop releases b and counts why it was dropped.
func drop(b *buffer.Buffer, why *atomic.Uint64) {
	why.Add(1)
	b.Release()
}

// parseDrop returns the counter for the reason ipv4.Parse refused a packet.
func (s *Stack) parseDrop(err error) *atomic.Uint64 {
	st := &s.stats.IP
	switch err {
	case ipv4.ErrTooShort:
		return &st.TooShort
	case ipv4.ErrVersion:
		return &st.BadVersion
	case ipv4.ErrHeaderLen:
		return &st.BadHeaderLen
	case ipv4.ErrTotalLen:
		return &st.BadTotalLen
	case ipv4.ErrChecksum:
		return &st.BadChecksum
	}
	return &st.BadFragment
}

// screenArrival returns the counter for the reason a well-formed packet
// from a link must be dropped, or nil to accept it: martian addresses or a
// zero TTL. Our own looped packets skip it: a looped multicast copy keeps
// IP_MULTICAST_TTL 0, and loopback addresses are theirs.
func (s *Stack) screenArrival(h ipv4.Header) *atomic.Uint64 {
	st := &s.stats.IP
	src, dst := h.Src(), h.Dst()
	switch {
	case s.isMartianSource(src, dst, h.Protocol()):
		return &st.MartianSource
	case dst.IsLoopback():
		// 127.0.0.0/8 never comes from a wire (Linux's martian destination).
		return &st.MartianDestination
	case h.TTL() == 0:
		return &st.ZeroTTL
	}
	return nil
}

// screenOptions accepts (and counts) a header whose options are well
// formed and carry no source route, which a host refuses.
func (s *Stack) screenOptions(h ipv4.Header) *atomic.Uint64 {
	st := &s.stats.IP
	switch h.CheckOptions() {
	case nil:
		st.WithOptions.Add(1)
		return nil
	case ipv4.ErrSourceRoute:
		return &st.SourceRoute
	}
	return &st.BadOptions
}

// classifyDestination says how pkt, with header h, arriving on n is
// addressed to us, or false when it is not.
func (s *Stack) classifyDestination(n *NIC, h ipv4.Header, pkt []byte, loop bool) (castKind, bool) {
	dst := h.Dst()
	switch {
	case ipv4.IsMulticast(dst) && (loop || n.acceptsGroup(dst)):
		// Our own looped sends were checked against the group on output.
		return multicast, true
	case loop || s.IsLocalAddress(dst):
		return unicast, true
	case dst == ipv4.Broadcast || n.isSubnetBroadcast(dst):
		return broadcast, true
	case !loop && n.awaitsDHCPReply(h, pkt):
		// Delivered like unicast, but nothing is answered with an ICMP
		// error for an address that is not ours yet.
		return unicastInLinkBroadcast, true
	}
	return 0, false
}

// reassemble hands the fragment b, whose header is h, to the reassembler.
// When it completes a datagram, reassemble returns it as a chain behind a
// fresh header without options (carrying this fragment's TOS and TTL), so
// that the rest of input, and ICMP errors quoting it, see an ordinary
// packet; otherwise nil.
func (s *Stack) reassemble(b *buffer.Buffer, h ipv4.Header) *buffer.Buffer {
	st := &s.stats.IP
	st.FragmentsIn.Add(1)
	f := ipv4.Fields{TOS: h.TOS(), ID: h.ID(), TTL: h.TTL(), Protocol: h.Protocol(), Src: h.Src(), Dst: h.Dst()}
	key := ipfrag.Key{Src: f.Src, Dst: f.Dst, ID: uint32(f.ID), Protocol: f.Protocol}
	// b, and h with it, belong to the reassembler from here on.
	head, ok := s.reasm.Add(ipfrag.Fragment{Key: key, Offset: h.FragmentOffset(), More: h.MoreFragments(), HeaderLen: h.HeaderLen(), Buf: b})
	if !ok {
		return nil
	}
	st.Reassembled.Add(1)
	f.TotalLen = ipv4.HeaderLen + head.ChainLen()
	hdr := head.Prepend(ipv4.HeaderLen)
	if hdr == nil || f.TotalLen > ipv4.MaxTotalLen {
		st.BadFragment.Add(1)
		head.ReleaseChain()
		return nil
	}
	ipv4.Put(hdr, f)
	return head
}

// deliverIPv4 hands a whole datagram addressed to us to its protocol.
func (s *Stack) deliverIPv4(n *NIC, b *buffer.Buffer, h ipv4.Header, kind castKind, linkMcast bool) {
	hl := h.HeaderLen()
	switch h.Protocol() {
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
	if h.Protocol() != udp.ProtocolNumber {
		s.stats.IP.UnknownProtocol.Add(1)
		if kind == unicast {
			s.sendICMPError(n, b, ipv4.ICMPDestUnreachable, ipv4.CodeProtocolUnreachable, 0)
		}
		b.ReleaseChain()
		return
	}
	s.deliverUDP(n, b, hl, kind, h.Src(), h.Dst(), h.TTL(), h.TOS())
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
