package gonet

// Batched I/O: ReadBatch and WriteBatch, like recvmmsg and sendmmsg.

import (
	"syscall"

	"golang.org/x/net/ipv4"

	"github.com/tapnet/tapnet/internal/udpsock"
)

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
	const known = MsgPeek | MsgDontWait | msgWaitForOne
	if flags&^known != 0 {
		return -1, p.ioErr("read", "recvmmsg", nil, syscall.EOPNOTSUPP)
	}
	peek := flags&MsgPeek != 0
	cf := p.flags()
	var scratch []byte
	for i := range ms {
		m := &ms[i]
		var info udpsock.ReadInfo
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
		m.N, m.Addr, m.Flags, m.NN = info.N, newUDPAddr(info.Src), 0, 0
		if info.Truncated {
			m.Flags |= MsgTrunc
		}
		if cf != 0 {
			var ctrunc bool
			m.NN, ctrunc = putControlMessages(p.stack(), m.OOB, cf&ipv4.FlagTTL != 0, cf&pktinfoFlags != 0, &info)
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
func (p *PacketConn) WriteBatch(ms []ipv4.Message, flags int) (int, error) {
	if !p.ok() {
		return 0, errInvalidConn
	}
	if len(ms) == 0 {
		return 0, nil
	}
	if flags&^MsgDontWait != 0 {
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
		var wo *udpsock.WriteOptions
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
