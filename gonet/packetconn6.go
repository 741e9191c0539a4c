package gonet

// PacketConn6: the x/net/ipv6-shaped socket, its options, multicast
// memberships, control messages and batches.

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/tapnet/tapnet/internal/udpsock"
	"github.com/tapnet/tapnet/stack"
)

// PacketConn6 is a UDP socket of a tapnet stack with the methods of
// golang.org/x/net/ipv6's *PacketConn, reusing its types: the IPv6 hop
// limits, traffic class, multicast options and MLD memberships, and
// control messages IPV6_PKTINFO, IPV6_HOPLIMIT and IPV6_TCLASS encoded as
// x/net/ipv6 encodes them on this platform. Make one with NewPacketConn6 over a "udp6" or "udp" socket;
// over an IPv4 ("udp4") one its options fail as x/net's do on an AF_INET
// socket.
type PacketConn6 struct {
	p  PacketConn   // the plumbing shared with the IPv4 PacketConn
	mu sync.RWMutex // guards cf; taken alone
	cf ipv6.ControlFlags
}

// NewPacketConn6 returns a PacketConn6 using c as its transport, as
// ipv6.NewPacketConn does for a *net.UDPConn.
func NewPacketConn6(c *UDPConn) *PacketConn6 { return &PacketConn6{p: PacketConn{c: c}} }

func (q *PacketConn6) ok() bool { return q != nil && q.p.c != nil }

func (q *PacketConn6) ep() *udpsock.Endpoint { return &q.p.c.ep }

// SetDeadline sets the read and write deadlines.
func (q *PacketConn6) SetDeadline(t time.Time) error {
	if !q.ok() {
		return errInvalidConn
	}
	return q.p.SetDeadline(t)
}

// SetReadDeadline sets the read deadline.
func (q *PacketConn6) SetReadDeadline(t time.Time) error {
	if !q.ok() {
		return errInvalidConn
	}
	return q.p.SetReadDeadline(t)
}

// SetWriteDeadline sets the write deadline.
func (q *PacketConn6) SetWriteDeadline(t time.Time) error {
	if !q.ok() {
		return errInvalidConn
	}
	return q.p.SetWriteDeadline(t)
}

// Close closes the socket.
func (q *PacketConn6) Close() error {
	if !q.ok() {
		return errInvalidConn
	}
	return q.p.Close()
}

// LocalAddr returns the socket's local address.
func (q *PacketConn6) LocalAddr() net.Addr {
	if !q.ok() {
		return nil
	}
	return q.p.LocalAddr()
}

// getOption and setOption check an option call as the kernel does: a
// closed socket fails like x/net's RawConn, an AF_INET one has no IPv6
// options (getsockopt EOPNOTSUPP, setsockopt ENOPROTOOPT, as Linux and
// x/net report them).
func (q *PacketConn6) getOption() error {
	if err := q.p.option(); err != nil {
		return err
	}
	if !q.ep().IPv6() {
		return syscallErr("getsockopt", syscall.EOPNOTSUPP)
	}
	return nil
}

func (q *PacketConn6) setOption() error {
	if err := q.p.option(); err != nil {
		return err
	}
	if !q.ep().IPv6() {
		return setsockopt(syscall.ENOPROTOOPT)
	}
	return nil
}

// hopValue checks a hop limit or traffic class option value: -1 (the
// default) to 255, as Linux's IPV6_UNICAST_HOPS, IPV6_MULTICAST_HOPS and
// IPV6_TCLASS.
func hopValue(v int) bool { return v >= -1 && v <= 255 }

// HopLimit returns the hop limit of outgoing unicast datagrams.
func (q *PacketConn6) HopLimit() (int, error) {
	if err := q.getOption(); err != nil {
		return 0, err
	}
	if h := q.ep().Options().HopLimit; h != 0 {
		return int(h), nil
	}
	return 64, nil
}

// SetHopLimit sets the hop limit of outgoing unicast datagrams: 1 to 255,
// or -1 (and 0, which Linux would send as is) for the default, 64.
func (q *PacketConn6) SetHopLimit(hoplim int) error {
	if err := q.setOption(); err != nil {
		return err
	}
	if !hopValue(hoplim) {
		return setsockopt(syscall.EINVAL)
	}
	q.ep().UpdateOptions(func(o *udpsock.Options) { o.HopLimit = uint8(max(hoplim, 0)) })
	return nil
}

// TrafficClass returns the traffic class of outgoing datagrams.
func (q *PacketConn6) TrafficClass() (int, error) {
	if err := q.getOption(); err != nil {
		return 0, err
	}
	return int(q.ep().Options().TrafficClass), nil
}

// SetTrafficClass sets the traffic class of outgoing datagrams: 0 to 255,
// -1 for the default, 0.
func (q *PacketConn6) SetTrafficClass(tclass int) error {
	if err := q.setOption(); err != nil {
		return err
	}
	if !hopValue(tclass) {
		return setsockopt(syscall.EINVAL)
	}
	q.ep().UpdateOptions(func(o *udpsock.Options) { o.TrafficClass = uint8(max(tclass, 0)) })
	return nil
}

// MulticastHopLimit returns the hop limit of outgoing multicast datagrams.
func (q *PacketConn6) MulticastHopLimit() (int, error) {
	if err := q.getOption(); err != nil {
		return 0, err
	}
	return int(q.ep().Options().MulticastHopLimit), nil
}

// SetMulticastHopLimit sets the hop limit of outgoing multicast
// datagrams: 0 to 255, or -1 for the default, 1. With 0 they are only
// looped back.
func (q *PacketConn6) SetMulticastHopLimit(hoplim int) error {
	if err := q.setOption(); err != nil {
		return err
	}
	if !hopValue(hoplim) {
		return setsockopt(syscall.EINVAL)
	}
	if hoplim == -1 {
		hoplim = 1
	}
	q.ep().UpdateOptions(func(o *udpsock.Options) { o.MulticastHopLimit = uint8(hoplim) })
	return nil
}

// MulticastLoopback reports whether our own multicast datagrams are looped
// back to the stack's sockets.
func (q *PacketConn6) MulticastLoopback() (bool, error) {
	if err := q.getOption(); err != nil {
		return false, err
	}
	return q.ep().Options().MulticastLoop6, nil
}

// SetMulticastLoopback sets multicast loopback (on by default).
func (q *PacketConn6) SetMulticastLoopback(on bool) error {
	if err := q.setOption(); err != nil {
		return err
	}
	q.ep().UpdateOptions(func(o *udpsock.Options) { o.MulticastLoop6 = on })
	return nil
}

// MulticastInterface returns the interface set by SetMulticastInterface.
// Like x/net, which looks up IPV6_MULTICAST_IF's index, it fails with
// net.InterfaceByIndex's error when none is set.
func (q *PacketConn6) MulticastInterface() (*net.Interface, error) {
	if err := q.getOption(); err != nil {
		return nil, err
	}
	return q.p.stack().InterfaceByIndex(int(q.ep().Options().MulticastNIC6))
}

// SetMulticastInterface sets the interface multicast datagrams leave by
// (nil: the route's).
func (q *PacketConn6) SetMulticastInterface(ifi *net.Interface) error {
	if err := q.setOption(); err != nil {
		return err
	}
	n, ok := q.p.nic(ifi)
	if !ok {
		return setsockopt(syscall.ENODEV)
	}
	var id stack.NICID
	if n != nil {
		id = n.ID()
	}
	q.ep().UpdateOptions(func(o *udpsock.Options) { o.MulticastNIC6 = id })
	return nil
}

// ICMPFilter is not a UDP socket's option: it fails with ENOPROTOOPT, as
// on Linux.
func (q *PacketConn6) ICMPFilter() (*ipv6.ICMPFilter, error) {
	if err := q.p.option(); err != nil {
		return nil, err
	}
	return nil, syscallErr("getsockopt", syscall.ENOPROTOOPT)
}

// SetICMPFilter fails with ENOPROTOOPT, as on Linux.
func (q *PacketConn6) SetICMPFilter(*ipv6.ICMPFilter) error {
	if err := q.p.option(); err != nil {
		return err
	}
	return setsockopt(syscall.ENOPROTOOPT)
}

// Checksum is a raw socket's option: on UDP it fails with ENOPROTOOPT, as
// on Linux.
func (q *PacketConn6) Checksum() (on bool, offset int, err error) {
	if err := q.p.option(); err != nil {
		return false, 0, err
	}
	return false, 0, syscallErr("getsockopt", syscall.ENOPROTOOPT)
}

// SetChecksum fails with ENOPROTOOPT, as on Linux.
func (q *PacketConn6) SetChecksum(on bool, offset int) error {
	if err := q.p.option(); err != nil {
		return err
	}
	return setsockopt(syscall.ENOPROTOOPT)
}

// SetBPF is not supported: it fails with EOPNOTSUPP.
func (q *PacketConn6) SetBPF(filter []bpf.RawInstruction) error { return q.p.SetBPF(filter) }

// netAddrToAddr16 is x/net/ipv6's netAddrToIP16: an IPv6 address of a
// *net.UDPAddr or *net.IPAddr; IPv4 ones are missing.
func netAddrToAddr16(a net.Addr) (netip.Addr, bool) {
	ip := netAddrIP(a)
	if len(ip) != net.IPv6len || ip.To4() != nil {
		return netip.Addr{}, false
	}
	return netip.AddrFrom16([16]byte(ip)), true
}

// group runs a membership change after x/net's argument checks; the
// stack reports it with MLD.
func (q *PacketConn6) group(ifi *net.Interface, group, source net.Addr, withSource bool,
	f func(n *stack.NIC, g, s netip.Addr) error) error {
	if !q.ok() {
		return errInvalidConn
	}
	return q.p.membership(ifi, group, source, withSource, netAddrToAddr16, q.setOption, f)
}

// JoinGroup joins group on ifi (nil: the route's NIC) for every source.
func (q *PacketConn6) JoinGroup(ifi *net.Interface, group net.Addr) error {
	return q.group(ifi, group, nil, false, func(n *stack.NIC, g, _ netip.Addr) error { return q.ep().JoinGroup(n, g) })
}

// LeaveGroup leaves group on ifi whatever its source filter.
func (q *PacketConn6) LeaveGroup(ifi *net.Interface, group net.Addr) error {
	return q.group(ifi, group, nil, false, func(n *stack.NIC, g, _ netip.Addr) error { return q.ep().LeaveGroup(n, g) })
}

// JoinSourceSpecificGroup joins the source-specific group (group, source)
// on ifi.
func (q *PacketConn6) JoinSourceSpecificGroup(ifi *net.Interface, group, source net.Addr) error {
	return q.group(ifi, group, source, true, func(n *stack.NIC, g, s netip.Addr) error { return q.ep().JoinSourceGroup(n, g, s) })
}

// LeaveSourceSpecificGroup leaves the source-specific group (group,
// source) on ifi; leaving the last source leaves the group.
func (q *PacketConn6) LeaveSourceSpecificGroup(ifi *net.Interface, group, source net.Addr) error {
	return q.group(ifi, group, source, true, func(n *stack.NIC, g, s netip.Addr) error { return q.ep().LeaveSourceGroup(n, g, s) })
}

// ExcludeSourceSpecificGroup stops receiving group's datagrams from
// source, on a group joined with JoinGroup.
func (q *PacketConn6) ExcludeSourceSpecificGroup(ifi *net.Interface, group, source net.Addr) error {
	return q.group(ifi, group, source, true, func(n *stack.NIC, g, s netip.Addr) error { return q.ep().BlockSource(n, g, s) })
}

// IncludeSourceSpecificGroup undoes ExcludeSourceSpecificGroup.
func (q *PacketConn6) IncludeSourceSpecificGroup(ifi *net.Interface, group, source net.Addr) error {
	return q.group(ifi, group, source, true, func(n *stack.NIC, g, s netip.Addr) error { return q.ep().UnblockSource(n, g, s) })
}

// SetControlMessage chooses the control messages ReadFrom and ReadBatch
// return. FlagPathMTU is accepted; as on Linux, a datagram never carries
// it (IPV6_RECVPATHMTU reports path MTU changes, which tapnet does not
// queue).
func (q *PacketConn6) SetControlMessage(cf ipv6.ControlFlags, on bool) error {
	if err := q.setOption(); err != nil {
		return err
	}
	cf &= ipv6.FlagTrafficClass | ipv6.FlagHopLimit | ipv6.FlagSrc | ipv6.FlagDst | ipv6.FlagInterface | ipv6.FlagPathMTU
	q.mu.Lock()
	if on {
		q.cf |= cf
	} else {
		q.cf &^= cf
	}
	now := q.cf
	q.mu.Unlock()
	q.ep().UpdateOptions(func(o *udpsock.Options) {
		o.ReceiveHopLimit = now&ipv6.FlagHopLimit != 0
		o.ReceiveTClass = now&ipv6.FlagTrafficClass != 0
		o.ReceivePacketInfo6 = now&pktinfo6Flags != 0
	})
	return nil
}

// pktinfo6Flags are the flags Linux serves with IPV6_PKTINFO.
const pktinfo6Flags = ipv6.FlagDst | ipv6.FlagInterface

func (q *PacketConn6) flags() ipv6.ControlFlags {
	q.mu.RLock()
	defer q.mu.RUnlock()
	return q.cf
}

// controlFor reports which control messages a datagram gets: IPV6_PKTINFO
// for both families, the hop limit and traffic class only for IPv6 (a
// dual-stack socket's IPv4 datagrams carry IPv4's options, as in Linux's
// udpv6_recvmsg).
func controlFor(cf ipv6.ControlFlags, info *udpsock.ReadInfo) (pktinfo, hop, tclass bool) {
	v6 := !info.Src.Addr().Is4In6() && info.Src.Addr().Is6()
	return cf&pktinfo6Flags != 0, v6 && cf&ipv6.FlagHopLimit != 0, v6 && cf&ipv6.FlagTrafficClass != 0
}

// ReadFrom reads a datagram, returning its payload size, the control
// message chosen by SetControlMessage (nil when the datagram carries
// none, as with x/net) and the sender.
func (q *PacketConn6) ReadFrom(b []byte) (n int, cm *ipv6.ControlMessage, src net.Addr, err error) {
	if !q.ok() {
		return 0, nil, nil, errInvalidConn
	}
	cf := q.flags()
	info, err := q.p.c.read(b)
	if err != nil {
		return 0, nil, nil, q.p.ioErr("read", "recvmsg", nil, err)
	}
	if pi, hop, tc := controlFor(cf, &info); pi || hop || tc {
		cm = new(ipv6.ControlMessage)
		if a := info.Src.Addr(); a.Is6() && !a.Is4In6() {
			cm.Src = a.AsSlice()
		}
		if pi {
			cm.Dst, cm.IfIndex = info.Dst.WithZone("").AsSlice(), int(info.NIC)
		}
		if hop {
			cm.HopLimit = int(info.TTL)
		}
		if tc {
			cm.TrafficClass = int(info.TOS)
		}
	}
	return info.N, cm, newUDPAddr(info.Src), nil
}

// destination6 converts a WriteTo address as x/net marshals it for the
// socket: anything but a *net.UDPAddr is no address (the connected peer);
// the endpoint then reads it as a sockaddr of its family.
func destination6(dst net.Addr) netip.AddrPort {
	a, ok := dst.(*net.UDPAddr)
	if !ok || a == nil {
		return netip.AddrPort{}
	}
	ip, ok := netip.AddrFromSlice(a.IP)
	if !ok {
		return netip.AddrPort{}
	}
	if ip.Is6() && a.Zone != "" {
		ip = ip.WithZone(a.Zone)
	}
	return netip.AddrPortFrom(ip, uint16(a.Port))
}

// sendControl6 is what an IPv6 control message asks of one send.
type sendControl6 struct {
	pktinfo  bool // IPV6_PKTINFO given
	src      netip.Addr
	ifIndex  int
	hop, tcl int // -1 or 0 (hop) when not given
	setTC    bool
}

// fromControlMessage is what x/net marshals of cm: the traffic class and
// hop limit when positive, IPV6_PKTINFO when it names a source or an
// interface. NextHop is left out: tapnet's routes decide the next hop.
func fromControlMessage(cm *ipv6.ControlMessage) sendControl6 {
	sc := sendControl6{hop: cm.HopLimit, tcl: cm.TrafficClass, setTC: cm.TrafficClass > 0}
	if cm.HopLimit <= 0 {
		sc.hop = 0
	}
	if cm.Src != nil || cm.IfIndex > 0 {
		sc.pktinfo, sc.ifIndex = true, cm.IfIndex
		if ip := cm.Src.To16(); ip != nil && ip.To4() == nil {
			sc.src = netip.AddrFrom16([16]byte(ip))
		} else {
			sc.src = netip.IPv6Unspecified()
		}
	}
	return sc
}

// writeOptions6 checks an IPv6 control message for a send to dst (the
// connected peer when invalid) as Linux's ip6_datagram_send_ctl does, or,
// for an IPv4 destination of a dual-stack socket, as ip_cmsg_send does:
// only IPV6_PKTINFO counts there, and its source must be IPv4-mapped. An
// AF_INET socket ignores IPv6 control messages.
func (q *PacketConn6) writeOptions6(sc sendControl6, dst netip.Addr) (*udpsock.WriteOptions, error) {
	ep := q.ep()
	if !ep.IPv6() {
		return nil, nil
	}
	if !dst.IsValid() {
		ra, _ := ep.RemoteAddr()
		dst = ra.Addr()
	}
	s := q.p.stack()
	wo := &udpsock.WriteOptions{}
	if sc.pktinfo && sc.ifIndex != 0 {
		if s.NIC(stack.NICID(sc.ifIndex)) == nil {
			return nil, syscall.ENODEV
		}
		wo.NIC = stack.NICID(sc.ifIndex)
	}
	if dst.Unmap().Is4() {
		if sc.pktinfo {
			if !sc.src.Is4In6() {
				return nil, syscall.EINVAL
			}
			if a := sc.src.Unmap(); !a.IsUnspecified() {
				if !s.IsLocalAddress(a) {
					return nil, syscall.EINVAL
				}
				wo.Src = a
			}
		}
		return wo, nil
	}
	if sc.pktinfo && sc.src.IsValid() && !sc.src.IsUnspecified() {
		if sc.src.Is4In6() || !s.IsLocalAddress(sc.src) {
			return nil, syscall.EINVAL
		}
		wo.Src = sc.src
	}
	if !hopValue(sc.hop) || !hopValue(sc.tcl) {
		return nil, syscall.EINVAL
	}
	wo.TTL = sc.hop
	if sc.setTC && sc.tcl >= 0 {
		wo.TOS, wo.SetTOS = uint8(sc.tcl), true
	}
	return wo, nil
}

// WriteTo sends b to dst (nil: the connected peer). cm, if not nil,
// chooses the traffic class, hop limit, source address and interface.
func (q *PacketConn6) WriteTo(b []byte, cm *ipv6.ControlMessage, dst net.Addr) (n int, err error) {
	if !q.ok() {
		return 0, errInvalidConn
	}
	to := destination6(dst)
	var wo *udpsock.WriteOptions
	if cm != nil {
		wo, err = q.writeOptions6(fromControlMessage(cm), to.Addr())
	}
	if err == nil {
		n, err = q.p.send(b, to, wo)
	}
	if err != nil {
		return 0, q.p.ioErr("write", "sendmsg", opAddr4(dst), err)
	}
	return n, nil
}

// ReadBatch reads up to len(ms) datagrams as recvmmsg does (see
// PacketConn.ReadBatch), with the control messages chosen by
// SetControlMessage in each OOB as x/net/ipv6 encodes them on this system.
func (q *PacketConn6) ReadBatch(ms []ipv6.Message, flags int) (int, error) {
	if !q.ok() {
		return 0, errInvalidConn
	}
	return q.p.readBatch(ms, flags, uint(q.flags()), putControlMessages6)
}

// WriteBatch sends the messages in order as sendmmsg does (see
// PacketConn.WriteBatch); each OOB may hold IPV6_PKTINFO, IPV6_HOPLIMIT
// and IPV6_TCLASS.
func (q *PacketConn6) WriteBatch(ms []ipv6.Message, flags int) (int, error) {
	if !q.ok() {
		return 0, errInvalidConn
	}
	return q.p.writeBatch(ms, flags, func(_ *PacketConn, m *ipv4.Message) (netip.AddrPort, *udpsock.WriteOptions, error) {
		to := destination6(m.Addr)
		sc, err := parseControl6(m.OOB)
		if err != nil || sc == nil {
			return to, nil, err
		}
		wo, err := q.writeOptions6(*sc, to.Addr())
		return to, wo, err
	})
}

// ipv6CmsgTypes is the level and RFC 3542 types of IPv6 control messages
// on this platform, as x/net/ipv6 encodes them (see the cmsgtypes_*.go
// files): the same names everywhere, numbered differently by Linux, macOS
// and the BSDs.
type ipv6CmsgTypes struct {
	level, pktinfo, hopLimit, tclass, nextHop uint32
}

// IPv6 control message sizes, the same on every system.
const (
	sizeofIn6Pktinfo  = 20 // struct in6_pktinfo
	sizeofSockaddrIn6 = 28 // struct sockaddr_in6
	controlIntLen     = 4
)

// putControlMessages6 writes a received datagram's IPv6 control messages
// into oob with the platform's types, in the order of Linux and the BSDs (IPV6_PKTINFO, IPV6_HOPLIMIT, IPV6_TCLASS),
// truncating as put_cmsg does; it is the controlWriter of x/net/ipv6's
// flags.
func putControlMessages6(_ *stack.Stack, oob []byte, cf uint, info *udpsock.ReadInfo) (int, bool) {
	pi, hop, tc := controlFor(ipv6.ControlFlags(cf), info)
	t := &ipv6Cmsg
	w := cmsgWriter{oob: oob, level: t.level}
	if pi {
		var b [sizeofIn6Pktinfo]byte
		d := info.Dst.As16()
		copy(b[:16], d[:])
		binary.NativeEndian.PutUint32(b[16:], uint32(info.NIC))
		w.put(t.pktinfo, b[:])
	}
	if hop {
		var b [controlIntLen]byte
		binary.NativeEndian.PutUint32(b[:], uint32(info.TTL))
		w.put(t.hopLimit, b[:])
	}
	if tc {
		var b [controlIntLen]byte
		binary.NativeEndian.PutUint32(b[:], uint32(info.TOS))
		w.put(t.tclass, b[:])
	}
	return w.used, w.trunc
}

// parseControl6 reads a message's IPv6 control messages as Linux's
// ip6_datagram_send_ctl does: nil when there are none; EINVAL for a
// malformed or unknown one. IPV6_NEXTHOP is accepted and left to the
// routes.
func parseControl6(oob []byte) (*sendControl6, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	sc := &sendControl6{}
	for len(oob) >= cmsgHdrLen {
		l, level, typ := cmsgHdr(oob)
		if l < cmsgHdrLen || l > len(oob) {
			return nil, syscall.EINVAL
		}
		data := oob[cmsgHdrLen:l]
		switch {
		case level != ipv6Cmsg.level:
			// Another level's: nothing for an IPv6 datagram.
		case typ == ipv6Cmsg.pktinfo && len(data) == sizeofIn6Pktinfo:
			sc.pktinfo = true
			sc.src = netip.AddrFrom16([16]byte(data[:16]))
			sc.ifIndex = int(int32(binary.NativeEndian.Uint32(data[16:])))
		case typ == ipv6Cmsg.hopLimit && len(data) == controlIntLen:
			sc.hop = int(int32(binary.NativeEndian.Uint32(data)))
		case typ == ipv6Cmsg.tclass && len(data) == controlIntLen:
			sc.tcl = int(int32(binary.NativeEndian.Uint32(data)))
			sc.setTC = sc.tcl >= 0
		case typ == ipv6Cmsg.nextHop && len(data) == sizeofSockaddrIn6:
		default:
			return nil, syscall.EINVAL
		}
		oob = oob[min(cmsgSpace(len(data)), len(oob)):]
	}
	if sc.hop == -1 {
		sc.hop = 0
	}
	return sc, nil
}
