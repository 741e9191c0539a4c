package tap_test

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/tapnet/tapnet/gonet"
	"github.com/tapnet/tapnet/ipv4"
	"github.com/tapnet/tapnet/link"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

// An IP-layer pipe is a point-to-point link like a TUN device's: bare IP
// packets, no Ethernet header and no ARP. Two stacks joined by one talk
// UDP as over any link.
func ExamplePipe_ipLayer() {
	a, b := tap.Pipe(tap.PipeOptions{Layer: link.LayerIP})
	client, server := stack.New(stack.Options{}), stack.New(stack.Options{})
	defer client.Close()
	defer server.Close()
	client.AddNIC(a, stack.NICOptions{Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}})
	server.AddNIC(b, stack.NICOptions{Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")}})

	srv, err := gonet.ListenUDP(server, "udp4", &net.UDPAddr{Port: 7})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	go func() { // echo
		buf := make([]byte, 1500)
		for {
			n, from, err := srv.ReadFromUDP(buf)
			if err != nil {
				return
			}
			srv.WriteToUDP(buf[:n], from)
		}
	}()

	conn, err := gonet.Dial(client, "udp4", "192.0.2.2:7")
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("over IP")); err != nil {
		panic(err)
	}
	buf := make([]byte, 1500)
	n, err := conn.Read(buf)
	fmt.Printf("%q %v\n", buf[:n], err)
	// Output: "over IP" <nil>
}

// What a TUN's kernel side reads from a stack on an IP link: a datagram
// goes out at once as a bare IPv4 packet, with no ARP before it and no
// Ethernet header in front.
func ExamplePipe_ipPackets() {
	a, b := tap.Pipe(tap.PipeOptions{Layer: link.LayerIP})
	defer b.Close()
	s := stack.New(stack.Options{})
	defer s.Close()
	s.AddNIC(a, stack.NICOptions{Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}})

	conn, err := gonet.Dial(s, "udp4", "192.0.2.2:53")
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("query")); err != nil {
		panic(err)
	}

	// The stack's IPv6 side may send MLD reports first: skip them.
	in := []link.Frame{{Buf: make([]byte, 1500)}}
	for range 16 {
		if _, err := b.ReadFrames(in); err != nil {
			panic(err)
		}
		pkt := in[0].Bytes()
		if pkt[0]>>4 != 4 {
			continue
		}
		h, err := ipv4.Parse(pkt)
		if err != nil {
			panic(err)
		}
		fmt.Println(h.Src(), "->", h.Dst(), "protocol", h.Protocol(), "length", h.TotalLen())
		break
	}
	// Output: 192.0.2.1 -> 192.0.2.2 protocol 17 length 33
}

// Attaching a stack to a TUN device (root, or CAP_NET_ADMIN, on Linux).
// The kernel is the host at the other end of the point-to-point link;
// configure its side as for any interface, for example
//
//	ip addr add 192.0.2.1/24 dev tapnet0
//	ip link set tapnet0 up
//
// after which the kernel's sockets and the stack's reach each other. This
// example is compiled but not run.
func ExampleOpen_tun() {
	dev, err := tap.Open("tapnet0", tap.Options{Mode: tap.ModeTUN})
	if err != nil {
		fmt.Println("open:", err)
		return
	}
	s := stack.New(stack.Options{})
	defer s.Close() // also closes the NICs' devices
	if _, err := s.AddNIC(dev, stack.NICOptions{
		Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")},
	}); err != nil {
		dev.Close()
		fmt.Println("add NIC:", err)
		return
	}

	// From here on it is net.ListenUDP's API on the stack's side.
	conn, err := gonet.ListenUDP(s, "udp4", &net.UDPAddr{Port: 5353})
	if err != nil {
		fmt.Println("listen:", err)
		return
	}
	defer conn.Close()
	buf := make([]byte, 1500)
	n, from, err := conn.ReadFromUDP(buf)
	fmt.Println(n, from, err)
}
