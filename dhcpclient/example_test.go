package dhcpclient_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/tapnet/tapnet/dhcpclient"
	"github.com/tapnet/tapnet/gonet"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

// A stack without an address gets one from a DHCP server. Here the server
// is a few lines on a second stack, both on an in-memory hub; on a real
// network the NIC would be a TAP device (tap.Open) and the server the
// network's own.
func Example() {
	hub := tap.NewHub()
	defer hub.Close()
	host, router := stack.New(stack.Options{}), stack.New(stack.Options{})
	defer host.Close()
	defer router.Close()
	nic, err := host.AddNIC(hub.Port(tap.HubPortOptions{}), stack.NICOptions{})
	if err != nil {
		panic(err)
	}
	if _, err := router.AddNIC(hub.Port(tap.HubPortOptions{}), stack.NICOptions{
		Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")},
	}); err != nil {
		panic(err)
	}
	srv, err := gonet.ListenUDP(router, "udp4", &net.UDPAddr{Port: dhcpclient.ServerPort})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	go serveDHCP(srv)

	c, err := dhcpclient.Start(host, nic, dhcpclient.Config{Hostname: "example"})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lease, err := c.Wait(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("address:", lease.Addr, "from", lease.Server)
	fmt.Println("router:", lease.Routers, "DNS:", lease.DNS, "for", lease.Duration)
	fmt.Println("state:", c.State(), "NIC has it:", slices.Contains(nic.Addresses(), lease.Addr))
	// Output:
	// address: 192.0.2.50/24 from 192.0.2.1
	// router: [192.0.2.1] DNS: [192.0.2.53] for 1h0m0s
	// state: BOUND NIC has it: true
}

// serveDHCP offers and acknowledges 192.0.2.50/24 to every client, with
// replies broadcast as the client has no address yet, until srv is closed.
func serveDHCP(srv *gonet.UDPConn) {
	buf := make([]byte, 1500)
	for {
		n, _, err := srv.ReadFromUDP(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		req, err := dhcpv4.FromBytes(buf[:n])
		if err != nil {
			continue
		}
		var typ dhcpv4.MessageType
		switch req.MessageType() {
		case dhcpv4.MessageTypeDiscover:
			typ = dhcpv4.MessageTypeOffer
		case dhcpv4.MessageTypeRequest:
			typ = dhcpv4.MessageTypeAck
		default: // RELEASE on Close
			continue
		}
		resp, err := dhcpv4.NewReplyFromRequest(req,
			dhcpv4.WithMessageType(typ),
			dhcpv4.WithYourIP(net.IPv4(192, 0, 2, 50)),
			dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
			dhcpv4.WithRouter(net.IPv4(192, 0, 2, 1)),
			dhcpv4.WithDNS(net.IPv4(192, 0, 2, 53)),
			dhcpv4.WithLeaseTime(3600),
			dhcpv4.WithServerIP(net.IPv4(192, 0, 2, 1)),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(192, 0, 2, 1))),
		)
		if err != nil {
			continue
		}
		srv.WriteToUDP(resp.ToBytes(), &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpclient.ClientPort})
	}
}
