package stack

import (
	"fmt"
	"sync"
	"syscall"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/ipv4"
	"github.com/tapnet/tapnet/ipv6"
	"github.com/tapnet/tapnet/link"
	"github.com/tapnet/tapnet/udp"
)

// This file is the send side of link offloads: partial checksums, UDP
// super-frames, and batches of datagrams written in one WriteFrames call.

// Offloads returns the jobs the NIC's link does for the stack (zero on lo).
func (n *NIC) Offloads() link.Offloads { return n.off }

// CanOffloadChecksum reports whether a datagram of plen transport bytes
// along r may leave with a partial checksum for the link to complete: an
// IPv4 unicast or broadcast, or an IPv6 unicast, that goes out whole (within
// the path MTU) on a link that completes checksums; never a looped,
// multicast or fragmented copy, which the stack reads or splits itself.
func (r *Route) CanOffloadChecksum(plen int) bool {
	if r.Loopback || r.Multicast || r.NIC == nil || !r.NIC.off.TxChecksum {
		return false
	}
	hl, mtu := r.ipHeaderAndMTU()
	return hl != 0 && hl+plen <= mtu
}

// ipHeaderAndMTU returns the length of the IP header a datagram along r
// gets from the stack and the most bytes it may take whole: the path MTU.
// Both are 0 for a route of neither family.
func (r *Route) ipHeaderAndMTU() (int, int) {
	switch {
	case r.RemoteAddr.Is4():
		return ipv4.HeaderLen, r.mtu4()
	case r.RemoteAddr.Is6():
		return ipv6.HeaderLen, r.mtu6()
	}
	return 0, 0
}

// maxSuperPacket bounds the IP packet of a super-frame, header included:
// IPv4's total length, and the TAP's largest frame for IPv6 too (whose
// payload length alone could reach it).
const maxSuperPacket = 65535

// maxGSOPayload returns the most UDP bytes (header included) a super-frame
// of segSize-byte payloads may carry along r, or 0 when the link has no
// segmentation offload or the route cannot use it: each segment must go
// out whole, within the path MTU.
func (r *Route) maxGSOPayload(segSize int) int {
	if r.Loopback || r.Multicast || r.Broadcast || r.NIC == nil || r.NIC.off.MaxGSOSize == 0 ||
		!r.NIC.off.TxChecksum || segSize == 0 {
		return 0
	}
	hl, mtu := r.ipHeaderAndMTU()
	if hl == 0 || hl+udp.HeaderLen+segSize > mtu {
		return 0
	}
	return min(r.NIC.off.MaxGSOSize-r.NIC.hdrLen, maxSuperPacket) - hl
}

// transportOffset returns where the transport header of the IP packet in
// ip starts. Only packets the stack built with a partial checksum ask, so
// the headers are there.
func transportOffset(ip []byte) int {
	if ip[0]>>4 == 6 {
		if off := transportOffset6(ip); off >= 0 {
			return off
		}
		return ipv6.HeaderLen
	}
	return int(ip[0]&0x0f) * 4
}

// maxUDPBatch bounds the datagrams WriteUDPBatch hands the link per call.
const maxUDPBatch = 64

// WriteUDPBatch sends each payload as one datagram along r, as WriteUDP
// would, but lets them reach the link together: on a link with UDP
// segmentation offload, each run of equal-sized payloads (the last may be
// shorter) leaves as one super-frame that the link cuts into datagrams;
// otherwise those that go out whole go to the link in one WriteFrames
// call. It works alike over IPv4 and IPv6 (whose super-frames stay within
// the path MTU). It returns how many were sent and the error that stopped
// it.
func (s *Stack) WriteUDPBatch(r *Route, srcPort, dstPort uint16, payloads [][]byte, o WriteOptions) (int, error) {
	if r == nil || r.NIC == nil {
		return 0, syscall.EINVAL // not a route FindRoute returned
	}
	sent := 0
	for sent < len(payloads) {
		k, err := s.writeUDPRun(r, srcPort, dstPort, payloads[sent:], o)
		sent += k
		s.stats.UDP.Sent.Add(uint64(k))
		if err != nil {
			s.stats.UDP.SendErrors.Add(1)
			return sent, err
		}
	}
	return sent, nil
}

// writeUDPRun sends the first payloads of ps, as many as go out together,
// and returns how many it sent.
func (s *Stack) writeUDPRun(r *Route, srcPort, dstPort uint16, ps [][]byte, o WriteOptions) (int, error) {
	if !udpFits(r, ps[0], o) {
		return 0, syscall.EMSGSIZE
	}
	if k := superRun(r, ps); k > 1 {
		if err := s.writeUDPSuper(r, srcPort, dstPort, ps[:k], o); err != nil {
			return 0, err
		}
		return k, nil
	}
	var bs [maxUDPBatch]*buffer.Buffer
	k := 0
	for k < len(ps) && k < maxUDPBatch && udpFits(r, ps[k], o) {
		bs[k] = udpDatagram(r, srcPort, dstPort, ps[k])
		k++
	}
	if k == 1 {
		if err := s.writePacket(r, udp.ProtocolNumber, bs[0], o); err != nil {
			return 0, err
		}
		return 1, nil
	}
	return s.writeBatch(r, udp.ProtocolNumber, bs[:k], o)
}

// udpFits reports whether payload can be one datagram along r, as
// WriteUDP checks it.
func udpFits(r *Route, payload []byte, o WriteOptions) bool {
	limit := udp.MaxPayload
	if r.RemoteAddr.Is6() {
		limit = udp.MaxPayload6
	}
	return len(payload) <= limit && !(o.DF && udp.HeaderLen+len(payload) > r.MaxPayload())
}

// superRun returns how many leading payloads of ps fit one super-frame:
// segments of len(ps[0]) bytes, the last possibly shorter, within the
// link's limit; 0 when the route has no segmentation offload.
func superRun(r *Route, ps [][]byte) int {
	seg := len(ps[0])
	limit := r.maxGSOPayload(seg)
	if limit == 0 {
		return 0
	}
	total, k := udp.HeaderLen, 0
	// An empty payload cannot be a segment: it would add nothing to cut.
	for k < len(ps) && len(ps[k]) > 0 && len(ps[k]) <= seg && total+len(ps[k]) <= limit {
		total += len(ps[k])
		k++
		if len(ps[k-1]) < seg {
			break // a short segment ends a super-frame
		}
	}
	return k
}

// writeUDPSuper sends ps, a superRun of more than one payload, as one UDP
// super-frame: one header with a partial checksum over the whole, the IP
// header built here (on IPv4 with the first segment's ID; the link numbers
// the others on), and the segment size for the link.
func (s *Stack) writeUDPSuper(r *Route, srcPort, dstPort uint16, ps [][]byte, o WriteOptions) error {
	if s.closed.Load() {
		return ErrStackClosed
	}
	total := udp.HeaderLen
	for _, p := range ps {
		total += len(p)
	}
	b := buffer.Get(total)
	b.SetLen(udp.HeaderLen)
	for _, p := range ps {
		b.Append(p)
	}
	udp.PutHeaderPartial(b.Bytes(), srcPort, dstPort, r.LocalAddr, r.RemoteAddr)
	segs := len(ps)
	if r.RemoteAddr.Is6() {
		ipv6.Put(b.Prepend(ipv6.HeaderLen), ipv6.Fields{TrafficClass: o.TOS, PayloadLen: total,
			NextHeader: udp.ProtocolNumber, HopLimit: hopLimit6(r, o), Src: r.LocalAddr, Dst: r.RemoteAddr})
		s.stats.IPv6.Sent.Add(uint64(segs))
	} else {
		f := ipv4.Fields{TOS: o.TOS, TTL: ttlOf(o), Protocol: udp.ProtocolNumber, Src: r.LocalAddr,
			Dst: r.RemoteAddr, DF: o.dfWhole(), TotalLen: ipv4.HeaderLen + total,
			ID: uint16(s.ipID.Add(uint32(segs))) - uint16(segs) + 1}
		ipv4.Put(b.Prepend(ipv4.HeaderLen), f)
		s.stats.IP.Sent.Add(uint64(segs))
	}
	b.Offload = buffer.Offload{ChecksumPartial: true, GSOSize: uint16(len(ps[0]))}
	return s.resolveAndWrite(r, b, true)
}

// ttlOf is the TTL of a unicast datagram written with o.
func ttlOf(o WriteOptions) uint8 {
	if o.TTL == 0 {
		return ipv4.DefaultTTL
	}
	return o.TTL
}

// writeBatch sends transport packets along one route, as writePacket would
// each, but hands those that go out whole to the link in one WriteFrames
// call. It takes ownership of every buffer and returns how many packets it
// sent.
func (s *Stack) writeBatch(r *Route, proto uint8, bs []*buffer.Buffer, o WriteOptions) (int, error) {
	dst, ok := s.batchDestination(r, bs)
	if !ok {
		for i, b := range bs {
			if err := s.writePacket(r, proto, b, o); err != nil {
				releaseAll(bs[i+1:])
				return i, err
			}
		}
		return len(bs), nil
	}
	n := r.NIC
	s.putIPHeaders(r, proto, bs, o)
	for _, b := range bs {
		n.putLinkHeader(b, dst)
	}
	sent, err := n.writeFrames(bs)
	s.stats.Link.TxFrames.Add(uint64(sent))
	if err != nil {
		s.stats.Link.TxErrors.Add(1)
		return sent, fmt.Errorf("tapnet: link write: %w", err)
	}
	return sent, nil
}

// putIPHeaders prepends the IP header of each packet of a batch along r,
// as writePacket would for one that goes out whole, and counts them sent.
func (s *Stack) putIPHeaders(r *Route, proto uint8, bs []*buffer.Buffer, o WriteOptions) {
	if r.RemoteAddr.Is6() {
		f := ipv6.Fields{TrafficClass: o.TOS, NextHeader: proto, HopLimit: hopLimit6(r, o),
			Src: r.LocalAddr, Dst: r.RemoteAddr}
		for _, b := range bs {
			f.PayloadLen = b.Len()
			ipv6.Put(b.Prepend(ipv6.HeaderLen), f)
		}
		s.stats.IPv6.Sent.Add(uint64(len(bs)))
		return
	}
	first := uint16(s.ipID.Add(uint32(len(bs)))) - uint16(len(bs)) + 1
	for i, b := range bs {
		f := ipv4.Fields{TOS: o.TOS, TTL: ttlOf(o), Protocol: proto, Src: r.LocalAddr, Dst: r.RemoteAddr,
			DF: o.dfWhole(), ID: first + uint16(i), TotalLen: ipv4.HeaderLen + b.Len()}
		ipv4.Put(b.Prepend(ipv4.HeaderLen), f)
	}
	s.stats.IP.Sent.Add(uint64(len(bs)))
}

// batchDestination returns the link address a batch along r goes to, when
// every packet goes out whole to a unicast neighbour already known (on an
// IP link, there is nothing to know); otherwise the batch takes
// writePacket's path, one at a time.
func (s *Stack) batchDestination(r *Route, bs []*buffer.Buffer) (ethernet.MAC, bool) {
	if s.closed.Load() || r.Loopback || r.Multicast || r.Broadcast {
		return ethernet.MAC{}, false
	}
	hl, mtu := r.ipHeaderAndMTU()
	if hl == 0 {
		return ethernet.MAC{}, false
	}
	for _, b := range bs {
		if hl+b.Len() > mtu {
			return ethernet.MAC{}, false
		}
	}
	if !r.NIC.hasEthernet() {
		return ethernet.MAC{}, true
	}
	// Resolve with no packet: known (and probed when stale), or not yet.
	if r.RemoteAddr.Is6() {
		return r.NIC.nd.Resolve(r.NextHop, nil)
	}
	return r.NIC.arp.Resolve(r.NextHop, nil)
}

func releaseAll(bs []*buffer.Buffer) {
	for _, b := range bs {
		b.Release()
	}
}

// txBigBatches hold the frames of a batch write, so that passing them to an
// interface method does not allocate.
var txBigBatches = sync.Pool{New: func() any { return new([maxUDPBatch]link.Frame) }}

// writeFrames writes a batch of frames to one queue (they share a flow) in
// calls of up to maxUDPBatch frames, and releases every buffer.
func (n *NIC) writeFrames(bs []*buffer.Buffer) (int, error) {
	defer releaseAll(bs)
	if len(bs) == 0 {
		return 0, nil
	}
	q := n.queueFor(bs[0].Bytes())
	batch := txBigBatches.Get().(*[maxUDPBatch]link.Frame)
	defer txBigBatches.Put(batch)
	frames := batch[:]
	defer clear(frames)
	sent := 0
	for sent < len(bs) {
		k := min(len(bs)-sent, maxUDPBatch)
		for i := range k {
			n.frameOf(&frames[i], bs[sent+i])
		}
		m, err := q.dev.WriteFrames(frames[:k])
		sent += max(0, min(m, k))
		if err != nil {
			return sent, err
		}
		if m < k {
			return sent, errTxDropped
		}
	}
	return sent, nil
}
