package main

import (
	"net"
	"net/netip"

	"github.com/tapnet/tapnet/examples/internal/netsetup"
	"github.com/tapnet/tapnet/gonet"
)

// tapConfig is what the example needs from tapnet.
type tapConfig struct {
	Tap     string           // TAP device name, e.g. "tap0" (openTapnet only)
	Tun     string           // TUN device name, used instead of Tap when set
	Addrs   []netip.Prefix   // our addresses and subnets, e.g. 192.0.2.2/24 and 2001:db8::2/64
	Gateway netip.Addr       // default gateway; invalid (zero) means none
	MAC     net.HardwareAddr // our MAC; nil means let the stack choose
	Pcap    string           // capture file for every frame; "" means none
	Port    uint16           // UDP port to bind; 0 means an ephemeral port
	DHCP    bool             // get Addrs, Gateway and DNS from DHCP instead
	DNS     netip.AddrPort   // name server without DHCP; invalid means none
	Offload bool             // use the TAP's checksum and segmentation offloads
}

func (cfg tapConfig) flags() *netsetup.Flags {
	f := netsetup.FromValues(cfg.Tap, cfg.Tun, cfg.Addrs, cfg.Gateway, cfg.MAC, cfg.Pcap)
	f.DHCP = cfg.DHCP
	f.Offload = cfg.Offload
	return f
}

// openTapnet brings up a tapnet stack on cfg.Tun or cfg.Tap and returns a
// UDP socket bound to its address (cfg.Addrs' only one, or the DHCP
// lease's; with several, the dual-stack wildcard, so that the source
// follows the peer's family) and cfg.Port, a resolver over the stack (the
// lease's DNS servers, or cfg.DNS) that knows which families the stack has
// addresses in, and a function that tears the stack down.
func openTapnet(cfg tapConfig) (net.PacketConn, resolver, func() error, error) {
	n, err := cfg.flags().Open()
	if err != nil {
		return nil, resolver{}, nil, err
	}
	bind := &net.UDPAddr{Port: int(cfg.Port)}
	if len(n.Addrs) == 1 {
		bind = net.UDPAddrFromAddrPort(netip.AddrPortFrom(n.Addr.Addr(), cfg.Port))
	}
	pc, err := gonet.ListenUDP(n.Stack, "udp", bind)
	if err != nil {
		n.Close()
		return nil, resolver{}, nil, err
	}
	var servers []netip.AddrPort
	if cfg.DNS.IsValid() {
		servers = append(servers, cfg.DNS)
	}
	r := resolver{Resolver: n.Resolver(servers...), reachable: sameFamilyAs(n.Addrs)}
	return pc, r, func() error { pc.Close(); return n.Close() }, nil
}

// sameFamilyAs reports whether an address is of the family of one of
// local: an IPv6 peer needs an IPv6 address on the NIC, an IPv4 peer an
// IPv4 one.
func sameFamilyAs(local []netip.Prefix) func(netip.Addr) bool {
	var has4, has6 bool
	for _, p := range local {
		has4 = has4 || p.Addr().Is4()
		has6 = has6 || p.Addr().Is6()
	}
	return func(a netip.Addr) bool { return a.Is4() && has4 || a.Is6() && has6 }
}

// openPipePair builds two tapnet stacks joined by an in-memory Ethernet
// pipe, needing neither root nor a TAP device. The server stack has
// cfg.Addrs' first and binds server to cfg.Port; the client stack takes another
// address in that prefix and binds client to an ephemeral port.
// cfg.Pcap, if set, captures the server's side of the pipe.
func openPipePair(cfg tapConfig) (server, client net.PacketConn, serverAddr net.Addr, cleanup func(), err error) {
	srv, cl, cleanup, err := cfg.flags().PipeConns(cfg.Port)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return srv, cl, srv.LocalAddr(), cleanup, nil
}
