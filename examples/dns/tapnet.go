package main

import (
	"net"
	"net/netip"

	"github.com/tapnet/tapnet/examples/internal/netsetup"
	"github.com/tapnet/tapnet/gonet"
)

// tapConfig is what the example needs from a tapnet stack on a TAP or TUN
// device.
type tapConfig struct {
	Tap     string           // TAP device name, e.g. "tap0"
	Tun     string           // TUN device name, used instead of Tap when set
	Addrs   []netip.Prefix   // our addresses and subnets, e.g. 192.0.2.2/24 and 2001:db8::2/64
	Gateway netip.Addr       // default gateway; invalid (zero) means none
	MAC     net.HardwareAddr // our MAC; nil means let the stack choose
	Pcap    string           // capture file for every frame; "" means none
	Port    uint16           // UDP port to bind on each address
}

// openTapnet brings up a tapnet stack on cfg.Tun or cfg.Tap and returns a
// UDP socket bound to each of cfg.Addrs at cfg.Port, plus a function that
// tears the stack down. This is the only tapnet-specific code of the
// example: the server itself sees net.PacketConns.
func openTapnet(cfg tapConfig) ([]net.PacketConn, func() error, error) {
	n, err := netsetup.FromValues(cfg.Tap, cfg.Tun, cfg.Addrs, cfg.Gateway, cfg.MAC, cfg.Pcap).Open()
	if err != nil {
		return nil, nil, err
	}
	var pcs []net.PacketConn
	closeAll := func() error {
		for _, pc := range pcs {
			pc.Close()
		}
		return n.Close()
	}
	for _, p := range cfg.Addrs {
		pc, err := gonet.ListenUDP(n.Stack, "udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.Addr(), cfg.Port)))
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		pcs = append(pcs, pc)
	}
	return pcs, closeAll, nil
}
