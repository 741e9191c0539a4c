package gonet

// Control messages: which ones a PacketConn reports, and their encoding
// in out-of-band data with the platform's types (IP_PKTINFO, IP_TTL on
// Linux; IP_RECVTTL, IP_RECVDSTADDR, IP_RECVIF on the BSDs).

import (
	"encoding/binary"
	"math"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/net/ipv4"

	"github.com/tapnet/tapnet/internal/udpsock"
	"github.com/tapnet/tapnet/stack"
)

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
	p.ep().UpdateOptions(func(o *udpsock.Options) {
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

func (p *PacketConn) fillControl(cm *ipv4.ControlMessage, cf ipv4.ControlFlags, info *udpsock.ReadInfo) {
	cm.Src = ip4(info.Src.Addr())
	if cf&ipv4.FlagTTL != 0 {
		cm.TTL = int(info.TTL)
	}
	switch {
	case ipCmsg.pktinfo != 0:
		// One IP_PKTINFO brings both, whichever of the flags asked.
		if cf&pktinfoFlags != 0 {
			cm.Dst = ip4(info.Dst)
			cm.IfIndex = int(info.NIC)
		}
	default:
		// The BSDs: IP_RECVDSTADDR and IP_RECVIF, each with its own flag.
		if cf&ipv4.FlagDst != 0 {
			cm.Dst = ip4(info.Dst)
		}
		if cf&ipv4.FlagInterface != 0 {
			cm.IfIndex = int(info.NIC)
		}
	}
}

// writeOptions checks a ControlMessage for WriteTo as sendmsg checks
// IP_PKTINFO.
func (p *PacketConn) writeOptions(src net.IP, ifIndex, ttl int) (*udpsock.WriteOptions, error) {
	wo := &udpsock.WriteOptions{TTL: ttl}
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

// sizeofPktinfo is the size of struct in_pktinfo, the same on every
// system that has it.
const sizeofPktinfo = 12

// ipCmsgTypes is how x/net/ipv4 encodes IP-level control messages on this
// platform (see the cmsgtypes_*.go files), and so how gonet writes and reads
// them. A zero type is a message the platform does not have.
type ipCmsgTypes struct {
	level uint32 // IPPROTO_IP

	// Received.
	ttl          uint32 // the TTL: Linux's IP_TTL, the BSDs' IP_RECVTTL
	ttlLen       int    // its size: an int on Linux, a u_char on the BSDs
	pktinfo      uint32 // IP_PKTINFO: destination and interface (also sent)
	pktinfoFirst bool   // IP_PKTINFO comes before the TTL, as Linux puts it
	specDst      bool   // the kernel fills ipi_spec_dst (Linux does; macOS leaves it 0)
	dstAddr      uint32 // IP_RECVDSTADDR: the destination alone, where there is no IP_PKTINFO
	recvIf       uint32 // IP_RECVIF: a sockaddr_dl naming the interface
	ttlBeforeIf  bool   // IP_RECVTTL comes before IP_RECVIF (FreeBSD's order)
	sdl          sockaddrDatalink

	// Sent.
	sendTTL uint32 // an int TTL for the datagram: Linux's IP_TTL (gonet takes it everywhere)
}

// sockaddrDatalink is the shape of the struct sockaddr_dl an IP_RECVIF
// message carries: x/net reads only sdl_index.
type sockaddrDatalink struct {
	size     int  // sizeof(struct sockaddr_dl), what x/net insists on
	family   byte // AF_LINK
	indexOff int  // offset of the uint16 sdl_index
}

// put writes into b a sockaddr_dl for interface nic with no name or
// address, as BSD kernels make one for an interface without a link-level
// address, and returns it.
func (d sockaddrDatalink) put(b []byte, nic stack.NICID) []byte {
	b = b[:d.size]
	clear(b)
	b[0], b[1] = byte(d.size), d.family // sdl_len, sdl_family
	binary.NativeEndian.PutUint16(b[d.indexOff:], uint16(nic))
	return b
}

// putCmsgHdr writes a control message header (cmsg_len, cmsg_level,
// cmsg_type) at the start of b.
func putCmsgHdr(b []byte, l int, level, typ uint32) {
	if cmsgLenSize == 8 {
		binary.NativeEndian.PutUint64(b, uint64(l))
	} else {
		binary.NativeEndian.PutUint32(b, uint32(l))
	}
	binary.NativeEndian.PutUint32(b[cmsgLevelOff:], level)
	binary.NativeEndian.PutUint32(b[cmsgTypeOff:], typ)
}

// cmsgHdr reads the header putCmsgHdr writes; a length that does not fit an
// int comes back negative.
func cmsgHdr(b []byte) (l int, level, typ uint32) {
	if cmsgLenSize == 8 {
		v := binary.NativeEndian.Uint64(b)
		l = int(v)
		if v > math.MaxInt32 {
			l = -1
		}
	} else {
		l = int(binary.NativeEndian.Uint32(b))
		if l < 0 {
			l = -1
		}
	}
	return l, binary.NativeEndian.Uint32(b[cmsgLevelOff:]), binary.NativeEndian.Uint32(b[cmsgTypeOff:])
}

// cmsgWriter appends control messages of one level to oob as Linux's
// put_cmsg does (the BSDs' sbcreatecontrol drops what does not fit; x/net
// cannot tell): a message that does not fit whole is cut short, one whose
// header does not fit is left out, and either sets trunc (MSG_CTRUNC).
type cmsgWriter struct {
	oob   []byte
	level uint32
	used  int
	trunc bool
}

func (w *cmsgWriter) put(typ uint32, data []byte) {
	rest := w.oob[w.used:]
	if len(rest) < cmsgHdrLen {
		w.trunc = true
		return
	}
	l := cmsgHdrLen + len(data)
	if len(rest) < l {
		w.trunc, l = true, len(rest)
	}
	putCmsgHdr(rest, l, w.level, typ)
	copy(rest[cmsgHdrLen:l], data)
	w.used += min(cmsgSpace(len(data)), len(rest))
}

// putControlMessages writes the control messages cf asks for of a
// received datagram into oob as this platform's kernel does (on Linux
// IP_PKTINFO then IP_TTL; on the BSDs IP_RECVDSTADDR, IP_RECVTTL and
// IP_RECVIF; see ipCmsg) and returns the bytes used and whether anything
// was cut (MSG_CTRUNC). ReadBatch uses it.
func putControlMessages(s *stack.Stack, oob []byte, cf ipv4.ControlFlags, info *udpsock.ReadInfo) (int, bool) {
	t := &ipCmsg
	w := cmsgWriter{oob: oob, level: t.level}
	pktinfo := t.pktinfo != 0 && cf&pktinfoFlags != 0
	if pktinfo && t.pktinfoFirst {
		putPktinfo(&w, s, info)
	}
	if t.pktinfo == 0 && t.dstAddr != 0 && cf&ipv4.FlagDst != 0 {
		d := info.Dst.As4()
		w.put(t.dstAddr, d[:])
	}
	recvIf := t.pktinfo == 0 && t.recvIf != 0 && cf&ipv4.FlagInterface != 0
	if recvIf && !t.ttlBeforeIf {
		putRecvIf(&w, info)
	}
	if cf&ipv4.FlagTTL != 0 {
		putTTL(&w, info)
	}
	if recvIf && t.ttlBeforeIf {
		putRecvIf(&w, info)
	}
	if pktinfo && !t.pktinfoFirst {
		putPktinfo(&w, s, info)
	}
	return w.used, w.trunc
}

// putPktinfo writes IP_PKTINFO: interface, local address, destination.
func putPktinfo(w *cmsgWriter, s *stack.Stack, info *udpsock.ReadInfo) {
	var pi [sizeofPktinfo]byte
	binary.NativeEndian.PutUint32(pi[0:], uint32(info.NIC))
	if ipCmsg.specDst {
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
		s4 := spec.As4()
		copy(pi[4:8], s4[:])
	}
	d4 := info.Dst.As4()
	copy(pi[8:12], d4[:])
	w.put(ipCmsg.pktinfo, pi[:])
}

// putTTL writes the received TTL in the platform's size.
func putTTL(w *cmsgWriter, info *udpsock.ReadInfo) {
	var v [4]byte
	if ipCmsg.ttlLen == 1 {
		v[0] = info.TTL
	} else {
		binary.NativeEndian.PutUint32(v[:], uint32(info.TTL))
	}
	w.put(ipCmsg.ttl, v[:ipCmsg.ttlLen])
}

// putRecvIf writes IP_RECVIF: the receiving interface as a sockaddr_dl.
func putRecvIf(w *cmsgWriter, info *udpsock.ReadInfo) {
	var b [maxSockaddrDatalink]byte
	w.put(ipCmsg.recvIf, ipCmsg.sdl.put(b[:], info.NIC))
}

// maxSockaddrDatalink bounds struct sockaddr_dl on every system (FreeBSD's,
// 54 bytes, is the largest).
const maxSockaddrDatalink = 64

// parseControl reads IP_PKTINFO (source and interface; where the platform
// has it) and IP_TTL from a message's OOB, as Linux's ip_cmsg_send does.
func (p *PacketConn) parseControl(oob []byte) (*udpsock.WriteOptions, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	var src net.IP
	ifIndex, ttl := 0, 0
	for len(oob) >= cmsgHdrLen {
		l, level, typ := cmsgHdr(oob)
		if l < cmsgHdrLen || l > len(oob) {
			return nil, syscall.EINVAL
		}
		data := oob[cmsgHdrLen:l]
		switch {
		case level != ipCmsg.level:
			// Not IP's: SOL_SOCKET messages mean nothing for UDP data.
		case ipCmsg.pktinfo != 0 && typ == ipCmsg.pktinfo && len(data) == sizeofPktinfo:
			ifIndex = int(int32(binary.NativeEndian.Uint32(data[0:4])))
			src = net.IP(data[4:8])
		case typ == ipCmsg.sendTTL && len(data) == 4:
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
