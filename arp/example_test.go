package arp_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/tapnet/tapnet/arp"
	"github.com/tapnet/tapnet/ethernet"
)

// packet is what a link queues while its next hop is being resolved.
type packet struct{ payload string }

func (p *packet) Len() int { return len(p.payload) }
func (p *packet) Release() {}

// A link of one's own resolving its next hop with the cache: the first
// packet waits while an ARP request goes out, and is sent when the reply
// arrives.
func ExampleCache() {
	ourMAC := ethernet.MAC{0x02, 0, 0, 0, 0, 0x01}
	ourIP := netip.MustParseAddr("192.0.2.1")
	gateway := netip.MustParseAddr("192.0.2.254")
	gatewayMAC := ethernet.MAC{0x02, 0, 0, 0, 0, 0xfe}

	cache := arp.New(arp.Config{
		// Long enough that no request is repeated while the example runs.
		RetransInterval: time.Hour,
	}, arp.Hooks{
		SendRequest: func(target netip.Addr, dst ethernet.MAC) {
			req := make([]byte, arp.PacketLen)
			arp.Put(req, arp.OpRequest, ourMAC, ourIP, ethernet.MAC{}, target)
			fmt.Println("broadcast: who has", arp.Packet(req).TargetIP(), "tell", arp.Packet(req).SenderIP())
		},
		Resolved: func(target netip.Addr, mac ethernet.MAC, pkts []arp.Pending) {
			for _, p := range pkts {
				fmt.Printf("send %q to %v at %v\n", p.(*packet).payload, target, mac)
			}
		},
		Failed: func(target netip.Addr, pkts []arp.Pending) {
			fmt.Println(target, "unreachable")
		},
	}, nil)
	defer cache.Close()

	if _, ok := cache.Resolve(gateway, &packet{"hello"}); !ok {
		_, state, _ := cache.Lookup(gateway)
		fmt.Println("queued, entry", state)
	}

	// The gateway's reply, unicast to our MAC, as the link receives it.
	reply := make([]byte, arp.PacketLen)
	arp.Put(reply, arp.OpReply, gatewayMAC, gateway, ourMAC, ourIP)
	p, err := arp.Parse(reply)
	if err != nil {
		panic(err)
	}
	cache.Learn(p.SenderIP(), p.SenderMAC(), arp.Heard{Op: p.Op(), Unicast: true})

	mac, ok := cache.Resolve(gateway, nil)
	_, state, _ := cache.Lookup(gateway)
	fmt.Println("now", mac, ok, state, "requests sent:", cache.Stats().Requests.Load())
	// Output:
	// broadcast: who has 192.0.2.254 tell 192.0.2.1
	// queued, entry incomplete
	// send "hello" to 192.0.2.254 at 02:00:00:00:00:fe
	// now 02:00:00:00:00:fe true reachable requests sent: 1
}

// Parsing an ARP packet taken from a frame and checking what it is.
func ExampleParse() {
	b := make([]byte, arp.PacketLen)
	sender := netip.MustParseAddr("198.51.100.5")
	arp.Put(b, arp.OpRequest, ethernet.MAC{0x02, 0, 0, 0, 0, 0x05}, sender, ethernet.MAC{}, sender)

	p, err := arp.Parse(b)
	if err != nil {
		panic(err)
	}
	gratuitous := p.SenderIP() == p.TargetIP()
	fmt.Println("op", p.Op(), "from", p.SenderMAC(), p.SenderIP(), "gratuitous:", gratuitous)

	_, err = arp.Parse(b[:20])
	fmt.Println(err)
	// Output:
	// op 1 from 02:00:00:00:00:05 198.51.100.5 gratuitous: true
	// arp: packet too short
}
