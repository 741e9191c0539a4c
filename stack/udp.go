package stack

import (
	"encoding/binary"
	"net/netip"
	"syscall"

	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/internal/checksum"
	"github.com/tapnet/tapnet/udp"
)

// UDP is the stack's one transport: it parses and builds UDP headers with
// package udp's wire functions and counts every outcome in Stats.UDP.

// deliverUDP validates the UDP header of the packet in b (its IP header is
// hl bytes) and hands the payload to the matching endpoints: one for
// unicast, every match otherwise. It takes ownership of b.
func (s *Stack) deliverUDP(n *NIC, b *buffer.Buffer, hl int, kind castKind, src, dst netip.Addr, ttl, tos uint8) {
	st := &s.stats.UDP
	st.Received.Add(1)
	if s.udpInputHook != nil {
		s.udpInputHook(b.Bytes()[:hl])
	}
	h, err := parseUDP(b, hl, src, dst)
	if err != nil {
		switch err {
		case udp.ErrChecksum:
			st.ChecksumErrors.Add(1)
		case udp.ErrZeroChecksum:
			st.ZeroChecksum.Add(1)
		default:
			st.Malformed.Add(1)
		}
		b.ReleaseChain()
		return
	}
	local, remote := netip.AddrPortFrom(dst, h.DstPort()), netip.AddrPortFrom(src, h.SrcPort())
	plen := h.Length() - udp.HeaderLen
	if kind == unicast || kind == unicastInLinkBroadcast {
		ep := s.demux.lookup(udp.ProtocolNumber, local, remote, n.id)
		if ep == nil {
			st.NoPort.Add(1)
			if kind == unicast {
				s.sendPortUnreachable(n, b)
			}
			b.ReleaseChain()
			return
		}
		trimChain(b, hl+udp.HeaderLen, plen)
		s.countDelivery(ep.HandlePacket(Packet{Payload: Payload{b}, Src: remote, Dst: local, TTL: ttl, TOS: tos, NIC: n.id}))
		return
	}
	var scratch [8]TransportEndpoint
	eps := s.demux.lookupAll(scratch[:0], udp.ProtocolNumber, local, remote, n.id)
	if kind == multicast {
		eps = filterMulticast(eps, dst, src, n.id)
	}
	if len(eps) == 0 {
		// No port unreachable for broadcasts and multicasts (RFC 1122).
		st.NoPort.Add(1)
		b.ReleaseChain()
		return
	}
	trimChain(b, hl+udp.HeaderLen, plen)
	for i, ep := range eps {
		p := b
		if i < len(eps)-1 {
			p = cloneChain(b)
		}
		s.countDelivery(ep.HandlePacket(Packet{Payload: Payload{p}, Src: remote, Dst: local, TTL: ttl, TOS: tos, NIC: n.id}))
	}
}

// countDelivery counts what an endpoint did with a datagram.
func (s *Stack) countDelivery(d Delivery) {
	st := &s.stats.UDP
	switch d {
	case Delivered:
		st.Delivered.Add(1)
	case ReceiveBufferFull:
		st.BufferErrors.Add(1)
	default:
		st.NoPort.Add(1)
	}
}

// WriteUDP sends payload as one UDP datagram along r, from r.LocalAddr and
// srcPort to r.RemoteAddr and dstPort. It builds the UDP header and
// checksum in the caller's goroutine, then sends the datagram as IPv4:
// fragmented when it exceeds the MTU, unless o.DF (then EMSGSIZE, before
// anything is sent); looped back to our own sockets for our addresses and,
// with o.Loop, for multicast; blocking while the link's queue is full.
// payload is copied: the caller keeps it. Sends are counted in Stats.UDP.
func (s *Stack) WriteUDP(r *Route, srcPort, dstPort uint16, payload []byte, o WriteOptions) error {
	if r == nil || r.NIC == nil {
		return syscall.EINVAL // not a route FindRoute returned
	}
	n := udp.HeaderLen + len(payload)
	maxPayload := udp.MaxPayload
	if r.RemoteAddr.Is6() {
		maxPayload = udp.MaxPayload6
	}
	if len(payload) > maxPayload || o.DF && n > r.MaxPayload() {
		return syscall.EMSGSIZE
	}
	b := udpDatagram(r, srcPort, dstPort, payload)
	if err := s.writePacket(r, udp.ProtocolNumber, b, o); err != nil {
		s.stats.UDP.SendErrors.Add(1)
		return err
	}
	s.stats.UDP.Sent.Add(1)
	return nil
}

// udpDatagram builds the datagram carrying payload, with a partial checksum
// when the link completes it (see Route.CanOffloadChecksum).
func udpDatagram(r *Route, srcPort, dstPort uint16, payload []byte) *buffer.Buffer {
	n := udp.HeaderLen + len(payload)
	b := buffer.Get(n)
	b.SetLen(n)
	pkt := b.Bytes()
	copy(pkt[udp.HeaderLen:], payload)
	if r.CanOffloadChecksum(n) {
		udp.PutHeaderPartial(pkt, srcPort, dstPort, r.LocalAddr, r.RemoteAddr)
		b.Offload.ChecksumPartial = true
	} else {
		udp.PutHeader(pkt, srcPort, dstPort, r.LocalAddr, r.RemoteAddr)
	}
	return b
}

// finishPartialChecksum completes the partial checksum of the UDP datagram
// in b, as the link would have, for a datagram the stack must fragment or
// read itself after all; it does nothing to one with a full checksum.
func finishPartialChecksum(b *buffer.Buffer) {
	if !b.Offload.ChecksumPartial {
		return
	}
	b.Offload.ChecksumPartial = false
	pkt := b.Bytes()
	if len(pkt) < udp.HeaderLen {
		return
	}
	c := ^checksum.Fold(checksum.Sum(pkt, 0))
	if c == 0 {
		c = 0xffff // zero would mean no checksum
	}
	binary.BigEndian.PutUint16(pkt[6:8], c)
}

// parseUDP validates the UDP header that starts off bytes into b, after the
// IP header. A datagram reassembled from fragments continues in b.Next;
// the checksum then covers the bytes up to the length field's end, which
// may come before the last part's (Linux trims to it).
func parseUDP(b *buffer.Buffer, off int, src, dst netip.Addr) (udp.Header, error) {
	first := b.Bytes()[off:]
	if b.Next == nil {
		if b.Offload.ChecksumValid {
			return udp.ParseHeaderVerified(first, len(first))
		}
		return udp.ParseHeader(first, len(first), 0, src, dst)
	}
	total := b.ChainLen() - off
	want := total
	if len(first) >= udp.HeaderLen {
		want = min(udp.Header(first).Length(), total)
	}
	return udp.ParseHeader(first, total, sumParts(b.Next, want-len(first)), src, dst)
}

// sumParts returns the checksum accumulator of the first n bytes of the
// chain starting at p.
func sumParts(p *buffer.Buffer, n int) uint64 {
	var sum uint64
	for ; p != nil && n > 0; p = p.Next {
		part := p.Bytes()[:min(p.Len(), n)]
		sum = checksum.Sum(part, sum)
		n -= len(part)
	}
	return sum
}

// filterMulticast keeps the endpoints that want a group datagram. Like
// Linux with IP_MULTICAST_ALL (the default), an endpoint that joined nothing
// itself still accepts groups joined by others; AcceptMulticast decides.
func filterMulticast(eps []TransportEndpoint, group, src netip.Addr, nic NICID) []TransportEndpoint {
	out := eps[:0]
	for _, ep := range eps {
		if ep.AcceptMulticast(group, src, nic) {
			out = append(out, ep)
		}
	}
	return out
}

// trimChain removes the first off bytes of a chain and limits it to n bytes.
func trimChain(b *buffer.Buffer, off, n int) {
	b.TrimFront(off)
	for p := b; p != nil; p = p.Next {
		if n <= 0 {
			p.Truncate(0)
			continue
		}
		if p.Len() > n {
			p.Truncate(n)
		}
		n -= p.Len()
	}
}

func cloneChain(b *buffer.Buffer) *buffer.Buffer {
	c := buffer.Get(b.ChainLen())
	for p := b; p != nil; p = p.Next {
		c.Append(p.Bytes())
	}
	return c
}
