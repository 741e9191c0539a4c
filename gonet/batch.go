package gonet

// Batched I/O: ReadBatch and WriteBatch, like recvmmsg and sendmmsg.

import (
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/net/ipv4"

	"github.com/tapnet/tapnet/internal/udpsock"
	"github.com/tapnet/tapnet/stack"
)

// closedChan is an already closed channel: a read that must not block.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// ReadBatch reads up to len(ms) datagrams: it waits for the first (unless
// flags has MSG_DONTWAIT) and then takes those already queued, like
// recvmmsg (with MSG_PEEK, every message gets the first datagram again). Each Message gets N, Addr, Flags (MSG_TRUNC, MSG_CTRUNC) and
// in OOB the control messages chosen by SetControlMessage, as this
// system's kernel encodes them (see the package doc, "Other systems").
func (p *PacketConn) ReadBatch(ms []ipv4.Message, flags int) (int, error) {
	if !p.ok() {
		return 0, errInvalidConn
	}
	return p.readBatch(ms, flags, uint(p.flags()), putControlMessages4)
}

// controlWriter encodes the control messages cf asks for of a received
// datagram into oob, returning the bytes used and whether some were cut.
type controlWriter func(s *stack.Stack, oob []byte, cf uint, info *udpsock.ReadInfo) (int, bool)

// putControlMessages4 is the controlWriter of x/net/ipv4's flags.
func putControlMessages4(s *stack.Stack, oob []byte, cf uint, info *udpsock.ReadInfo) (int, bool) {
	return putControlMessages(s, oob, ipv4.ControlFlags(cf), info)
}

// readBatch is ReadBatch for either family: put encodes what cf asks for.
func (p *PacketConn) readBatch(ms []ipv4.Message, flags int, cf uint, put controlWriter) (int, error) {
	if len(ms) == 0 {
		return 0, nil
	}
	const known = MsgPeek | MsgDontWait | msgWaitForOne
	if flags&^known != 0 {
		return -1, p.ioErr("read", "recvmmsg", nil, syscall.EOPNOTSUPP)
	}
	peek := flags&MsgPeek != 0
	var scratch []byte
	var addrs addrSlab
	var info udpsock.ReadInfo // one for the batch: put's pointer makes it escape
	for i := range ms {
		m := &ms[i]
		info = udpsock.ReadInfo{}
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
		if i == 0 && flags&MsgDontWait == 0 {
			cancel, expired := p.c.rd.wait()
			switch {
			case expired && p.closed():
				err = udpsock.ErrClosed
			case expired:
				err = udpsock.ErrTimeout
			default:
				info, err = p.ep().Read(dst, peek, cancel)
			}
		} else {
			info, err = p.ep().Read(dst, peek, closedChan)
			if err == udpsock.ErrTimeout {
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
		m.N, m.Addr, m.Flags, m.NN = info.N, addrs.next(info.Src, len(ms)-i), 0, 0
		if info.Truncated {
			m.Flags |= MsgTrunc
		}
		if cf != 0 {
			var ctrunc bool
			m.NN, ctrunc = put(p.stack(), m.OOB, cf, &info)
			if ctrunc {
				m.Flags |= MsgCtrunc
			}
		}
	}
	return len(ms), nil
}

// WriteBatch sends the messages in order, like sendmmsg: it returns how
// many were sent; an error is reported only when the first fails (with
// n = -1, as x/net passes it on), later failures end the batch early.
// Consecutive messages to one destination, each with one buffer and no
// control messages, reach the link together: as one UDP super-frame on a
// link with segmentation offload (a TAP opened with tap.Options.Offload),
// where the kernel cuts it into the datagrams, or else as one batch of
// frames.
func (p *PacketConn) WriteBatch(ms []ipv4.Message, flags int) (int, error) {
	if !p.ok() {
		return 0, errInvalidConn
	}
	return p.writeBatch(ms, flags, messageOptions4)
}

// messageReader reads a message's destination and per-datagram options
// (from its OOB) for a send.
type messageReader func(p *PacketConn, m *ipv4.Message) (netip.AddrPort, *udpsock.WriteOptions, error)

// messageOptions4 is the messageReader of an x/net/ipv4 message.
func messageOptions4(p *PacketConn, m *ipv4.Message) (netip.AddrPort, *udpsock.WriteOptions, error) {
	to, err := destination(m.Addr)
	if err != nil {
		return to, nil, err
	}
	wo, err := p.parseControl(m.OOB)
	return to, wo, err
}

// writeBatch is WriteBatch for either family: opts reads each message.
func (p *PacketConn) writeBatch(ms []ipv4.Message, flags int, opts messageReader) (int, error) {
	if len(ms) == 0 {
		return 0, nil
	}
	if flags&^MsgDontWait != 0 {
		return -1, p.ioErr("write", "sendmmsg", nil, syscall.EOPNOTSUPP)
	}
	var scratch []byte
	for i := 0; i < len(ms); {
		if k, err := p.writeRun(ms[i:], opts); k > 0 || err != nil {
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
			i += k
			continue
		}
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
		to, wo, err := opts(p, m)
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
		i++
	}
	return len(ms), nil
}

// maxWriteRun bounds the messages writeRun sends together.
const maxWriteRun = 64

// writeRun sends the leading messages of ms that go to one destination
// with one buffer each and no control messages together (one super-frame
// on a link with segmentation offload, one link batch otherwise), and
// returns how many it sent. It sends nothing, returning 0 and no error,
// unless ms starts with at least two such messages.
func (p *PacketConn) writeRun(ms []ipv4.Message, opts messageReader) (int, error) {
	to, ok := p.batchable(&ms[0], opts)
	if !ok || len(ms) < 2 {
		return 0, nil
	}
	var bufs [maxWriteRun][]byte
	k := 0
	for k < len(ms) && k < len(bufs) {
		t, ok := p.batchable(&ms[k], opts)
		if !ok || t != to {
			break
		}
		bufs[k] = ms[k].Buffers[0]
		k++
	}
	if k < 2 {
		return 0, nil
	}
	if err := p.sendable(to); err != nil {
		return 0, err
	}
	n, err := p.ep().WriteBatch(bufs[:k], to, nil)
	for i := range n {
		ms[i].N, ms[i].NN = len(bufs[i]), 0
	}
	if n > 0 {
		return n, nil // like sendmmsg, the error waits for the next call
	}
	return 0, err
}

// batchable returns a message's destination, read by opts, if it may
// join a batch.
func (p *PacketConn) batchable(m *ipv4.Message, opts messageReader) (netip.AddrPort, bool) {
	if len(m.Buffers) != 1 || len(m.OOB) != 0 {
		return netip.AddrPort{}, false
	}
	to, _, err := opts(p, m)
	return to, err == nil
}

// addrSlab hands out the source addresses of a ReadBatch, each a distinct
// *net.UDPAddr the caller may keep, from chunks allocated at once rather
// than one allocation per datagram.
type addrSlab struct {
	free []slabAddr
}

// slabAddr is a UDPAddr with room for its IP, of either family.
type slabAddr struct {
	a  net.UDPAddr
	ip [16]byte
}

// addrSlabChunk bounds the addresses allocated ahead of need.
const addrSlabChunk = 16

// next returns ap as a fresh *net.UDPAddr; left is how many more a batch
// may still need, this one included.
func (s *addrSlab) next(ap netip.AddrPort, left int) *net.UDPAddr {
	if len(s.free) == 0 {
		s.free = make([]slabAddr, min(left, addrSlabChunk))
	}
	x := &s.free[0]
	s.free = s.free[1:]
	a := ap.Addr()
	if a.Is6() {
		x.ip = a.As16()
		x.a.IP, x.a.Zone = x.ip[:], a.Zone()
	} else {
		*(*[4]byte)(x.ip[:4]) = a.As4()
		x.a.IP = x.ip[:4:4]
	}
	x.a.Port = int(ap.Port())
	return &x.a
}
