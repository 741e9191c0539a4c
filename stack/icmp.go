package stack

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"

	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/ipv4"
	"github.com/tapnet/tapnet/udp"
)

// handleICMP answers echo requests and hands errors to the endpoint that
// sent the offending datagram. b holds the IP packet; it is released here.
func (s *Stack) handleICMP(n *NIC, b *buffer.Buffer, hl int, kind castKind) {
	st := &s.stats.ICMP
	defer b.ReleaseChain()
	st.Received.Add(1)
	if b.Next != nil {
		// A reassembled ICMP message (a large ping): make it contiguous,
		// it is rare and not worth a chained checksum path.
		c := cloneChain(b)
		defer c.Release()
		b = c
	}
	pkt := b.Bytes()
	m, err := ipv4.ParseICMP(pkt[hl:])
	if err != nil {
		if err == ipv4.ErrICMPChecksum {
			st.BadChecksum.Add(1)
		} else {
			st.Malformed.Add(1)
		}
		return
	}
	h := ipv4.Header(pkt[:hl])
	switch {
	case m.Type() == ipv4.ICMPEcho:
		st.EchoRequests.Add(1)
		if (kind == broadcast || kind == multicast) && !s.opts.EchoBroadcast {
			st.EchoIgnored.Add(1)
			return
		}
		s.sendEchoReply(n, h, m)
	case m.IsError():
		st.ErrorsReceived.Add(1)
		if kind == broadcast || kind == multicast {
			// Errors sent to a broadcast or group address are bogus
			// (RFC 1122 3.2.2; Linux's icmp_rcv drops them).
			st.ErrorsSuppressed.Add(1)
			return
		}
		s.handleICMPError(n, h.Src(), m)
	}
}

// sendEchoReply answers an echo request with the same identifier, sequence
// and data; a reply larger than the MTU is fragmented, as Linux does.
func (s *Stack) sendEchoReply(n *NIC, h ipv4.Header, m ipv4.ICMP) {
	src := h.Dst()
	if !s.IsLocalAddress(src) {
		src = netip.Addr{}
	}
	r, err := s.FindRoute(0, src, h.Src())
	if err != nil {
		return // counted as IP.NoRoute
	}
	b := buffer.Get(len(m))
	b.Append(m)
	ipv4.PutICMPHeader(b.Bytes(), ipv4.ICMPEchoReply, 0, m.RestOfHeader())
	s.stats.ICMP.EchoReplies.Add(1)
	s.sendInternal(&r, ipv4.ProtocolICMP, b, h.TOS())
}

// sendInternal sends a packet the stack itself generated (replies, errors),
// in fragments when it exceeds the path MTU. It never blocks on the link: it
// usually runs on a link's receive path, so a full link queue drops (and
// counts) instead. It takes ownership of b.
func (s *Stack) sendInternal(r *Route, proto uint8, b *buffer.Buffer, tos uint8) {
	f := ipv4.Fields{TOS: tos, TTL: ipv4.DefaultTTL, Protocol: proto, Src: r.LocalAddr, Dst: r.RemoteAddr,
		ID: uint16(s.ipID.Add(1)), TotalLen: ipv4.HeaderLen + b.Len()}
	s.stats.IP.Sent.Add(1)
	switch {
	case r.Loopback:
		ipv4.Put(b.Prepend(ipv4.HeaderLen), f)
		s.stats.IP.Loopback.Add(1)
		s.handleIPv4(r.NIC, b, true, false)
	case f.TotalLen <= r.mtu4():
		ipv4.Put(b.Prepend(ipv4.HeaderLen), f)
		s.resolveAndWrite(r, b, false)
	default:
		s.fragment(r, b, f, r.mtu4(), false)
	}
}

// handleICMPError finds the socket whose datagram provoked an ICMP error
// from the quoted header and tells it; n is the NIC the error came in by.
func (s *Stack) handleICMPError(n *NIC, from netip.Addr, m ipv4.ICMP) {
	errno, hard := errnoForICMPv4(m.Type(), m.Code())
	if errno == 0 {
		return
	}
	// An error about a datagram we sent to a broadcast or multicast
	// address is bogus: many hosts would answer one datagram (Linux drops
	// these too).
	if body := m.Body(); len(body) >= ipv4.HeaderLen {
		if d := ipv4.Header(body).Dst(); d == ipv4.Broadcast || ipv4.IsMulticast(d) || s.isSubnetBroadcast(d) {
			s.stats.ICMP.ErrorsSuppressed.Add(1)
			return
		}
	}
	e := ControlError{Errno: errno, Hard: hard, Type: m.Type(), Code: m.Code(), Info: m.RestOfHeader(), From: from}
	if m.Type() == ipv4.ICMPDestUnreachable && m.Code() == ipv4.CodeFragNeeded {
		s.handleFragNeeded(n, m.Body(), e)
		return
	}
	s.reportLocalError(n, m.Body(), e)
}

// handleFragNeeded lowers the path MTU to the destination of the datagram a
// "fragmentation needed" quotes, then tells its sender. As Linux's
// __udp4_lib_err, it believes only a message that quotes a datagram one of
// our sockets could have sent: anyone can forge one to shrink our packets.
func (s *Stack) handleFragNeeded(n *NIC, quoted []byte, e ControlError) {
	ep, local, remote := s.quotedSender(n, quoted)
	if ep == nil {
		return
	}
	s.learnFragNeeded(local.Addr(), remote.Addr(), int(uint16(e.Info)))
	s.handTo(ep, local, remote, e, &s.stats.ICMP.ErrorsDelivered)
}

// reportLocalError delivers e to the endpoint that sent quoted, the start of
// an IP packet we sent (an ICMP error's body, or a packet whose next hop
// could not be resolved). The socket is looked up as a datagram arriving on
// n would be, as Linux's __udp4_lib_err does with the error's incoming
// interface, so that a socket bound to n gets it.
func (s *Stack) reportLocalError(n *NIC, quoted []byte, e ControlError) {
	if ep, local, remote := s.quotedSender(n, quoted); ep != nil {
		s.handTo(ep, local, remote, e, &s.stats.ICMP.ErrorsDelivered)
	}
}

// quotedSender returns the UDP socket that sent quoted, the start of an
// IPv4 packet (its header and at least the ports), and the datagram's
// source and destination; nil when quoted is not the first fragment of a
// UDP datagram some socket of ours could have sent.
func (s *Stack) quotedSender(n *NIC, quoted []byte) (ep TransportEndpoint, local, remote netip.AddrPort) {
	if len(quoted) < ipv4.HeaderLen {
		return nil, local, remote
	}
	ih := ipv4.Header(quoted)
	hl := ih.HeaderLen()
	if hl < ipv4.HeaderLen || len(quoted) < hl+4 || ih.FragmentOffset() != 0 || ih.Protocol() != udp.ProtocolNumber {
		return nil, local, remote
	}
	return s.errorEndpoint(n, ih.Src(), ih.Dst(), quoted[hl:])
}

// deliverError hands e to the UDP socket that sent a datagram from src to
// dst whose UDP header starts hdr (at least its four bytes of ports),
// looked up as a datagram arriving on n would be, and counts it in
// delivered.
func (s *Stack) deliverError(n *NIC, src, dst netip.Addr, hdr []byte, e ControlError, delivered *atomic.Uint64) {
	if ep, local, remote := s.errorEndpoint(n, src, dst, hdr); ep != nil {
		s.handTo(ep, local, remote, e, delivered)
	}
}

// errorEndpoint returns the UDP socket that sent a datagram from src to
// dst whose UDP header starts hdr, looked up as a datagram arriving on n
// would be, with the datagram's two socket addresses.
func (s *Stack) errorEndpoint(n *NIC, src, dst netip.Addr, hdr []byte) (ep TransportEndpoint, local, remote netip.AddrPort) {
	local = netip.AddrPortFrom(src, binary.BigEndian.Uint16(hdr))
	remote = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(hdr[2:]))
	ep = s.demux.lookup(udp.ProtocolNumber, local, remote, n.id)
	return ep, local, remote
}

// handTo gives e, about a datagram from local to remote, to ep and counts
// it in delivered.
func (s *Stack) handTo(ep TransportEndpoint, local, remote netip.AddrPort, e ControlError, delivered *atomic.Uint64) {
	e.Remote = remote
	if !e.From.IsValid() {
		e.From = local.Addr()
	}
	delivered.Add(1)
	ep.HandleError(e)
}

// sendICMPError sends an ICMP error about the packet in b (IP header at the
// front), with the checks of RFC 1122 3.2.2 and the rate limit.
func (s *Stack) sendICMPError(n *NIC, b *buffer.Buffer, typ, code uint8, info uint32) {
	st := &s.stats.ICMP
	pkt := b.Bytes()
	h := ipv4.Header(pkt)
	hl := h.HeaderLen()
	src := h.Src()
	// A martian source cannot be answered, unless it is our own loopback.
	martian := ipv4.IsMartianSource(src) && !s.IsLocalAddress(src)
	if h.FragmentOffset() != 0 || martian || ipv4.IsMulticast(h.Dst()) || h.Dst() == ipv4.Broadcast {
		st.ErrorsSuppressed.Add(1)
		return
	}
	if h.Protocol() == ipv4.ProtocolICMP {
		if len(pkt) < hl+1 || ipv4.ICMP(pkt[hl:]).IsError() || len(pkt) < hl+ipv4.ICMPHeaderLen {
			st.ErrorsSuppressed.Add(1)
			return
		}
	}
	r, err := s.FindRoute(0, h.Dst(), src)
	if err != nil {
		return
	}
	if !r.Loopback && !s.icmpLimit.Allow(src) {
		st.RateLimited.Add(1)
		return
	}
	quote := min(len(pkt), errorRoom(&r)-ipv4.HeaderLen-ipv4.ICMPHeaderLen)
	nb := buffer.Get(ipv4.ICMPHeaderLen + quote)
	nb.SetLen(ipv4.ICMPHeaderLen)
	nb.Append(pkt[:quote])
	ipv4.PutICMPHeader(nb.Bytes(), typ, code, info)
	st.ErrorsSent.Add(1)
	s.sendInternal(&r, ipv4.ProtocolICMP, nb, 0)
}

// errorRoom returns the size of an ICMP error sent along r: at most 576
// bytes (RFC 1812 4.3.2.3), and no more than the path MTU, so that it
// never needs fragmenting, as Linux's icmp_send sizes it.
func errorRoom(r *Route) int {
	if r.Loopback {
		return ipv4.MaxErrorLen
	}
	return min(ipv4.MaxErrorLen, r.mtu4())
}

// reassemblyTimeout sends ICMP time exceeded (fragment reassembly time
// exceeded) about a datagram whose first fragment arrived but never
// completed, as Linux does.
func (s *Stack) reassemblyTimeout(first []byte) {
	// first is the first fragment's header and 8 bytes of payload, not a
	// whole packet, so it is checked here rather than with ipv4.Parse.
	if len(first) < ipv4.HeaderLen || ipv4.Header(first).HeaderLen() > len(first) {
		return
	}
	h := ipv4.Header(first)
	n := s.localNIC(h.Dst())
	if n == nil {
		return
	}
	b := buffer.Get(len(first))
	b.Append(first)
	s.sendICMPError(n, b, ipv4.ICMPTimeExceeded, ipv4.CodeReassemblyTimeout, 0)
	b.Release()
}
