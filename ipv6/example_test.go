package ipv6_test

import (
	"fmt"
	"net/netip"

	"github.com/tapnet/tapnet/ipv6"
)

// A neighbor solicitation with the sender's link-layer address, as a host
// sends it to resolve a neighbor, then validated and read as the neighbor
// receives it.
func ExampleParseNDP() {
	src := netip.MustParseAddr("2001:db8::1")
	target := netip.MustParseAddr("2001:db8::2")
	dst := ipv6.SolicitedNode(target)
	mac := [6]byte{0x02, 0, 0, 0, 0, 0x01}

	msg := make([]byte, ipv6.NeighborSolicitLen+8)
	n := ipv6.PutNeighborSolicit(msg, target)
	n += ipv6.PutLinkAddrOption(msg[n:], ipv6.OptSourceLinkAddr, mac)
	msg = msg[:n]
	ipv6.PutChecksum(msg, src, dst)

	m, err := ipv6.ParseICMP(msg, src, dst)
	if err != nil {
		panic(err)
	}
	ns, err := ipv6.ParseNDP(m, ipv6.NDPHopLimit, src, dst)
	if err != nil {
		panic(err)
	}
	fmt.Println("to", dst, "type", ns.Type(), "target", ns.Target())
	if opt, ok := ns.Options().Find(ipv6.OptSourceLinkAddr); ok {
		lladdr, _ := opt.LinkAddr()
		fmt.Printf("sender link address % x\n", lladdr)
	}

	// A solicitation that crossed a router arrives with a lower hop limit
	// and is refused.
	_, err = ipv6.ParseNDP(m, 64, src, dst)
	fmt.Println(err)
	// Output:
	// to ff02::1:ff00:2 type 135 target 2001:db8::2
	// sender link address 02 00 00 00 00 01
	// ndp: hop limit is not 255
}

// Walking the extension headers of a packet that carries a hop-by-hop
// Router Alert option before its UDP payload: the walk tells the receiver
// where the upper layer starts and what it is.
func ExampleWalkExtHeaders() {
	udp := []byte{0x13, 0x88, 0x17, 0x70, 0, 8, 0, 0} // ports 5000 -> 6000, no payload
	pkt := make([]byte, ipv6.HeaderLen+ipv6.RouterAlertHopByHopLen+len(udp))
	ipv6.Put(pkt, ipv6.Fields{
		PayloadLen: len(pkt) - ipv6.HeaderLen,
		NextHeader: ipv6.ProtocolHopByHop,
		HopLimit:   1,
		Src:        netip.MustParseAddr("2001:db8::1"),
		Dst:        netip.MustParseAddr("ff0e::1:2"),
	})
	n := ipv6.PutRouterAlertHopByHop(pkt[ipv6.HeaderLen:], ipv6.ProtocolUDP, ipv6.RouterAlertMLD)
	copy(pkt[ipv6.HeaderLen+n:], udp)

	h, err := ipv6.Parse(pkt)
	if err != nil {
		panic(err)
	}
	fmt.Println(h.Src(), "->", h.Dst(), "next header", h.NextHeader())

	ext, err := ipv6.WalkExtHeaders(pkt)
	if err != nil {
		panic(err)
	}
	fmt.Println("extension headers:", ext.Count, "router alert:", ext.RouterAlert)
	fmt.Println("upper layer", ext.Protocol, "at offset", ext.Offset)
	// Output:
	// 2001:db8::1 -> ff0e::1:2 next header 0
	// extension headers: 1 router alert: true
	// upper layer 17 at offset 48
}

// The addresses a host derives from its Ethernet address: the modified
// EUI-64 interface identifier, a link-local and a global address, and the
// solicited-node group it joins for each.
func ExampleEUI64() {
	id := ipv6.EUI64([6]byte{0x02, 0x00, 0x5e, 0x10, 0x00, 0x01})
	ll := ipv6.AddrFromPrefix(ipv6.LinkLocalPrefix, id)
	global := ipv6.AddrFromPrefix(netip.MustParsePrefix("2001:db8:1::/64"), id)
	fmt.Println(ll, ipv6.AddrScope(ll) == ipv6.ScopeLinkLocal)
	fmt.Println(global, ipv6.SolicitedNode(global))
	scope, _ := ipv6.MulticastScope(netip.MustParseAddr("ff0e::1"))
	fmt.Println(scope == ipv6.ScopeGlobal)
	// Output:
	// fe80::5eff:fe10:1 true
	// 2001:db8:1::5eff:fe10:1 ff02::1:ff10:1
	// true
}
