package main

import (
	"net"
	"net/netip"

	"github.com/tapnet/tapnet/examples/internal/netsetup"
	"github.com/tapnet/tapnet/gonet"
)

// openTapnet brings up a tapnet stack on the device the link flags name
// (a TUN, or else a TAP) and returns a UDP socket bound to each of its
// addresses (those of -addr, or the DHCP lease's) at port, plus a function
// that tears the stack down. This is the only tapnet-specific code of the
// example: the server itself sees net.PacketConns.
func openTapnet(f *netsetup.Flags, port uint16) ([]net.PacketConn, func() error, error) {
	n, err := f.Open()
	if err != nil {
		return nil, nil, err
	}
	return listenTapnet(n, port)
}

// listenTapnet binds a UDP socket to each address of n at port. The
// returned function closes the sockets and then n.
func listenTapnet(n *netsetup.Net, port uint16) ([]net.PacketConn, func() error, error) {
	var pcs []net.PacketConn
	closeAll := func() error {
		for _, pc := range pcs {
			pc.Close()
		}
		return n.Close()
	}
	for _, p := range n.Addrs {
		pc, err := gonet.ListenUDP(n.Stack, "udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.Addr(), port)))
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		pcs = append(pcs, pc)
	}
	return pcs, closeAll, nil
}
