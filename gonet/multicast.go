package gonet

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv4"

	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/udp"
)

// PacketConn is a UDP socket of a tapnet stack with the methods of
// golang.org/x/net/ipv4's *PacketConn, reusing its types. Make one with
// NewPacketConn; the package documentation describes the mapping.
type PacketConn struct {
	c  *UDPConn
	mu sync.RWMutex // guards cf; taken alone
	cf ipv4.ControlFlags
}

// NewPacketConn returns a PacketConn using c as its transport, as
// ipv4.NewPacketConn does for a *net.UDPConn.
func NewPacketConn(c *UDPConn) *PacketConn { return &PacketConn{c: c} }

var errInvalidConn = errors.New("invalid connection")

func (p *PacketConn) ok() bool { return p != nil && p.c != nil }

func (p *PacketConn) ep() *udp.Endpoint { return p.c.ep }

func (p *PacketConn) stack() *stack.Stack { return p.c.ep.Stack() }

// closedErr is what an option call on a closed socket returns: the error
// of syscall.RawConn.Control.
func (p *PacketConn) closedErr() error {
	return &net.OpError{Op: "raw-control", Net: p.c.network, Source: nil, Addr: p.c.laddr, Err: net.ErrClosed}
}

func (p *PacketConn) closed() bool { return p.ep().State() == udp.StateClosed }

// setsockopt wraps an errno the way x/net's option setters do.
func setsockopt(err error) error {
	if err == nil {
		return nil
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return os.NewSyscallError("setsockopt", errno)
	}
	return err
}

// optErr maps an endpoint error of a membership call.
func (p *PacketConn) optErr(err error) error {
	if errors.Is(err, udp.ErrClosed) {
		return p.closedErr()
	}
	return setsockopt(err)
}

func netAddrToAddr4(a net.Addr) (netip.Addr, bool) {
	var ip net.IP
	switch v := a.(type) {
	case *net.UDPAddr:
		if v == nil {
			return netip.Addr{}, false
		}
		ip = v.IP
	case *net.IPAddr:
		if v == nil {
			return netip.Addr{}, false
		}
		ip = v.IP
	}
	ip4 := ip.To4()
	if ip4 == nil {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte(ip4)), true
}

// nic maps an interface to a NIC; ok is false for one the stack lacks.
func (p *PacketConn) nic(ifi *net.Interface) (*stack.NIC, bool) {
	return p.stack().NICForInterface(ifi)
}

// group runs a membership change after x/net's argument checks.
func (p *PacketConn) group(ifi *net.Interface, group net.Addr, source net.Addr, withSource bool,
	f func(n *stack.NIC, g, s netip.Addr) error) error {
	if !p.ok() {
		return errInvalidConn
	}
	g, ok := netAddrToAddr4(group)
	if !ok {
		return errMissingAddress
	}
	var s netip.Addr
	if withSource {
		if s, ok = netAddrToAddr4(source); !ok {
			return errMissingAddress
		}
	}
	if p.closed() {
		return p.closedErr()
	}
	n, ok := p.nic(ifi)
	if !ok {
		return setsockopt(syscall.ENODEV)
	}
	return p.optErr(f(n, g, s))
}

// JoinGroup joins group on ifi (nil: the default NIC) for every source.
func (p *PacketConn) JoinGroup(ifi *net.Interface, group net.Addr) error {
	return p.group(ifi, group, nil, false, func(n *stack.NIC, g, _ netip.Addr) error { return p.ep().JoinGroup(n, g) })
}

// LeaveGroup leaves group on ifi whatever its source filter.
func (p *PacketConn) LeaveGroup(ifi *net.Interface, group net.Addr) error {
	return p.group(ifi, group, nil, false, func(n *stack.NIC, g, _ netip.Addr) error { return p.ep().LeaveGroup(n, g) })
}

// JoinSourceSpecificGroup joins the source-specific group (group, source)
// on ifi.
func (p *PacketConn) JoinSourceSpecificGroup(ifi *net.Interface, group, source net.Addr) error {
	return p.group(ifi, group, source, true, func(n *stack.NIC, g, s netip.Addr) error { return p.ep().JoinSourceGroup(n, g, s) })
}

// LeaveSourceSpecificGroup leaves the source-specific group (group, source)
// on ifi; leaving the last source leaves the group.
func (p *PacketConn) LeaveSourceSpecificGroup(ifi *net.Interface, group, source net.Addr) error {
	return p.group(ifi, group, source, true, func(n *stack.NIC, g, s netip.Addr) error { return p.ep().LeaveSourceGroup(n, g, s) })
}

// ExcludeSourceSpecificGroup stops receiving group's datagrams from source,
// on a group joined with JoinGroup.
func (p *PacketConn) ExcludeSourceSpecificGroup(ifi *net.Interface, group, source net.Addr) error {
	return p.group(ifi, group, source, true, func(n *stack.NIC, g, s netip.Addr) error { return p.ep().BlockSource(n, g, s) })
}

// IncludeSourceSpecificGroup undoes ExcludeSourceSpecificGroup.
func (p *PacketConn) IncludeSourceSpecificGroup(ifi *net.Interface, group, source net.Addr) error {
	return p.group(ifi, group, source, true, func(n *stack.NIC, g, s netip.Addr) error { return p.ep().UnblockSource(n, g, s) })
}

// option runs a getter or setter of socket options, failing like x/net on
// a closed socket.
func (p *PacketConn) option() error {
	if !p.ok() {
		return errInvalidConn
	}
	if p.closed() {
		return p.closedErr()
	}
	return nil
}

// MulticastInterface returns the interface set by SetMulticastInterface,
// or nil for the default.
func (p *PacketConn) MulticastInterface() (*net.Interface, error) {
	if err := p.option(); err != nil {
		return nil, err
	}
	id := p.ep().Options().MulticastNIC
	if id == 0 {
		return nil, nil
	}
	return p.stack().InterfaceByIndex(int(id))
}

// SetMulticastInterface sets the interface multicast datagrams leave by
// (nil: the default NIC).
func (p *PacketConn) SetMulticastInterface(ifi *net.Interface) error {
	if err := p.option(); err != nil {
		return err
	}
	n, ok := p.nic(ifi)
	if !ok {
		return setsockopt(syscall.EADDRNOTAVAIL)
	}
	var id stack.NICID
	if n != nil {
		id = n.ID()
	}
	p.ep().UpdateOptions(func(o *udp.Options) { o.MulticastNIC = id })
	return nil
}

// MulticastTTL returns the TTL of outgoing multicast datagrams.
func (p *PacketConn) MulticastTTL() (int, error) {
	if err := p.option(); err != nil {
		return 0, err
	}
	return int(p.ep().Options().MulticastTTL), nil
}

// SetMulticastTTL sets the TTL of outgoing multicast datagrams: 0 to 255,
// or -1 for the default, 1. With 0 they are only looped back.
func (p *PacketConn) SetMulticastTTL(ttl int) error {
	if err := p.option(); err != nil {
		return err
	}
	if ttl == -1 {
		ttl = 1
	}
	if ttl < 0 || ttl > 255 {
		return setsockopt(syscall.EINVAL)
	}
	p.ep().UpdateOptions(func(o *udp.Options) { o.MulticastTTL = uint8(ttl) })
	return nil
}

// MulticastLoopback reports whether our own multicast datagrams are looped
// back to the stack's sockets.
func (p *PacketConn) MulticastLoopback() (bool, error) {
	if err := p.option(); err != nil {
		return false, err
	}
	return p.ep().Options().MulticastLoop, nil
}

// SetMulticastLoopback sets multicast loopback (on by default).
func (p *PacketConn) SetMulticastLoopback(on bool) error {
	if err := p.option(); err != nil {
		return err
	}
	p.ep().UpdateOptions(func(o *udp.Options) { o.MulticastLoop = on })
	return nil
}

// TOS returns the type-of-service byte of outgoing datagrams.
func (p *PacketConn) TOS() (int, error) {
	if err := p.option(); err != nil {
		return 0, err
	}
	return int(p.ep().Options().TOS), nil
}

// SetTOS sets the type-of-service byte (the low 8 bits of tos, as Linux
// keeps them).
func (p *PacketConn) SetTOS(tos int) error {
	if err := p.option(); err != nil {
		return err
	}
	p.ep().UpdateOptions(func(o *udp.Options) { o.TOS = uint8(tos) })
	return nil
}

// TTL returns the TTL of outgoing unicast datagrams.
func (p *PacketConn) TTL() (int, error) {
	if err := p.option(); err != nil {
		return 0, err
	}
	if t := p.ep().Options().TTL; t != 0 {
		return int(t), nil
	}
	return 64, nil
}

// SetTTL sets the TTL of outgoing unicast datagrams: 1 to 255, or -1 for
// the default, 64.
func (p *PacketConn) SetTTL(ttl int) error {
	if err := p.option(); err != nil {
		return err
	}
	if ttl == -1 {
		ttl = 0
	} else if ttl < 1 || ttl > 255 {
		return setsockopt(syscall.EINVAL)
	}
	p.ep().UpdateOptions(func(o *udp.Options) { o.TTL = uint8(ttl) })
	return nil
}

// ICMPFilter is not supported: it fails with EOPNOTSUPP.
func (p *PacketConn) ICMPFilter() (*ipv4.ICMPFilter, error) {
	if err := p.option(); err != nil {
		return nil, err
	}
	return nil, os.NewSyscallError("getsockopt", syscall.EOPNOTSUPP)
}

// SetICMPFilter is not supported: it fails with EOPNOTSUPP.
func (p *PacketConn) SetICMPFilter(*ipv4.ICMPFilter) error {
	if err := p.option(); err != nil {
		return err
	}
	return setsockopt(syscall.EOPNOTSUPP)
}

// SetBPF is not supported: it fails with EOPNOTSUPP.
func (p *PacketConn) SetBPF([]bpf.RawInstruction) error {
	if err := p.option(); err != nil {
		return err
	}
	return setsockopt(syscall.EOPNOTSUPP)
}

// SetControlMessage chooses the control messages ReadFrom and ReadBatch
// return.
func (p *PacketConn) SetControlMessage(cf ipv4.ControlFlags, on bool) error {
	if err := p.option(); err != nil {
		return err
	}
	cf &= ipv4.FlagTTL | ipv4.FlagSrc | ipv4.FlagDst | ipv4.FlagInterface
	p.mu.Lock()
	if on {
		p.cf |= cf
	} else {
		p.cf &^= cf
	}
	now := p.cf
	p.mu.Unlock()
	// Like IP_RECVTTL and IP_PKTINFO, these are socket options: the
	// UDPConn's ReadMsgUDP sees them too.
	p.ep().UpdateOptions(func(o *udp.Options) {
		o.ReceiveTTL = now&ipv4.FlagTTL != 0
		o.ReceiveDstAddr = now&pktinfoFlags != 0
	})
	return nil
}

// pktinfoFlags are the flags Linux serves with IP_PKTINFO.
const pktinfoFlags = ipv4.FlagSrc | ipv4.FlagDst | ipv4.FlagInterface

func (p *PacketConn) flags() ipv4.ControlFlags {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.cf
}

// SetDeadline sets the read and write deadlines.
func (p *PacketConn) SetDeadline(t time.Time) error {
	if !p.ok() {
		return errInvalidConn
	}
	return p.c.SetDeadline(t)
}

// SetReadDeadline sets the read deadline.
func (p *PacketConn) SetReadDeadline(t time.Time) error {
	if !p.ok() {
		return errInvalidConn
	}
	return p.c.SetReadDeadline(t)
}

// SetWriteDeadline sets the write deadline.
func (p *PacketConn) SetWriteDeadline(t time.Time) error {
	if !p.ok() {
		return errInvalidConn
	}
	return p.c.SetWriteDeadline(t)
}

// Close closes the socket.
func (p *PacketConn) Close() error {
	if !p.ok() {
		return errInvalidConn
	}
	return p.c.Close()
}

// LocalAddr returns the socket's local address.
func (p *PacketConn) LocalAddr() net.Addr {
	if !p.ok() {
		return nil
	}
	return p.c.LocalAddr()
}

// ioErr builds a read or write error as x/net does: closing and deadlines
// come from the runtime poller (a "raw-read"/"raw-write" OpError), errnos
// from the system call.
func (p *PacketConn) ioErr(op, call string, addr net.Addr, err error) error {
	c := p.c
	var inner error
	switch {
	case errors.Is(err, udp.ErrClosed), errors.Is(err, net.ErrClosed):
		inner = &net.OpError{Op: "raw-" + op, Net: c.network, Source: c.laddr, Addr: c.RemoteAddr(), Err: net.ErrClosed}
	case err == udp.ErrTimeout:
		inner = &net.OpError{Op: "raw-" + op, Net: c.network, Source: c.laddr, Addr: c.RemoteAddr(), Err: os.ErrDeadlineExceeded}
	default:
		var errno syscall.Errno
		if errors.As(err, &errno) {
			inner = os.NewSyscallError(call, errno)
		} else {
			inner = err
		}
	}
	return &net.OpError{Op: op, Net: "udp", Source: c.laddr, Addr: addr, Err: inner}
}

// closedBefore reports whether err is the socket being closed, which x/net
// reports with n = 0 (the system call never ran) where other errors give
// recvmmsg's and sendmmsg's -1.
func closedBefore(err error) bool {
	return errors.Is(err, udp.ErrClosed) || errors.Is(err, net.ErrClosed)
}

// ReadFrom reads a datagram, returning its payload size, the control
// message chosen by SetControlMessage (nil when none is) and the sender.
func (p *PacketConn) ReadFrom(b []byte) (n int, cm *ipv4.ControlMessage, src net.Addr, err error) {
	if !p.ok() {
		return 0, nil, nil, errInvalidConn
	}
	cf := p.flags()
	info, err := p.c.read(b)
	if err != nil {
		return 0, nil, nil, p.ioErr("read", "recvmsg", nil, err)
	}
	if cf != 0 {
		cm = new(ipv4.ControlMessage)
		p.fillControl(cm, cf, &info)
	}
	return info.N, cm, newUDPAddr(info.Src), nil
}

func ip4(a netip.Addr) net.IP {
	b := a.As4()
	return net.IP(b[:])
}

func (p *PacketConn) fillControl(cm *ipv4.ControlMessage, cf ipv4.ControlFlags, info *udp.ReadInfo) {
	cm.Src = ip4(info.Src.Addr())
	if cf&ipv4.FlagTTL != 0 {
		cm.TTL = int(info.TTL)
	}
	if cf&pktinfoFlags != 0 {
		cm.Dst = ip4(info.Dst)
		cm.IfIndex = int(info.NIC)
	}
}

// writeOptions checks a ControlMessage for WriteTo as sendmsg checks
// IP_PKTINFO.
func (p *PacketConn) writeOptions(src net.IP, ifIndex, ttl int) (*udp.WriteOptions, error) {
	wo := &udp.WriteOptions{TTL: ttl}
	if ifIndex > 0 {
		n := p.stack().NIC(stack.NICID(ifIndex))
		if n == nil {
			return nil, syscall.ENODEV
		}
		wo.NIC = n.ID()
	}
	if s := src.To4(); s != nil {
		a := netip.AddrFrom4([4]byte(s))
		if !a.IsUnspecified() && !p.stack().IsLocalAddress(a) {
			return nil, syscall.ENETUNREACH
		}
		wo.Src = a
	}
	if ttl < -1 || ttl > 255 {
		return nil, syscall.EINVAL
	}
	return wo, nil
}

// destination converts a WriteTo address as x/net marshals it: an address
// that is not an IPv4 *net.UDPAddr is no address (the connected peer, or
// EDESTADDRREQ); an IPv6 one is EAFNOSUPPORT.
func destination(dst net.Addr) (netip.AddrPort, error) {
	a, ok := dst.(*net.UDPAddr)
	if !ok || a == nil {
		return netip.AddrPort{}, nil
	}
	if ip := a.IP.To4(); ip != nil {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip)), uint16(a.Port)), nil
	}
	if len(a.IP) == net.IPv6len {
		return netip.AddrPort{}, syscall.EAFNOSUPPORT
	}
	return netip.AddrPort{}, nil
}

// send writes one datagram, as sendmsg would.
func (p *PacketConn) send(b []byte, to netip.AddrPort, wo *udp.WriteOptions) (int, error) {
	if _, expired := p.c.wd.wait(); expired {
		if p.closed() {
			return 0, udp.ErrClosed
		}
		return 0, udp.ErrTimeout
	}
	if !to.IsValid() {
		if _, ok := p.ep().RemoteAddr(); !ok {
			if p.closed() {
				return 0, udp.ErrClosed
			}
			return 0, syscall.EDESTADDRREQ
		}
	}
	return p.ep().Write(b, to, wo)
}

// WriteTo sends b to dst (nil: the connected peer). cm, if not nil,
// chooses the source address, the interface and the TTL.
func (p *PacketConn) WriteTo(b []byte, cm *ipv4.ControlMessage, dst net.Addr) (n int, err error) {
	if !p.ok() {
		return 0, errInvalidConn
	}
	to, err := destination(dst)
	var wo *udp.WriteOptions
	if err == nil && cm != nil {
		wo, err = p.writeOptions(cm.Src, cm.IfIndex, cm.TTL)
	}
	if err == nil {
		n, err = p.send(b, to, wo)
	}
	if err != nil {
		return 0, p.ioErr("write", "sendmsg", opAddr4(dst), err)
	}
	return n, nil
}

// opAddr4 is x/net's opAddr: typed nil addresses become nil.
func opAddr4(a net.Addr) net.Addr {
	if u, ok := a.(*net.UDPAddr); ok && u == nil {
		return nil
	}
	return a
}

// closedChan is an already closed channel: a read that must not block.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// ReadBatch reads up to len(ms) datagrams: it waits for the first (unless
// flags has MSG_DONTWAIT) and then takes those already queued, like
// recvmmsg (with MSG_PEEK, every message gets the first datagram again). Each Message gets N, Addr, Flags (MSG_TRUNC, MSG_CTRUNC) and
// in OOB the control messages chosen by SetControlMessage, as Linux
// encodes them.
func (p *PacketConn) ReadBatch(ms []ipv4.Message, flags int) (int, error) {
	if !p.ok() {
		return 0, errInvalidConn
	}
	if len(ms) == 0 {
		return 0, nil
	}
	const known = syscall.MSG_PEEK | syscall.MSG_DONTWAIT | syscall.MSG_WAITFORONE
	if flags&^known != 0 {
		return -1, p.ioErr("read", "recvmmsg", nil, syscall.EOPNOTSUPP)
	}
	peek := flags&syscall.MSG_PEEK != 0
	cf := p.flags()
	var scratch []byte
	for i := range ms {
		m := &ms[i]
		var info udp.ReadInfo
		var err error
		dst := []byte(nil)
		if len(m.Buffers) == 1 {
			dst = m.Buffers[0]
		} else {
			total := 0
			for _, b := range m.Buffers {
				total += len(b)
			}
			if cap(scratch) < total {
				scratch = make([]byte, total)
			}
			dst = scratch[:total]
		}
		if i == 0 && flags&syscall.MSG_DONTWAIT == 0 {
			cancel, expired := p.c.rd.wait()
			switch {
			case expired && p.closed():
				err = udp.ErrClosed
			case expired:
				err = udp.ErrTimeout
			default:
				info, err = p.ep().Read(dst, peek, cancel)
			}
		} else {
			info, err = p.ep().Read(dst, peek, closedChan)
			if err == udp.ErrTimeout {
				err = syscall.EAGAIN
			}
		}
		if err != nil {
			if i > 0 {
				return i, nil // like recvmmsg: the error waits for the next call
			}
			n := -1
			if closedBefore(err) {
				n = 0
			}
			return n, p.ioErr("read", "recvmmsg", nil, err)
		}
		if len(m.Buffers) != 1 {
			rest := dst[:info.N]
			for _, b := range m.Buffers {
				rest = rest[copy(b, rest):]
			}
		}
		m.N, m.Addr, m.Flags, m.NN = info.N, newUDPAddr(info.Src), 0, 0
		if info.Truncated {
			m.Flags |= syscall.MSG_TRUNC
		}
		if cf != 0 {
			var ctrunc bool
			m.NN, ctrunc = putControlMessages(p.stack(), m.OOB, cf&ipv4.FlagTTL != 0, cf&pktinfoFlags != 0, &info)
			if ctrunc {
				m.Flags |= syscall.MSG_CTRUNC
			}
		}
	}
	return len(ms), nil
}

// Linux's control message layout: a header of a size_t length and two
// ints, and data, each aligned to size_t.
const (
	cmsgAlign     = bits.UintSize / 8
	cmsgHdrLen    = (cmsgAlign + 8 + cmsgAlign - 1) &^ (cmsgAlign - 1)
	sizeofPktinfo = 12 // struct in_pktinfo
	solIP         = 0  // IPPROTO_IP
	ipTTL         = 2  // IP_TTL
	ipPktinfo     = 8  // IP_PKTINFO
)

func cmsgSpace(n int) int { return cmsgHdrLen + (n+cmsgAlign-1)&^(cmsgAlign-1) }

// putControlMessages writes the control messages of a received datagram
// into oob as Linux does (IP_PKTINFO, then IP_TTL, each with put_cmsg's
// truncation of what does not fit) and returns the bytes used and whether
// anything was cut (MSG_CTRUNC). ReadBatch uses it, and so can
// UDPConn.ReadMsgUDP for the options SetControlMessage turns on.
func putControlMessages(s *stack.Stack, oob []byte, ttl, pktinfo bool, info *udp.ReadInfo) (int, bool) {
	used, trunc := 0, false
	put := func(typ int, data []byte) {
		rest := oob[used:]
		if len(rest) < cmsgHdrLen {
			trunc = true
			return
		}
		l := cmsgHdrLen + len(data)
		if len(rest) < l {
			trunc, l = true, len(rest)
		}
		if cmsgAlign == 8 {
			binary.NativeEndian.PutUint64(rest, uint64(l))
		} else {
			binary.NativeEndian.PutUint32(rest, uint32(l))
		}
		binary.NativeEndian.PutUint32(rest[cmsgAlign:], solIP)
		binary.NativeEndian.PutUint32(rest[cmsgAlign+4:], uint32(typ))
		copy(rest[cmsgHdrLen:l], data)
		used += min(cmsgSpace(len(data)), len(rest))
	}
	if pktinfo {
		var pi [sizeofPktinfo]byte
		binary.NativeEndian.PutUint32(pi[0:], uint32(info.NIC))
		spec := info.Dst
		if !s.IsLocalAddress(spec) {
			// For a group or broadcast, Linux reports the address the
			// NIC would answer from.
			if n := s.NIC(info.NIC); n != nil {
				if as := n.Addresses(); len(as) > 0 {
					spec = as[0].Addr()
				}
			}
		}
		s4, d4 := spec.As4(), info.Dst.As4()
		copy(pi[4:8], s4[:])
		copy(pi[8:12], d4[:])
		put(ipPktinfo, pi[:])
	}
	if ttl {
		var v [4]byte
		binary.NativeEndian.PutUint32(v[:], uint32(info.TTL))
		put(ipTTL, v[:])
	}
	return used, trunc
}

// parseControl reads IP_PKTINFO (source and interface) and IP_TTL from a
// message's OOB, as Linux's ip_cmsg_send does.
func (p *PacketConn) parseControl(oob []byte) (*udp.WriteOptions, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	var src net.IP
	ifIndex, ttl := 0, 0
	for len(oob) >= cmsgHdrLen {
		var l int
		if cmsgAlign == 8 {
			l = int(binary.NativeEndian.Uint64(oob))
		} else {
			l = int(binary.NativeEndian.Uint32(oob))
		}
		if l < cmsgHdrLen || l > len(oob) {
			return nil, syscall.EINVAL
		}
		level := binary.NativeEndian.Uint32(oob[cmsgAlign:])
		typ := binary.NativeEndian.Uint32(oob[cmsgAlign+4:])
		data := oob[cmsgHdrLen:l]
		switch {
		case level != solIP:
			// Not IP's: SOL_SOCKET messages mean nothing for UDP data.
		case typ == ipPktinfo && len(data) == sizeofPktinfo:
			ifIndex = int(int32(binary.NativeEndian.Uint32(data[0:4])))
			src = net.IP(data[4:8])
		case typ == ipTTL && len(data) == 4:
			ttl = int(int32(binary.NativeEndian.Uint32(data)))
			if ttl < 1 || ttl > 255 {
				return nil, syscall.EINVAL
			}
		default:
			return nil, syscall.EINVAL
		}
		oob = oob[min(cmsgSpace(len(data)), len(oob)):]
	}
	return p.writeOptions(src, ifIndex, ttl)
}

// WriteBatch sends the messages in order, like sendmmsg: it returns how
// many were sent; an error is reported only when the first fails (with
// n = -1, as x/net passes it on), later failures end the batch early.
func (p *PacketConn) WriteBatch(ms []ipv4.Message, flags int) (int, error) {
	if !p.ok() {
		return 0, errInvalidConn
	}
	if len(ms) == 0 {
		return 0, nil
	}
	if flags&^syscall.MSG_DONTWAIT != 0 {
		return -1, p.ioErr("write", "sendmmsg", nil, syscall.EOPNOTSUPP)
	}
	var scratch []byte
	for i := range ms {
		m := &ms[i]
		b := []byte(nil)
		if len(m.Buffers) == 1 {
			b = m.Buffers[0]
		} else {
			scratch = scratch[:0]
			for _, x := range m.Buffers {
				scratch = append(scratch, x...)
			}
			b = scratch
		}
		to, err := destination(m.Addr)
		var wo *udp.WriteOptions
		if err == nil {
			wo, err = p.parseControl(m.OOB)
		}
		n := 0
		if err == nil {
			n, err = p.send(b, to, wo)
		}
		if err != nil {
			if i > 0 {
				return i, nil
			}
			r := -1
			if closedBefore(err) {
				r = 0
			}
			return r, p.ioErr("write", "sendmmsg", nil, err)
		}
		m.N, m.NN = n, 0
	}
	return len(ms), nil
}

// ListenMulticastUDP is net.ListenMulticastUDP on stack s: it binds the
// group's port on every address with SO_REUSEADDR (so several listeners
// share it), turns multicast loopback off, sets ifi (nil: the default NIC)
// as the multicast interface and joins the group there.
func ListenMulticastUDP(s *stack.Stack, network string, ifi *net.Interface, gaddr *net.UDPAddr) (*UDPConn, error) {
	fail := func(err error) (*UDPConn, error) {
		return nil, &net.OpError{Op: "listen", Net: network, Source: nil, Addr: opAddr(gaddr), Err: err}
	}
	if err := checkNetwork(network); err != nil {
		return fail(err)
	}
	if gaddr == nil || gaddr.IP == nil {
		return fail(errMissingAddress)
	}
	ip := gaddr.IP.To4()
	if ip == nil {
		return fail(&net.AddrError{Err: "non-IPv4 address", Addr: gaddr.IP.String()})
	}
	if gaddr.Port < 0 || gaddr.Port > 0xffff {
		return fail(sysErr("bind", syscall.EINVAL))
	}
	group := netip.AddrFrom4([4]byte(ip))
	var nic *stack.NIC
	if ifi != nil {
		var ok bool
		if nic, ok = s.NICForInterface(ifi); !ok {
			return fail(setsockopt(syscall.EADDRNOTAVAIL))
		}
	}
	ep := udp.New(s)
	ep.SetReuseAddr(true)
	if err := ep.Bind(netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(gaddr.Port))); err != nil {
		ep.Close()
		return fail(sysErr("bind", err))
	}
	ep.UpdateOptions(func(o *udp.Options) {
		o.MulticastLoop = false
		if nic != nil {
			o.MulticastNIC = nic.ID()
		}
	})
	if err := ep.JoinGroup(nic, group); err != nil {
		ep.Close()
		return fail(setsockopt(err))
	}
	return newConn(ep, network), nil
}
