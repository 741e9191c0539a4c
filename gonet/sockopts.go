package gonet

// Socket options: TTL, TOS, the multicast interface, TTL and loopback,
// and the raw-socket options a UDP socket refuses.

import (
	"errors"
	"net"
	"syscall"

	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv4"

	"github.com/tapnet/tapnet/internal/udpsock"
	"github.com/tapnet/tapnet/stack"
)

// setsockopt wraps an errno the way x/net's option setters do.
func setsockopt(err error) error {
	if err == nil {
		return nil
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return syscallErr("setsockopt", errno)
	}
	return err
}

// optErr maps an endpoint error of a membership call.
func (p *PacketConn) optErr(err error) error {
	if errors.Is(err, udpsock.ErrClosed) {
		return p.closedErr()
	}
	return setsockopt(err)
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
	p.ep().UpdateOptions(func(o *udpsock.Options) { o.MulticastNIC = id })
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
	p.ep().UpdateOptions(func(o *udpsock.Options) { o.MulticastTTL = uint8(ttl) })
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
	p.ep().UpdateOptions(func(o *udpsock.Options) { o.MulticastLoop = on })
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
	p.ep().UpdateOptions(func(o *udpsock.Options) { o.TOS = uint8(tos) })
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
	p.ep().UpdateOptions(func(o *udpsock.Options) { o.TTL = uint8(ttl) })
	return nil
}

// ICMPFilter is not supported: it fails with EOPNOTSUPP.
func (p *PacketConn) ICMPFilter() (*ipv4.ICMPFilter, error) {
	if err := p.option(); err != nil {
		return nil, err
	}
	return nil, syscallErr("getsockopt", syscall.EOPNOTSUPP)
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
