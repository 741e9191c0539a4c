package stack

import (
	"encoding/binary"
	"net/netip"

	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/ipv4"
	"github.com/tapnet/tapnet/ipv6"
	"github.com/tapnet/tapnet/udp"
)

// handleICMPv6 dispatches an ICMPv6 message that starts after the IPv6
// and extension headers ext describes: echo requests are answered, errors
// go to the socket that caused them, NDP and MLD to the NIC. It releases
// b.
func (s *Stack) handleICMPv6(n *NIC, b *buffer.Buffer, ext ipv6.ExtHeaders, kind castKind) {
	off := ext.Offset
	st := &s.stats.ICMPv6
	defer b.ReleaseChain()
	st.Received.Add(1)
	if b.Next != nil {
		// A reassembled message (a large ping): make it contiguous.
		c := cloneChain(b)
		defer c.Release()
		b = c
	}
	pkt := b.Bytes()
	h := ipv6.Header(pkt)
	src, dst := h.Src(), h.Dst()
	m, err := ipv6.ParseICMP(pkt[off:], src, dst)
	if err != nil {
		if err == ipv6.ErrICMPChecksum {
			st.BadChecksum.Add(1)
		} else {
			st.Malformed.Add(1)
		}
		return
	}
	if s.icmp6Hook != nil {
		s.icmp6Hook(src, m)
	}
	switch t := m.Type(); {
	case t == ipv6.ICMPEchoRequest:
		st.EchoRequests.Add(1)
		// Linux answers multicast pings too (echo_ignore_multicast=0).
		s.sendEchoReply6(n, h, m)
	case m.IsError():
		st.ErrorsReceived.Add(1)
		if kind == multicast {
			st.ErrorsSuppressed.Add(1)
			return
		}
		s.handleICMPv6Error(n, src, m)
	case t >= ipv6.ICMPRouterSolicit && t <= ipv6.ICMPRedirect:
		n.handleNDP(m, h)
	case t == ipv6.ICMPMLDQuery || t == ipv6.ICMPMLDv1Report || t == ipv6.ICMPMLDv1Done || t == ipv6.ICMPMLDv2Report:
		if !mldHeaderOK(ext, h) {
			st.MLDBadIPHeader.Add(1)
			return
		}
		n.handleMLD(m, src)
	case t == ipv6.ICMPEchoReply:
		// No ping sockets yet: nothing waits for replies.
	default:
		st.UnknownType.Add(1)
	}
}

// mldHeaderOK reports whether an MLD message came as RFC 3810 §5 and
// §6.2 require: with hop limit 1 and a Router Alert option for MLD in a
// hop-by-hop header (which RFC 2710 asks of MLDv1 too).
func mldHeaderOK(ext ipv6.ExtHeaders, h ipv6.Header) bool {
	return ext.RouterAlert && ext.RouterAlertValue == ipv6.RouterAlertMLD && h.HopLimit() == 1
}

// sendEchoReply6 answers an echo request with its identifier, sequence and
// data, from the address it was sent to when that is ours (else the
// address source selection picks, as for a multicast ping); a reply larger
// than the MTU is fragmented.
func (s *Stack) sendEchoReply6(n *NIC, h ipv6.Header, m ipv6.ICMP) {
	src := h.Dst()
	if src.IsMulticast() || !s.IsLocalAddress(src) {
		src = netip.Addr{}
	}
	r, err := s.findRoute6(n.id, src, h.Src())
	if err != nil {
		return
	}
	b := buffer.Get(len(m))
	b.Append(m)
	p := b.Bytes()
	ipv6.PutICMPHeader(p, ipv6.ICMPEchoReply, 0, m.RestOfHeader())
	ipv6.PutChecksum(p, r.LocalAddr, r.RemoteAddr)
	s.stats.ICMPv6.EchoReplies.Add(1)
	s.sendInternal6(&r, ipv6.ProtocolICMPv6, b, r.NIC.hopLimit6())
}

// sendPortUnreachable answers a datagram to a closed port (b holds it from
// its IP header) in its IP version's ICMP.
func (s *Stack) sendPortUnreachable(n *NIC, b *buffer.Buffer) {
	if p := b.Bytes(); len(p) > 0 && p[0]>>4 == 6 {
		s.sendICMPv6Error(n, b, ipv6.ICMPDestUnreachable, ipv6.CodePortUnreachable, 0, unicast)
		return
	}
	s.sendICMPError(n, b, ipv4.ICMPDestUnreachable, ipv4.CodePortUnreachable, 0)
}

// sendICMPv6Error sends an ICMPv6 error about the packet in b (IPv6 header
// at the front, possibly the first part of a chain) with RFC 4443
// §2.4(e)'s rules: never about an ICMPv6 error or a redirect, nor about a
// packet from the unspecified or a multicast source, nor about one to a
// multicast address (IP or link layer) unless it is a Packet Too Big or a
// Parameter Problem for an unrecognized option (code 2); then the rate
// limit.
func (s *Stack) sendICMPv6Error(n *NIC, b *buffer.Buffer, typ, code uint8, info uint32, kind castKind) {
	st := &s.stats.ICMPv6
	pkt := b.Bytes()
	h := ipv6.Header(pkt)
	src := h.Src()
	mcastOK := typ == ipv6.ICMPPacketTooBig || typ == ipv6.ICMPParamProblem && code == ipv6.CodeUnrecognizedOption
	if src.IsUnspecified() || src.IsMulticast() || (kind != unicast && !mcastOK) || aboutICMPv6Error(pkt) {
		st.ErrorsSuppressed.Add(1)
		return
	}
	local := h.Dst()
	if local.IsMulticast() || !s.IsLocalAddress(local) {
		local = netip.Addr{}
	}
	r, err := s.findRoute6(n.id, local, src)
	if err != nil {
		return
	}
	if !r.Loopback && !s.v6.icmpLimit.Allow(src) {
		st.RateLimited.Add(1)
		return
	}
	quote := min(len(pkt), ipv6.MaxErrorLen-ipv6.HeaderLen-ipv6.ICMPHeaderLen)
	nb := buffer.Get(ipv6.ICMPHeaderLen + quote)
	nb.SetLen(ipv6.ICMPHeaderLen)
	nb.Append(pkt[:quote])
	p := nb.Bytes()
	ipv6.PutICMPHeader(p, typ, code, info)
	ipv6.PutChecksum(p, r.LocalAddr, r.RemoteAddr)
	st.ErrorsSent.Add(1)
	s.sendInternal6(&r, ipv6.ProtocolICMPv6, nb, r.NIC.hopLimit6())
}

// aboutICMPv6Error reports whether pkt carries an ICMPv6 error or a
// redirect (directly after the IPv6 header; one behind extension headers
// is found by the walk's protocol only, which the callers have checked).
func aboutICMPv6Error(pkt []byte) bool {
	ext, err := ipv6.WalkExtHeaders(pkt)
	if err != nil && !ext.ParamProblem {
		return false
	}
	if ext.Protocol != ipv6.ProtocolICMPv6 || ext.Fragmented && ext.Fragment.Offset != 0 {
		return false
	}
	if ext.Offset >= len(pkt) {
		return true // cannot tell: assume the worst
	}
	t := pkt[ext.Offset]
	return t < 128 || t == ipv6.ICMPRedirect
}

// handleICMPv6Error learns a path MTU from a Packet Too Big and tells the
// socket whose datagram caused the error.
func (s *Stack) handleICMPv6Error(n *NIC, from netip.Addr, m ipv6.ICMP) {
	errno, hard := errnoForICMPv6(m.Type(), m.Code())
	if errno == 0 {
		return
	}
	body := m.Body()
	if len(body) < ipv6.HeaderLen {
		s.stats.ICMPv6.Malformed.Add(1)
		return
	}
	quoted := ipv6.Header(body)
	if quoted.Dst().IsMulticast() && m.Type() != ipv6.ICMPPacketTooBig {
		s.stats.ICMPv6.ErrorsSuppressed.Add(1)
		return
	}
	if m.Type() == ipv6.ICMPPacketTooBig {
		if !s.IsLocalAddress(quoted.Src()) {
			return // not about a packet of ours
		}
		s.stats.ICMPv6.PacketTooBig.Add(1)
		s.pmtu.learn(quoted.Dst(), int(m.MTU()))
	}
	s.reportLocalError6(n, body, ControlError{Errno: errno, Hard: hard, Type: m.Type(), Code: m.Code(),
		Info: m.RestOfHeader(), From: from})
}

// reportLocalError6 delivers e to the endpoint that sent quoted, the start
// of an IPv6 packet of ours; n is the NIC the error concerns (it came in
// by it, or the packet was leaving by it), so that sockets bound to a NIC
// hear of it, as on Linux.
func (s *Stack) reportLocalError6(n *NIC, quoted []byte, e ControlError) {
	if len(quoted) < ipv6.HeaderLen {
		return
	}
	ih := ipv6.Header(quoted)
	off, proto := ipv6.HeaderLen, ih.NextHeader()
	if proto == ipv6.ProtocolFragment && len(quoted) >= off+fragmentHeaderLen {
		if binary.BigEndian.Uint16(quoted[off+2:])&^7 != 0 {
			return // not the first fragment: no ports
		}
		proto = quoted[off]
		off += fragmentHeaderLen
	}
	if proto != udp.ProtocolNumber || len(quoted) < off+4 {
		return
	}
	s.deliverError(n, ih.Src(), ih.Dst(), quoted[off:], e, &s.stats.ICMPv6.ErrorsDelivered)
}
