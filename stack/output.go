package stack

import (
	"fmt"
	"syscall"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/ipv4"
)

// WriteOptions are the per-datagram IP settings a socket chooses.
type WriteOptions struct {
	TTL uint8 // 0: the default (64, or 1 for multicast)
	TOS uint8
	DF  bool // don't fragment: oversize datagrams fail with EMSGSIZE
	// DFIfFits sets the IPv4 DF bit on a datagram that goes out whole, as
	// Linux's IP_PMTUDISC_WANT does; one larger than the path MTU is still
	// fragmented, its fragments without DF. Ignored for IPv6.
	DFIfFits bool
	Loop     bool // multicast loopback: deliver a copy to our own sockets too
	// HostOnly keeps a multicast datagram off the wire (IP_MULTICAST_TTL
	// 0): only the looped copy, with TTL 0, is delivered.
	HostOnly bool
}

// MaxPayload returns the largest transport packet (header included) r can
// carry in one datagram without fragmentation.
func (r *Route) MaxPayload() int {
	if r.RemoteAddr.Is6() {
		return r.maxPayload6()
	}
	if r.Loopback {
		return ipv4.MaxTotalLen - ipv4.HeaderLen
	}
	return r.mtu4() - ipv4.HeaderLen
}

// writePacket sends a transport packet along r. b holds the transport header
// and payload with headroom in front; writePacket takes ownership. It
// prepends the IPv4 header, fragments when the packet exceeds the MTU
// (unless o.DF, which gives EMSGSIZE; fragments never carry DF), resolves the next hop and writes to
// the link, blocking while the link's queue is full. Datagrams to our own
// addresses are delivered in the caller's goroutine without the link.
func (s *Stack) writePacket(r *Route, proto uint8, b *buffer.Buffer, o WriteOptions) error {
	if s.closed.Load() {
		b.Release()
		return ErrStackClosed
	}
	if r.RemoteAddr.Is6() {
		return s.writePacket6(r, proto, b, o)
	}
	plen := b.Len()
	if plen > ipv4.MaxTotalLen-ipv4.HeaderLen {
		b.Release()
		return syscall.EMSGSIZE
	}
	ttl := o.TTL
	if ttl == 0 {
		ttl = ipv4.DefaultTTL
		if r.Multicast {
			ttl = 1
		}
	}
	mtu := ipv4.MaxTotalLen
	if !r.Loopback {
		mtu = r.mtu4()
	}
	whole := ipv4.HeaderLen+plen <= mtu
	// One datagram, one ID: its looped copy and every fragment share it.
	f := ipv4.Fields{TOS: o.TOS, TTL: ttl, Protocol: proto, Src: r.LocalAddr, Dst: r.RemoteAddr,
		DF: o.DF || o.DFIfFits && whole, ID: uint16(s.ipID.Add(1))}
	s.stats.IP.Sent.Add(1)
	if r.Loopback {
		f.TotalLen = ipv4.HeaderLen + plen
		ipv4.Put(b.Prepend(ipv4.HeaderLen), f)
		s.stats.IP.Loopback.Add(1)
		s.handleIPv4(r.NIC, b, true, false)
		return nil
	}
	if r.Multicast && (o.Loop || r.NIC.loopback) && r.NIC.acceptsGroup(r.RemoteAddr) {
		s.loopMulticast(r, b, f, o.HostOnly)
	}
	if r.Multicast && (o.HostOnly || r.NIC.loopback) {
		// lo has no wire: what it sends comes back once, above.
		b.Release()
		return nil
	}
	if whole {
		f.TotalLen = ipv4.HeaderLen + plen
		ipv4.Put(b.Prepend(ipv4.HeaderLen), f)
		return s.resolveAndWrite(r, b, true)
	}
	if o.DF {
		b.Release()
		return syscall.EMSGSIZE
	}
	return s.fragment(r, b, f, mtu, true)
}

// dfWhole reports whether an IPv4 datagram sent whole with o carries DF.
func (o WriteOptions) dfWhole() bool { return o.DF || o.DFIfFits }

// loopMulticast delivers a copy of a multicast datagram to our own
// sockets, as the kernel's IP_MULTICAST_LOOP does, before it goes out.
func (s *Stack) loopMulticast(r *Route, b *buffer.Buffer, f ipv4.Fields, hostOnly bool) {
	c := b.Clone()
	f.TotalLen = ipv4.HeaderLen + b.Len()
	if hostOnly {
		f.TTL = 0
	}
	ipv4.Put(c.Prepend(ipv4.HeaderLen), f)
	s.handleIPv4(r.NIC, c, true, false)
}

// fragment splits a transport packet into fragments of at most mtu bytes
// with 8-byte aligned offsets and f's ID, and sends each; block says
// whether to wait for room in the link's queue (see resolveAndWrite).
func (s *Stack) fragment(r *Route, b *buffer.Buffer, f ipv4.Fields, mtu int, block bool) error {
	defer b.Release()
	finishPartialChecksum(b) // the MTU fell since the datagram was built
	payload := b.Bytes()
	chunk := (mtu - ipv4.HeaderLen) &^ 7
	for off := 0; off < len(payload); off += chunk {
		end := min(off+chunk, len(payload))
		fb := buffer.Get(end - off)
		fb.Append(payload[off:end])
		ff := f
		ff.Offset, ff.MF = off, end < len(payload)
		ff.TotalLen = ipv4.HeaderLen + end - off
		ipv4.Put(fb.Prepend(ipv4.HeaderLen), ff)
		s.stats.IP.FragmentsOut.Add(1)
		if err := s.resolveAndWrite(r, fb, block); err != nil {
			return err
		}
	}
	return nil
}

// resolveAndWrite adds the Ethernet header for r's next hop and writes the
// frame, or queues it while the neighbour is resolved; on an IP link it
// writes the packet as it is. It takes ownership.
func (s *Stack) resolveAndWrite(r *Route, b *buffer.Buffer, block bool) error {
	n := r.NIC
	if n.hasEthernet() {
		dst, ok := nextHopMAC(r, b)
		if !ok {
			return nil // queued (or dropped and counted) until resolution
		}
		n.putLinkHeader(b, dst)
	}
	if !block {
		n.tryWrite(b)
		return nil
	}
	if err := n.writeFrame(b, true); err != nil {
		s.stats.Link.TxErrors.Add(1)
		return fmt.Errorf("tapnet: link write: %w", err)
	}
	s.stats.Link.TxFrames.Add(1)
	return nil
}

// nextHopMAC returns the Ethernet destination of a packet along r, or false
// when b waits in the neighbour cache (which then owns it) for resolution.
func nextHopMAC(r *Route, b *buffer.Buffer) (ethernet.MAC, bool) {
	switch {
	case r.RemoteAddr.Is6():
		return nextHopMAC6(r, b)
	case r.Broadcast:
		return ethernet.Broadcast, true
	case r.Multicast:
		return ethernet.MulticastIPv4(r.RemoteAddr.As4()), true
	}
	return r.NIC.arp.Resolve(r.NextHop, b)
}
