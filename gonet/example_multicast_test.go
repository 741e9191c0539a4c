package gonet_test

import (
	"fmt"
	"log"
	"net"
	"net/netip"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/tapnet/tapnet/gonet"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

// Two hosts on an in-memory switch: one listens to a group the way
// net.ListenMulticastUDP would, the other sends to it through the
// x/net/ipv4-shaped PacketConn, choosing the interface and TTL.
func ExamplePacketConn() {
	hub := tap.NewHub()
	defer hub.Close()
	host := func(addr string) *stack.Stack {
		s := stack.New(stack.Options{})
		if _, err := s.AddNIC(hub.Port(tap.HubPortOptions{}), stack.NICOptions{
			Addresses: []netip.Prefix{netip.MustParsePrefix(addr)},
		}); err != nil {
			log.Fatal(err)
		}
		return s
	}
	listener, sender := host("192.0.2.2/24"), host("192.0.2.1/24")
	defer listener.Close()
	defer sender.Close()

	group := &net.UDPAddr{IP: net.IPv4(239, 1, 2, 3), Port: 5000}
	ifi, err := listener.InterfaceByName("tap0")
	if err != nil {
		log.Fatal(err)
	}
	rc, err := gonet.ListenMulticastUDP(listener, "udp4", ifi, group)
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Close()
	rx := gonet.NewPacketConn(rc)
	rx.SetControlMessage(ipv4.FlagTTL|ipv4.FlagDst|ipv4.FlagInterface, true)

	sc, err := gonet.ListenUDP(sender, "udp4", &net.UDPAddr{Port: 4000})
	if err != nil {
		log.Fatal(err)
	}
	tx := gonet.NewPacketConn(sc)
	defer tx.Close()
	out, _ := sender.InterfaceByName("tap0")
	tx.SetMulticastInterface(out)
	tx.SetMulticastTTL(4)
	if _, err := tx.WriteTo([]byte("hello, group"), nil, group); err != nil {
		log.Fatal(err)
	}

	rx.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 100)
	n, cm, src, err := rx.ReadFrom(b)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q from %v to %v on interface %d, TTL %d\n", b[:n], src, cm.Dst, cm.IfIndex, cm.TTL)
	// Output: "hello, group" from 192.0.2.1:4000 to 239.1.2.3 on interface 2, TTL 4
}
