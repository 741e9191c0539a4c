package gonet

import (
	"net"
	"net/netip"
	"syscall"

	"github.com/tapnet/tapnet/stack"
)

// checkNetwork accepts the UDP networks.
func checkNetwork(network string) error {
	switch network {
	case "udp", "udp4", "udp6":
		return nil
	}
	return net.UnknownNetworkError(network)
}

// opAddr is a possibly nil *net.UDPAddr as a net.Addr, nil when it is nil
// (an OpError must not hold a typed nil).
func opAddr(a *net.UDPAddr) net.Addr {
	if a == nil {
		return nil
	}
	return a
}

// sysErr names errno errors the way the kernel's bind(2) and connect(2)
// do; other errors are mapped like the conn's.
func sysErr(name string, err error) error {
	if errno, ok := err.(syscall.Errno); ok {
		return syscallErr(name, errno)
	}
	return mapErr(err, name)
}

// ListenUDP is net.ListenUDP on stack s: network is "udp", "udp4" or
// "udp6"; a nil laddr or one without IP listens on every address of s;
// port 0 picks an ephemeral port. As with net on Linux, "udp" on the
// wildcard is a dual-stack socket: it receives IPv4 too, from IPv4-mapped
// addresses, and its LocalAddr is [::]:port.
func ListenUDP(s *stack.Stack, network string, laddr *net.UDPAddr) (*UDPConn, error) {
	if err := checkNetwork(network); err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Addr: opAddr(laddr), Err: err}
	}
	f := listenFamily(network, laddr)
	ap := unspecifiedFor(f.v6)
	if laddr != nil {
		var err error
		if ap, err = sockaddr(laddr, f.v6); err != nil {
			return nil, &net.OpError{Op: "listen", Net: network, Addr: laddr, Err: sysErr("bind", err)}
		}
	}
	c := newConn(s, network, f)
	if err := c.ep.Bind(ap); err != nil {
		c.ep.Close()
		return nil, &net.OpError{Op: "listen", Net: network, Addr: listenAddr(laddr), Err: sysErr("bind", err)}
	}
	return c, nil
}

// listenAddr is the address a failed listen reports: like net, an empty
// *net.UDPAddr for a nil one (made only then, so that listening on nil
// allocates nothing for it).
func listenAddr(laddr *net.UDPAddr) *net.UDPAddr {
	if laddr == nil {
		return &net.UDPAddr{}
	}
	return laddr
}

// DialUDP is net.DialUDP on stack s: it binds laddr (or an ephemeral port)
// and connects to raddr, so Read and Write use the peer and datagrams from
// anyone else are dropped.
func DialUDP(s *stack.Stack, network string, laddr, raddr *net.UDPAddr) (*UDPConn, error) {
	if err := checkNetwork(network); err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Source: opAddr(laddr), Addr: opAddr(raddr), Err: err}
	}
	if raddr == nil {
		return nil, &net.OpError{Op: "dial", Net: network, Source: opAddr(laddr), Addr: nil, Err: errMissingAddress}
	}
	fail := func(err error) (*UDPConn, error) {
		return nil, &net.OpError{Op: "dial", Net: network, Source: opAddr(laddr), Addr: raddr, Err: err}
	}
	var err error
	f := dialFamily(network, laddr, raddr)
	// The local address is checked first: net binds before it connects.
	var lap netip.AddrPort
	if laddr != nil {
		if lap, err = sockaddr(laddr, f.v6); err != nil {
			return fail(sysErr("bind", err))
		}
	}
	rap, err := sockaddr(raddr, f.v6)
	if err != nil {
		return fail(sysErr("connect", err))
	}
	if isUnspecified(rap.Addr()) {
		// Like the kernel, "nowhere" means ourselves.
		rap = netip.AddrPortFrom(loopbackFor(rap.Addr()), rap.Port())
	}
	c := newConn(s, network, f)
	if laddr != nil {
		if err := c.ep.Bind(lap); err != nil {
			c.ep.Close()
			return fail(sysErr("bind", err))
		}
	}
	if err := c.ep.Connect(rap); err != nil {
		c.ep.Close()
		return fail(sysErr("connect", err))
	}
	c.connected = true
	c.raddr = newUDPAddr(rap)
	return c, nil
}

// resolve parses "host:port" with a numeric host (an IPv6 one may have a
// zone), "localhost" (127.0.0.1, ::1 for "udp6") or an empty host; name
// lookups are not done over the TAP. A host of the wrong family for
// "udp4" or "udp6" is net's "no suitable address found". The port is a number
// or a service name, parsed by net.LookupPort as net itself does, so that
// a bad one gives net's very error ("invalid port", "unknown port").
func resolve(network, address string) (*net.UDPAddr, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	port, err := net.LookupPort(network, portStr)
	if err != nil {
		return nil, err
	}
	a := &net.UDPAddr{Port: port}
	switch host {
	case "":
	case "localhost":
		a.IP = net.IPv4(127, 0, 0, 1)
		if network == "udp6" {
			a.IP = net.IPv6loopback
		}
	default:
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return nil, &net.DNSError{Err: "tapnet does not resolve host names; use a numeric IP address", Name: host, IsNotFound: true}
		}
		if err := resolveFamily(network, host, ip); err != nil {
			return nil, err
		}
		a.IP, a.Zone = net.IP(ip.AsSlice()), ip.Zone()
	}
	return a, nil
}

// ListenPacket is net.ListenPacket on stack s for "udp", "udp4" and "udp6".
func ListenPacket(s *stack.Stack, network, address string) (net.PacketConn, error) {
	if err := checkNetwork(network); err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	a, err := resolve(network, address)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	c, err := ListenUDP(s, network, a)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Dial is net.Dial on stack s for "udp", "udp4" and "udp6".
func Dial(s *stack.Stack, network, address string) (net.Conn, error) {
	if err := checkNetwork(network); err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	a, err := resolve(network, address)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	c, err := DialUDP(s, network, nil, a)
	if err != nil {
		return nil, err
	}
	return c, nil
}
