package gonet

// Control messages: which ones a PacketConn reports, and their Linux
// encoding in out-of-band data (IP_PKTINFO, IP_TTL).

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
	if cf&pktinfoFlags != 0 {
		cm.Dst = ip4(info.Dst)
		cm.IfIndex = int(info.NIC)
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

// Control message levels and types: Linux's on every platform (see
// the package doc).
const (
	sizeofPktinfo = 12 // struct in_pktinfo
	solIP         = 0  // IPPROTO_IP
	ipTTL         = 2  // IP_TTL
	ipPktinfo     = 8  // IP_PKTINFO
)

// putCmsgHdr writes a control message header (cmsg_len, cmsg_level,
// cmsg_type) at the start of b.
func putCmsgHdr(b []byte, l, level, typ int) {
	if cmsgLenSize == 8 {
		binary.NativeEndian.PutUint64(b, uint64(l))
	} else {
		binary.NativeEndian.PutUint32(b, uint32(l))
	}
	binary.NativeEndian.PutUint32(b[cmsgLevelOff:], uint32(level))
	binary.NativeEndian.PutUint32(b[cmsgTypeOff:], uint32(typ))
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
// put_cmsg does: a message that does not fit whole is cut short, one whose
// header does not fit is left out, and either sets trunc (MSG_CTRUNC).
type cmsgWriter struct {
	oob   []byte
	level int
	used  int
	trunc bool
}

func (w *cmsgWriter) put(typ int, data []byte) {
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

// putControlMessages writes the control messages of a received datagram
// into oob as Linux does (IP_PKTINFO, then IP_TTL, each with put_cmsg's
// truncation of what does not fit) and returns the bytes used and whether
// anything was cut (MSG_CTRUNC). ReadBatch uses it, and so can
// UDPConn.ReadMsgUDP for the options SetControlMessage turns on.
func putControlMessages(s *stack.Stack, oob []byte, ttl, pktinfo bool, info *udpsock.ReadInfo) (int, bool) {
	w := cmsgWriter{oob: oob, level: solIP}
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
		w.put(ipPktinfo, pi[:])
	}
	if ttl {
		var v [4]byte
		binary.NativeEndian.PutUint32(v[:], uint32(info.TTL))
		w.put(ipTTL, v[:])
	}
	return w.used, w.trunc
}

// parseControl reads IP_PKTINFO (source and interface) and IP_TTL from a
// message's OOB, as Linux's ip_cmsg_send does.
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
