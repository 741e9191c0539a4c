package stack_test

import (
	"fmt"
	"net/netip"

	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

// A stack with one NIC: an address (which adds the connected route and is
// announced with a gratuitous ARP), a default gateway, and its counters.
func ExampleStack() {
	link, peer := tap.Pipe(tap.PipeOptions{})
	defer peer.Close()
	s := stack.New(stack.Options{})
	defer s.Close()
	nic, err := s.AddNIC(link, stack.NICOptions{
		Name:      "tap0",
		Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")},
	})
	if err != nil {
		panic(err)
	}
	if err := s.SetDefaultGateway(nic.ID(), netip.MustParseAddr("192.0.2.1")); err != nil {
		panic(err)
	}
	r, err := s.FindRoute(0, netip.Addr{}, netip.MustParseAddr("198.51.100.7"))
	if err != nil {
		panic(err)
	}
	fmt.Println("via", r.NextHop, "from", r.LocalAddr, "on", r.NIC.Name())
	ifis, err := s.Interfaces()
	if err != nil {
		panic(err)
	}
	for _, ifi := range ifis {
		fmt.Println(ifi.Index, ifi.Name, ifi.MTU)
	}
	fmt.Println("IP packets received:", s.Stats().IP.Received.Load())
	// Output:
	// via 192.0.2.1 from 192.0.2.2 on tap0
	// 1 lo 65536
	// 2 tap0 1500
	// IP packets received: 0
}
