// Package gvstack builds a gVisor netstack attached to a TAP device, the way
// a user of gVisor's tcpip package would: fdbased link endpoint with Ethernet
// framing, IPv4 + ARP + UDP, one NIC, one address, a subnet route and an
// optional default route.
package gvstack

import (
	"fmt"
	"net/netip"

	"github.com/tapnet/tapnet/bench/internal/tapdev"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/fdbased"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// NICID is the ID of the single NIC.
const NICID tcpip.NICID = 1

// Config describes the stack to build.
type Config struct {
	Tap     string       // TAP device name
	Prefix  netip.Prefix // local address and subnet, e.g. 192.0.2.2/24
	MAC     string       // local MAC address
	Gateway netip.Addr   // optional default gateway
	MTU     uint32       // link MTU (default 1500)
	BufSize int          // if > 0, default and max socket buffer size
}

// Stack is a running gVisor stack.
type Stack struct {
	*stack.Stack
	Addr tcpip.Address
}

// New opens the TAP and builds the stack.
func New(c Config) (*Stack, error) {
	if !c.Prefix.Addr().Is4() {
		return nil, fmt.Errorf("address %v: IPv4 only", c.Prefix)
	}
	mac, err := tapdev.ParseMAC(c.MAC)
	if err != nil {
		return nil, err
	}
	if c.MTU == 0 {
		c.MTU = 1500
	}
	fd, err := tapdev.Open(c.Tap)
	if err != nil {
		return nil, err
	}
	ep, err := fdbased.New(&fdbased.Options{
		FDs:            []int{fd},
		MTU:            c.MTU,
		EthernetHeader: true,
		Address:        tcpip.LinkAddress(mac),
	})
	if err != nil {
		return nil, fmt.Errorf("fdbased: %w", err)
	}
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{udp.NewProtocol},
	})
	if c.BufSize > 0 {
		if terr := s.SetOption(tcpip.ReceiveBufferSizeOption{Min: stack.MinBufferSize, Default: c.BufSize, Max: c.BufSize}); terr != nil {
			return nil, fmt.Errorf("receive buffer option: %v", terr)
		}
		if terr := s.SetOption(tcpip.SendBufferSizeOption{Min: stack.MinBufferSize, Default: c.BufSize, Max: c.BufSize}); terr != nil {
			return nil, fmt.Errorf("send buffer option: %v", terr)
		}
	}
	if terr := s.CreateNIC(NICID, ep); terr != nil {
		return nil, fmt.Errorf("CreateNIC: %v", terr)
	}
	addr := tcpip.AddrFrom4(c.Prefix.Addr().As4())
	if terr := s.AddProtocolAddress(NICID, tcpip.ProtocolAddress{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: addr, PrefixLen: c.Prefix.Bits()},
	}, stack.AddressProperties{}); terr != nil {
		return nil, fmt.Errorf("AddProtocolAddress: %v", terr)
	}
	routes := []tcpip.Route{{
		Destination: tcpip.AddressWithPrefix{Address: addr, PrefixLen: c.Prefix.Bits()}.Subnet(),
		NIC:         NICID,
	}}
	if c.Gateway.IsValid() {
		if !c.Gateway.Is4() {
			return nil, fmt.Errorf("gateway %v: IPv4 only", c.Gateway)
		}
		routes = append(routes, tcpip.Route{
			Destination: header.IPv4EmptySubnet,
			Gateway:     tcpip.AddrFrom4(c.Gateway.As4()),
			NIC:         NICID,
		})
	}
	s.SetRouteTable(routes)
	return &Stack{Stack: s, Addr: addr}, nil
}
