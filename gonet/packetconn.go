package gonet

// PacketConn: the x/net/ipv4-shaped socket, its life cycle, errors and
// single-datagram I/O.

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/tapnet/tapnet/internal/udpsock"
	"github.com/tapnet/tapnet/stack"
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

func (p *PacketConn) ep() *udpsock.Endpoint { return &p.c.ep }

func (p *PacketConn) stack() *stack.Stack { return p.c.ep.Stack() }

// closedErr is what an option call on a closed socket returns: the error
// of syscall.RawConn.Control.
func (p *PacketConn) closedErr() error {
	return &net.OpError{Op: "raw-control", Net: p.c.network, Source: nil, Addr: p.c.localAddr(), Err: net.ErrClosed}
}

func (p *PacketConn) closed() bool { return p.ep().State() == udpsock.StateClosed }

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
	case errors.Is(err, udpsock.ErrClosed), errors.Is(err, net.ErrClosed):
		inner = &net.OpError{Op: "raw-" + op, Net: c.network, Source: c.localAddr(), Addr: c.RemoteAddr(), Err: net.ErrClosed}
	case err == udpsock.ErrTimeout:
		inner = &net.OpError{Op: "raw-" + op, Net: c.network, Source: c.localAddr(), Addr: c.RemoteAddr(), Err: os.ErrDeadlineExceeded}
	default:
		var errno syscall.Errno
		if errors.As(err, &errno) {
			inner = syscallErr(call, errno)
		} else {
			inner = err
		}
	}
	return &net.OpError{Op: op, Net: "udp", Source: c.localAddr(), Addr: addr, Err: inner}
}

// closedBefore reports whether err is the socket being closed, which x/net
// reports with n = 0 (the system call never ran) where other errors give
// recvmmsg's and sendmmsg's -1.
func closedBefore(err error) bool {
	return errors.Is(err, udpsock.ErrClosed) || errors.Is(err, net.ErrClosed)
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
func (p *PacketConn) send(b []byte, to netip.AddrPort, wo *udpsock.WriteOptions) (int, error) {
	if err := p.sendable(to); err != nil {
		return 0, err
	}
	return p.ep().Write(b, to, wo)
}

// sendable checks what a send checks before writing: the write deadline
// and, without a destination, a connected peer.
func (p *PacketConn) sendable(to netip.AddrPort) error {
	if p.c.wd.expired() {
		if p.closed() {
			return udpsock.ErrClosed
		}
		return udpsock.ErrTimeout
	}
	if !to.IsValid() {
		if _, ok := p.ep().RemoteAddr(); !ok {
			if p.closed() {
				return udpsock.ErrClosed
			}
			return syscall.EDESTADDRREQ
		}
	}
	return nil
}

// WriteTo sends b to dst (nil: the connected peer). cm, if not nil,
// chooses the source address, the interface and the TTL.
func (p *PacketConn) WriteTo(b []byte, cm *ipv4.ControlMessage, dst net.Addr) (n int, err error) {
	if !p.ok() {
		return 0, errInvalidConn
	}
	to, err := destination(dst)
	var wo *udpsock.WriteOptions
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
