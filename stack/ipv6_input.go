package stack

import (
	"encoding/binary"
	"net/netip"

	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/ipv6"
	"github.com/tapnet/tapnet/udp"
)

// handleIPv6 processes an IPv6 packet (link header removed) received on n,
// or looped back from our own output when loop is set; linkMcast says the
// frame went to a link-layer multicast address, which is never answered
// with most ICMPv6 errors (RFC 4443 §2.4(e)). It takes ownership of b.
func (s *Stack) handleIPv6(n *NIC, b *buffer.Buffer, loop, linkMcast bool) {
	st := &s.stats.IPv6
	st.Received.Add(1)
	if !n.v6.enabled {
		st.NotForUs.Add(1)
		b.Release()
		return
	}
	h, err := ipv6.Parse(b.Bytes())
	if err != nil {
		switch err {
		case ipv6.ErrTooShort:
			st.TooShort.Add(1)
		case ipv6.ErrVersion:
			st.BadVersion.Add(1)
		case ipv6.ErrJumbogram:
			st.Jumbogram.Add(1)
		default:
			st.BadPayloadLen.Add(1)
		}
		b.Release()
		return
	}
	b.Truncate(ipv6.HeaderLen + h.PayloadLen())
	src, dst := h.Src(), h.Dst()
	if !loop && !s.checkAddrs6(n, src, dst) {
		b.Release()
		return
	}
	kind, ok := s.classify6(n, dst, loop)
	if !ok {
		b.Release()
		return
	}
	if linkMcast && kind == unicast {
		kind = unicastInLinkBroadcast
	}
	ext, err := ipv6.WalkExtHeaders(b.Bytes())
	if err != nil {
		s.extHeaderDrop(n, b, err, ext, kind)
		b.Release()
		return
	}
	if ext.AtomicFragment {
		st.AtomicFragments.Add(1)
	}
	if ext.Fragmented {
		st.FragmentsIn.Add(1)
		head := s.reassemble6(b, ext)
		if head == nil {
			return
		}
		st.Reassembled.Add(1)
		b = head
		if ext, err = walkReassembled(b); err != nil {
			s.extHeaderDrop(n, b, err, ext, kind)
			b.ReleaseChain()
			return
		}
	}
	s.deliver6(n, b, ext, kind, src, dst)
}

// checkAddrs6 drops martians: multicast or loopback sources and loopback
// or unspecified destinations arriving from a link.
func (s *Stack) checkAddrs6(n *NIC, src, dst netip.Addr) bool {
	st := &s.stats.IPv6
	switch {
	case src.IsMulticast() || src.IsLoopback() || src.Is4In6():
		st.MartianSource.Add(1)
		return false
	case dst.IsLoopback() || dst.IsUnspecified() || dst.Is4In6():
		st.MartianDest.Add(1)
		return false
	}
	return true
}

// classify6 decides whether a packet to dst is ours and how it was
// addressed. A link-local destination must be the receiving NIC's own:
// link-local addresses never cross links.
func (s *Stack) classify6(n *NIC, dst netip.Addr, loop bool) (castKind, bool) {
	st := &s.stats.IPv6
	switch {
	case dst.IsMulticast():
		if loop || n.acceptsGroup(dst) {
			return multicast, true
		}
	case loop || n.hasAddress(dst):
		return unicast, true
	case dst.IsLinkLocalUnicast():
		if s.IsLocalAddress(dst) {
			st.ScopeViolation.Add(1)
			return 0, false
		}
	case s.IsLocalAddress(dst):
		return unicast, true
	}
	st.NotForUs.Add(1)
	return 0, false
}

// extHeaderDrop counts a packet whose extension headers were refused and
// sends the Parameter Problem the walk asked for.
func (s *Stack) extHeaderDrop(n *NIC, b *buffer.Buffer, err error, ext ipv6.ExtHeaders, kind castKind) {
	st := &s.stats.IPv6
	switch err {
	case ipv6.ErrUnknownOption:
		st.UnknownOption.Add(1)
	case ipv6.ErrRoutingHeader, ipv6.ErrRoutingMulticast:
		st.RoutingHeader.Add(1)
	default:
		st.BadExtHeaders.Add(1)
	}
	if ext.ParamProblem {
		s.sendICMPv6Error(n, b, ipv6.ICMPParamProblem, ext.ProblemCode, ext.ProblemPointer, kind)
	}
}

// walkReassembled walks the extension headers after a reassembled
// packet's fragment header. The walker needs the chain in one buffer,
// which the first fragment had to hold (RFC 8200 §4.5): it walks the first
// part with a payload length cut to it, then restores the real one.
func walkReassembled(b *buffer.Buffer) (ipv6.ExtHeaders, error) {
	p := b.Bytes()
	total := binary.BigEndian.Uint16(p[4:6])
	binary.BigEndian.PutUint16(p[4:6], uint16(len(p)-ipv6.HeaderLen))
	ext, err := ipv6.WalkExtHeaders(p)
	binary.BigEndian.PutUint16(p[4:6], total)
	if err == nil && ext.Fragmented {
		err = ipv6.ErrFragmentOffset // a fragment inside a fragment
	}
	return ext, err
}

// deliver6 hands a whole packet to its upper layer: ICMPv6 (with NDP and
// MLD) or UDP; anything else is answered with a Parameter Problem pointing
// at the unknown next header.
func (s *Stack) deliver6(n *NIC, b *buffer.Buffer, ext ipv6.ExtHeaders, kind castKind, src, dst netip.Addr) {
	st := &s.stats.IPv6
	h := ipv6.Header(b.Bytes())
	switch ext.Protocol {
	case ipv6.ProtocolICMPv6:
		st.Delivered.Add(1)
		s.handleICMPv6(n, b, ext, kind)
	case udp.ProtocolNumber:
		st.Delivered.Add(1)
		s.deliverUDP(n, b, ext.Offset, kind, src, dst, h.HopLimit(), h.TrafficClass())
	case ipv6.ProtocolNoNextHeader:
		st.NoNextHeader.Add(1)
		b.ReleaseChain()
	default:
		st.UnknownProtocol.Add(1)
		s.sendICMPv6Error(n, b, ipv6.ICMPParamProblem, ipv6.CodeUnrecognizedNextHeader, uint32(ext.ProtocolPointer), kind)
		b.ReleaseChain()
	}
}
