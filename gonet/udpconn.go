package gonet

import (
	"errors"
	"math"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tapnet/tapnet/internal/udpsock"
	"github.com/tapnet/tapnet/stack"
)

// UDPConn is a UDP socket on a tapnet stack with the method set of
// *net.UDPConn (except SyscallConn and File, which a userspace socket
// cannot provide). It implements net.PacketConn and net.Conn.
type UDPConn struct {
	// The socket is part of the conn, one allocation, so that opening and
	// closing sockets is cheap.
	ep        udpsock.Endpoint
	network   string
	v6        bool                        // AF_INET6
	laddr     atomic.Pointer[net.UDPAddr] // made when first asked for
	raddr     *net.UDPAddr                // nil unless dialed
	connected bool
	rd, wd    deadline
}

var (
	_ net.PacketConn = (*UDPConn)(nil)
	_ net.Conn       = (*UDPConn)(nil)
)

// newConn returns a conn around a new, unbound socket of family f on s.
func newConn(s *stack.Stack, network string, f family) *UDPConn {
	c := &UDPConn{network: network, v6: f.v6}
	if f.v6 {
		c.ep.InitIPv6(s, f.v6only)
	} else {
		c.ep.Init(s)
	}
	return c
}

// localAddr returns the local address, the same *net.UDPAddr every time
// as net's. It is made on first use, after the socket is bound: many
// sockets never need it.
func (c *UDPConn) localAddr() *net.UDPAddr {
	if a := c.laddr.Load(); a != nil {
		return a
	}
	c.laddr.CompareAndSwap(nil, newUDPAddr(c.ep.LocalAddr()))
	return c.laddr.Load()
}

// LocalAddr returns the local address, a *net.UDPAddr.
func (c *UDPConn) LocalAddr() net.Addr { return c.localAddr() }

// RemoteAddr returns the peer of a dialed conn (a *net.UDPAddr), or nil.
func (c *UDPConn) RemoteAddr() net.Addr {
	if c.raddr == nil {
		return nil
	}
	return c.raddr
}

// mapErr turns an endpoint error into the error net would wrap in its
// OpError: syscall errors inside an *os.SyscallError named like the
// kernel's call, closed and deadline errors as net's sentinels.
func mapErr(err error, syscallName string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, udpsock.ErrClosed), errors.Is(err, net.ErrClosed):
		return net.ErrClosed
	case err == udpsock.ErrTimeout:
		return os.ErrDeadlineExceeded
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return syscallErr(syscallName, errno)
	}
	return err
}

// syscallErr is the *os.SyscallError net builds for errno from the named
// call, in this system's terms (Winsock's names and errors on Windows).
func syscallErr(name string, errno syscall.Errno) error {
	return os.NewSyscallError(osCall(name), osErrno(errno))
}

func (c *UDPConn) readErr(err error, name string) error {
	return &net.OpError{Op: "read", Net: c.network, Source: c.localAddr(), Addr: c.RemoteAddr(), Err: mapErr(err, name)}
}

func (c *UDPConn) writeErr(err error, name string, addr net.Addr) error {
	return &net.OpError{Op: "write", Net: c.network, Source: c.localAddr(), Addr: addr, Err: mapErr(err, name)}
}

// read is the common path of every read method.
func (c *UDPConn) read(b []byte) (udpsock.ReadInfo, error) {
	cancel, expired := c.rd.wait()
	if expired {
		if c.ep.State() == udpsock.StateClosed {
			return udpsock.ReadInfo{}, udpsock.ErrClosed
		}
		return udpsock.ReadInfo{}, udpsock.ErrTimeout
	}
	return c.ep.Read(b, false, cancel)
}

// Read reads one datagram from a dialed conn (or any datagram from an
// unconnected one); excess bytes of a long datagram are discarded.
func (c *UDPConn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		// net's Read does no system call for an empty buffer: it neither
		// waits nor consumes a datagram.
		if c.ep.State() == udpsock.StateClosed {
			return 0, c.readErr(udpsock.ErrClosed, "read")
		}
		return 0, nil
	}
	info, err := c.read(b)
	if err != nil {
		return 0, c.readErr(err, "read")
	}
	return info.N, nil
}

// ReadFromUDPAddrPort reads a datagram and returns its sender without
// allocating.
func (c *UDPConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	info, err := c.read(b)
	if err != nil {
		return 0, netip.AddrPort{}, c.readErr(err, "recvfrom")
	}
	return info.N, info.Src, nil
}

// ReadFromUDP reads a datagram and returns its sender.
func (c *UDPConn) ReadFromUDP(b []byte) (int, *net.UDPAddr, error) {
	info, err := c.read(b)
	if err != nil {
		return 0, nil, c.readErr(err, "recvfrom")
	}
	return info.N, newUDPAddr(info.Src), nil
}

// ReadFrom implements net.PacketConn.
func (c *UDPConn) ReadFrom(b []byte) (int, net.Addr, error) {
	info, err := c.read(b)
	if err != nil {
		return 0, nil, c.readErr(err, "recvfrom")
	}
	return info.N, newUDPAddr(info.Src), nil
}

// newUDPAddr builds a *net.UDPAddr with one allocation: the address and
// the bytes its IP slice points to live in one object. IPv4 gets a 4-byte
// IP, IPv6 (and IPv4-mapped, on AF_INET6 sockets) 16 bytes and the zone,
// as net's sockaddr conversion gives them.
func newUDPAddr(ap netip.AddrPort) *net.UDPAddr {
	a := ap.Addr()
	if a.Is6() {
		x := new(struct {
			a  net.UDPAddr
			ip [16]byte
		})
		x.ip = a.As16()
		x.a.IP, x.a.Port, x.a.Zone = x.ip[:], int(ap.Port()), a.Zone()
		return &x.a
	}
	x := new(struct {
		a  net.UDPAddr
		ip [4]byte
	})
	x.ip = a.As4()
	x.a.IP, x.a.Port = x.ip[:], int(ap.Port())
	return &x.a
}

// ReadMsgUDPAddrPort reads a datagram; flags carry MSG_TRUNC when it was
// longer than b. No control messages are produced (oobn is 0) unless
// enabled through the ipv4-style PacketConn.
func (c *UDPConn) ReadMsgUDPAddrPort(b, oob []byte) (n, oobn, flags int, addr netip.AddrPort, err error) {
	// On failure net reports the unspecified address, and n = -1 when the
	// recvmsg call itself failed (after a wait, or with a socket error) as
	// opposed to being refused before it was made (closed, deadline past).
	n = -1
	if c.rd.expired() || c.ep.State() == udpsock.StateClosed {
		n = 0
	}
	info, err := c.read(b)
	if err != nil {
		return n, 0, 0, unspecifiedFor(c.v6), c.readErr(err, "recvmsg")
	}
	if info.Truncated {
		flags |= MsgTrunc
	}
	return info.N, 0, flags, info.Src, nil
}

// ReadMsgUDP is ReadMsgUDPAddrPort with a *net.UDPAddr.
func (c *UDPConn) ReadMsgUDP(b, oob []byte) (n, oobn, flags int, addr *net.UDPAddr, err error) {
	var ap netip.AddrPort
	n, oobn, flags, ap, err = c.ReadMsgUDPAddrPort(b, oob)
	if ap.IsValid() {
		addr = net.UDPAddrFromAddrPort(ap)
	}
	return
}

// write is the common path of every write method; to is invalid for the
// connected peer.
func (c *UDPConn) write(b []byte, to netip.AddrPort) (int, error) {
	if err := c.expiredWrite(); err != nil {
		return 0, err
	}
	return c.ep.Write(b, to, nil)
}

// expiredWrite returns the error of a write whose deadline has passed.
func (c *UDPConn) expiredWrite() error {
	if c.wd.expired() {
		if c.ep.State() == udpsock.StateClosed {
			return udpsock.ErrClosed
		}
		return udpsock.ErrTimeout
	}
	return nil
}

// writeBadAddr fails a write to an address the kernel refuses in sendto
// (EINVAL for a port out of range); a closed conn or a passed deadline is
// reported first, as net checks them before the system call.
func (c *UDPConn) writeBadAddr(err error) error {
	if e := c.expiredWrite(); e != nil {
		return e
	}
	if c.ep.State() == udpsock.StateClosed {
		return udpsock.ErrClosed
	}
	return err
}

// Write sends b to the dialed peer.
func (c *UDPConn) Write(b []byte) (int, error) {
	n, err := c.write(b, netip.AddrPort{})
	if err != nil {
		return n, c.writeErr(err, "write", c.RemoteAddr())
	}
	return n, nil
}

var errMissingAddress = errors.New("missing address")

// wrongFamily is the error net gives before any system call for an
// address an AF_INET socket cannot take.
func (c *UDPConn) wrongFamily(a netip.Addr) error {
	if !c.v6 && a.Is6() && !a.Is4In6() {
		return nonIPv4(a.String())
	}
	return nil
}

func (c *UDPConn) writeToUDP(b []byte, addr *net.UDPAddr) (int, error) {
	if c.connected {
		return 0, net.ErrWriteToConnected
	}
	if addr == nil {
		return 0, errMissingAddress
	}
	ap, err := sockaddr(addr, c.v6)
	if err == syscall.EINVAL {
		return 0, c.writeBadAddr(err)
	}
	if err != nil {
		return 0, err
	}
	return c.write(b, ap)
}

// WriteToUDP sends a datagram to addr.
func (c *UDPConn) WriteToUDP(b []byte, addr *net.UDPAddr) (int, error) {
	n, err := c.writeToUDP(b, addr)
	if err != nil {
		return n, c.writeErr(err, "sendto", opAddr(addr))
	}
	return n, nil
}

// WriteTo implements net.PacketConn; addr must be a *net.UDPAddr.
func (c *UDPConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	a, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, &net.OpError{Op: "write", Net: c.network, Source: c.localAddr(), Addr: addr, Err: syscall.EINVAL}
	}
	return c.WriteToUDP(b, a)
}

// addrPortAddr is how net reports a netip.AddrPort in an OpError.
type addrPortAddr struct{ netip.AddrPort }

func (addrPortAddr) Network() string { return "udp" }

// WriteToUDPAddrPort sends a datagram to addr without allocating.
func (c *UDPConn) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	var n int
	var err error
	switch {
	case c.connected:
		err = net.ErrWriteToConnected
	case !addr.IsValid():
		err = errMissingAddress
	case c.wrongFamily(addr.Addr()) != nil:
		err = c.wrongFamily(addr.Addr())
	default:
		n, err = c.write(b, addr)
	}
	if err != nil {
		return n, c.writeErr(err, "sendto", addrPortAddr{addr})
	}
	return n, nil
}

// WriteMsgUDP sends a datagram to addr, or to the dialed peer when addr is
// nil. Control messages in oob are not interpreted; oobn is always 0.
func (c *UDPConn) WriteMsgUDP(b, oob []byte, addr *net.UDPAddr) (n, oobn int, err error) {
	var to netip.AddrPort
	switch {
	case c.connected && addr != nil:
		err = net.ErrWriteToConnected
	case !c.connected && addr == nil:
		err = errMissingAddress
	case addr != nil:
		to, err = sockaddr(addr, c.v6)
		if err == syscall.EINVAL {
			err = c.writeBadAddr(err)
		}
	}
	if err == nil {
		n, err = c.write(b, to)
	}
	if err != nil {
		return n, 0, c.writeErr(err, "sendmsg", opAddr(addr))
	}
	return n, 0, nil
}

// WriteMsgUDPAddrPort is WriteMsgUDP with a netip.AddrPort (invalid for
// the dialed peer).
func (c *UDPConn) WriteMsgUDPAddrPort(b, oob []byte, addr netip.AddrPort) (n, oobn int, err error) {
	switch {
	case c.connected && addr.IsValid():
		err = net.ErrWriteToConnected
	case !c.connected && !addr.IsValid():
		err = errMissingAddress
	case c.wrongFamily(addr.Addr()) != nil:
		err = c.wrongFamily(addr.Addr())
	default:
		n, err = c.write(b, addr)
	}
	if err != nil {
		return n, 0, c.writeErr(err, "sendmsg", addrPortAddr{addr})
	}
	return n, 0, nil
}

// Close closes the conn; blocked reads return net.ErrClosed. A second Close
// returns an error wrapping net.ErrClosed, as net does.
func (c *UDPConn) Close() error {
	err := c.ep.Close()
	c.rd.stop()
	c.wd.stop()
	if err != nil {
		return &net.OpError{Op: "close", Net: c.network, Source: c.localAddr(), Addr: c.RemoteAddr(), Err: mapErr(err, "close")}
	}
	return nil
}

func (c *UDPConn) setErr(err error) error {
	return &net.OpError{Op: "set", Net: c.network, Source: nil, Addr: c.localAddr(), Err: err}
}

// SetDeadline sets the read and write deadlines.
func (c *UDPConn) SetDeadline(t time.Time) error {
	if c.ep.State() == udpsock.StateClosed {
		return c.setErr(net.ErrClosed)
	}
	c.rd.set(t)
	c.wd.set(t)
	return nil
}

// SetReadDeadline sets the read deadline; moving it while a read blocks
// takes effect at once, and the zero time clears it.
func (c *UDPConn) SetReadDeadline(t time.Time) error {
	if c.ep.State() == udpsock.StateClosed {
		return c.setErr(net.ErrClosed)
	}
	c.rd.set(t)
	return nil
}

// SetWriteDeadline sets the write deadline. It is checked when a write
// starts; a write already blocked on a full link queue finishes when the
// link drains.
func (c *UDPConn) SetWriteDeadline(t time.Time) error {
	if c.ep.State() == udpsock.StateClosed {
		return c.setErr(net.ErrClosed)
	}
	c.wd.set(t)
	return nil
}

// SetReadBuffer sets the receive buffer (SO_RCVBUF: the effective size is
// twice the value, as on Linux, up to 64 MiB).
func (c *UDPConn) SetReadBuffer(bytes int) error {
	if c.ep.State() == udpsock.StateClosed {
		return c.setErr(net.ErrClosed)
	}
	if bytes < 0 {
		bytes = math.MaxInt32 // the kernel reads the value as unsigned
	}
	c.ep.SetReceiveBufferSize(bytes)
	return nil
}

// SetWriteBuffer sets SO_SNDBUF.
func (c *UDPConn) SetWriteBuffer(bytes int) error {
	if c.ep.State() == udpsock.StateClosed {
		return c.setErr(net.ErrClosed)
	}
	if bytes < 0 {
		bytes = math.MaxInt32
	}
	c.ep.SetSendBufferSize(bytes)
	return nil
}
