package stack

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/internal/ipfrag"
	"github.com/tapnet/tapnet/internal/ratelimit"
	"github.com/tapnet/tapnet/ipv6"
	"github.com/tapnet/tapnet/neigh"
)

// stack6 is the stack's IPv6 state shared by NICs.
type stack6 struct {
	icmpLimit *ratelimit.Limiter // ICMPv6 errors, limited as Linux's icmpv6 ratelimit
	fragID    atomic.Uint32
	reasm     *ipfrag.Reassembler
	// now and afterFunc are the clock of neighbour discovery, DAD and
	// address lifetimes: time's, or a fake one in tests.
	now       func() time.Time
	afterFunc func(time.Duration, func()) neigh.Timer
}

func (s *Stack) initIPv6() {
	s.v6.now = time.Now
	s.v6.afterFunc = func(d time.Duration, f func()) neigh.Timer { return time.AfterFunc(d, f) }
	s.v6.icmpLimit = newICMPLimiter(s.opts.ICMPRateLimit)
	s.v6.fragID.Store(uint32(time.Now().UnixNano()))
	s.v6.reasm = s.newReassembler6(s.opts.Reassembly6)
}

// mtu6 returns the MTU packets along r fit in: the link's (or what a
// router advertised), or a smaller path MTU.
func (r *Route) mtu6() int {
	n := r.NIC
	mtu := n.MTU()
	if m := int(n.v6.mtu.Load()); m != 0 {
		mtu = min(mtu, m)
	}
	if p, ok := n.s.pmtu.get(r.RemoteAddr); ok {
		mtu = min(mtu, p)
	}
	return mtu
}

func (r *Route) maxPayload6() int {
	if r.Loopback {
		return ipv6.MaxPayloadLen
	}
	return r.mtu6() - ipv6.HeaderLen
}

// findRoute6 is FindRoute for IPv6. A link-local (or link-scope multicast)
// remote needs nic, as a socket address needs a zone on Linux (EINVAL
// without); the source is chosen by RFC 6724 among the outgoing NIC's
// addresses, then the others'.
func (s *Stack) findRoute6(nic NICID, local, remote netip.Addr) (Route, error) {
	remote, local = remote.WithZone(""), local.WithZone("")
	if local.IsValid() && (local.IsUnspecified() || local.IsMulticast() || !s.IsLocalAddress(local)) {
		local = netip.Addr{}
	}
	if remote.IsUnspecified() {
		remote = netip.IPv6Loopback() // Linux sends to :: as to ::1
	}
	if n := s.localNIC(remote); n != nil && (nic == 0 || nic == n.id || n.loopback) {
		if !local.IsValid() {
			local = remote
		}
		return Route{NIC: n, LocalAddr: local, RemoteAddr: remote, NextHop: remote, Loopback: true}, nil
	}
	linkScope := remote.IsLinkLocalUnicast() || remote.IsLinkLocalMulticast() || remote.IsInterfaceLocalMulticast()
	var r Route
	switch {
	case linkScope && nic == 0 && !remote.IsMulticast():
		return Route{}, syscall.EINVAL
	case remote.IsMulticast():
		n := s.DefaultMulticastNIC(remote)
		if nic != 0 {
			n = s.NIC(nic)
		}
		if n == nil {
			return Route{}, syscall.ENETUNREACH
		}
		r = Route{NIC: n, RemoteAddr: remote, NextHop: remote, Multicast: true}
	case linkScope:
		n := s.NIC(nic)
		if n == nil || !n.v6.enabled {
			return Route{}, syscall.ENETUNREACH
		}
		r = Route{NIC: n, RemoteAddr: remote, NextHop: remote}
	default:
		e, ok := s.lookupRoute(remote, nic)
		if !ok {
			s.stats.IPv6.NoRoute.Add(1)
			return Route{}, syscall.ENETUNREACH
		}
		r = Route{NIC: s.NIC(e.NIC), RemoteAddr: remote, NextHop: remote}
		if e.Gateway.IsValid() {
			r.NextHop = e.Gateway
		}
	}
	r.LocalAddr = local
	if !local.IsValid() {
		r.LocalAddr = s.selectSource6(r.NIC, remote)
	}
	if !r.LocalAddr.IsValid() {
		return Route{}, syscall.EADDRNOTAVAIL
	}
	return r, nil
}

// selectSource6 picks a source for dst leaving through n: n's best address
// (RFC 6724 rule 5), else the best of the other NICs' global ones.
func (s *Stack) selectSource6(n *NIC, dst netip.Addr) netip.Addr {
	if a := n.selectSource6(dst); a.IsValid() {
		return a
	}
	if dst.IsLinkLocalUnicast() || dst.IsLinkLocalMulticast() {
		return netip.Addr{}
	}
	for _, o := range *s.nics.Load() {
		if o == n || o.loopback {
			continue
		}
		if a := o.selectSource6(dst); a.IsValid() && !a.IsLinkLocalUnicast() {
			return a
		}
	}
	return netip.Addr{}
}

// hopLimit6 returns the NIC's unicast hop limit: what a router advertised,
// else 64.
func (n *NIC) hopLimit6() uint8 {
	if h := n.v6.hopLimit.Load(); h != 0 {
		return uint8(h)
	}
	return ipv6.DefaultHopLimit
}

// hopLimit6 returns the hop limit of a datagram written along r with o:
// the socket's, else 1 for multicast and the NIC's for unicast.
func hopLimit6(r *Route, o WriteOptions) uint8 {
	switch {
	case o.TTL != 0:
		return o.TTL
	case r.Multicast:
		return 1
	}
	return r.NIC.hopLimit6()
}

// writePacket6 is writePacket for IPv6: b holds the transport packet.
func (s *Stack) writePacket6(r *Route, proto uint8, b *buffer.Buffer, o WriteOptions) error {
	plen := b.Len()
	if plen > ipv6.MaxPayloadLen {
		b.Release()
		return syscall.EMSGSIZE
	}
	f := ipv6.Fields{TrafficClass: o.TOS, PayloadLen: plen, NextHeader: proto, HopLimit: hopLimit6(r, o),
		Src: r.LocalAddr, Dst: r.RemoteAddr}
	s.stats.IPv6.Sent.Add(1)
	if r.Loopback {
		ipv6.Put(b.Prepend(ipv6.HeaderLen), f)
		s.stats.IPv6.Loopback.Add(1)
		s.handleIPv6(r.NIC, b, true, false)
		return nil
	}
	if r.Multicast && (o.Loop || r.NIC.loopback) && r.NIC.acceptsGroup(r.RemoteAddr) {
		c := b.Clone()
		lf := f
		if o.HostOnly {
			lf.HopLimit = 0
		}
		ipv6.Put(c.Prepend(ipv6.HeaderLen), lf)
		s.handleIPv6(r.NIC, c, true, false)
	}
	if r.Multicast && (o.HostOnly || r.NIC.loopback) {
		b.Release()
		return nil
	}
	mtu := r.mtu6()
	if ipv6.HeaderLen+plen <= mtu {
		ipv6.Put(b.Prepend(ipv6.HeaderLen), f)
		return s.resolveAndWrite(r, b, true)
	}
	if o.DF {
		b.Release()
		return syscall.EMSGSIZE
	}
	return s.fragment6(r, b, f, mtu, true)
}

// fragmentHeaderLen is the length of IPv6's fragment header.
const fragmentHeaderLen = 8

// fragment6 sends the transport packet in b as fragments of at most mtu
// bytes (RFC 8200 §4.5): each an IPv6 header, a fragment header with one
// identification, and a multiple of 8 bytes of the packet but the last.
func (s *Stack) fragment6(r *Route, b *buffer.Buffer, f ipv6.Fields, mtu int, block bool) error {
	defer b.Release()
	finishPartialChecksum(b) // the path MTU fell since the datagram was built
	payload := b.Bytes()
	id := s.v6.fragID.Add(1)
	chunk := (mtu - ipv6.HeaderLen - fragmentHeaderLen) &^ 7
	proto := f.NextHeader
	f.NextHeader = ipv6.ProtocolFragment
	for off := 0; off < len(payload); off += chunk {
		end := min(off+chunk, len(payload))
		fb := buffer.Get(end - off)
		fb.Append(payload[off:end])
		fh := fb.Prepend(fragmentHeaderLen)
		putFragmentHeader(fh, proto, off, end < len(payload), id)
		ff := f
		ff.PayloadLen = fragmentHeaderLen + end - off
		ipv6.Put(fb.Prepend(ipv6.HeaderLen), ff)
		s.stats.IPv6.FragmentsOut.Add(1)
		if err := s.resolveAndWrite(r, fb, block); err != nil {
			return err
		}
	}
	return nil
}

// transportOffset6 returns where the upper-layer header of the IPv6 packet
// in ip starts: after the fixed header and any hop-by-hop, routing or
// destination options headers (RFC 8200 §4.1), or -1 if they run past ip.
func transportOffset6(ip []byte) int {
	off := ipv6.HeaderLen
	if len(ip) < off {
		return -1
	}
	next := ip[6]
	for next == ipv6.ProtocolHopByHop || next == ipv6.ProtocolRouting || next == ipv6.ProtocolDestOptions {
		if len(ip) < off+8 {
			return -1
		}
		next = ip[off]
		off += (int(ip[off+1]) + 1) * 8
	}
	if off > len(ip) {
		return -1
	}
	return off
}

// putFragmentHeader writes a fragment header (RFC 8200 §4.5).
func putFragmentHeader(b []byte, next uint8, off int, more bool, id uint32) {
	b[0], b[1] = next, 0
	v := uint16(off)
	if more {
		v |= 1
	}
	binary.BigEndian.PutUint16(b[2:4], v)
	binary.BigEndian.PutUint32(b[4:8], id)
}

// sendInternal6 sends a packet the stack generated (a reply, an error)
// along r with hop limit hop, fragmented when it exceeds the path MTU,
// never blocking on the link. It takes ownership of b.
func (s *Stack) sendInternal6(r *Route, proto uint8, b *buffer.Buffer, hop uint8) {
	f := ipv6.Fields{PayloadLen: b.Len(), NextHeader: proto, HopLimit: hop, Src: r.LocalAddr, Dst: r.RemoteAddr}
	s.stats.IPv6.Sent.Add(1)
	switch mtu := r.mtu6(); {
	case r.Loopback:
		ipv6.Put(b.Prepend(ipv6.HeaderLen), f)
		s.stats.IPv6.Loopback.Add(1)
		s.handleIPv6(r.NIC, b, true, false)
	case ipv6.HeaderLen+b.Len() <= mtu:
		ipv6.Put(b.Prepend(ipv6.HeaderLen), f)
		s.resolveAndWrite(r, b, false)
	default:
		s.fragment6(r, b, f, mtu, false)
	}
}

// nextHopMAC6 returns the Ethernet destination of an IPv6 packet along r,
// or false when b waits in the NIC's neighbour cache.
func nextHopMAC6(r *Route, b *buffer.Buffer) (ethernet.MAC, bool) {
	if r.RemoteAddr.IsMulticast() {
		return ethernet.MAC(ipv6.MulticastMAC(r.RemoteAddr)), true
	}
	return r.NIC.nd.Resolve(r.NextHop, b)
}
