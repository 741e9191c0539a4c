package gonet_test

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/tapnet/tapnet/gonet"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

// Sending and receiving several datagrams per call, as with x/net/ipv4's
// sendmmsg and recvmmsg wrappers: WriteBatch sends the batch in order, and
// each ReadBatch waits for one datagram and takes whatever else is queued.
func ExamplePacketConn_ReadBatch() {
	la, lb := tap.Pipe(tap.PipeOptions{})
	sa, sb := stack.New(stack.Options{}), stack.New(stack.Options{})
	defer sa.Close()
	defer sb.Close()
	sa.AddNIC(la, stack.NICOptions{Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}})
	sb.AddNIC(lb, stack.NICOptions{Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")}})

	rc, err := gonet.ListenUDP(sb, "udp4", &net.UDPAddr{Port: 9000})
	if err != nil {
		panic(err)
	}
	defer rc.Close()
	wc, err := gonet.ListenUDP(sa, "udp4", &net.UDPAddr{Port: 9001})
	if err != nil {
		panic(err)
	}
	defer wc.Close()
	receiver, sender := gonet.NewPacketConn(rc), gonet.NewPacketConn(wc)

	dst := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 9000}
	out := make([]ipv4.Message, 3)
	for i, text := range []string{"one", "two", "three"} {
		out[i] = ipv4.Message{Buffers: [][]byte{[]byte(text)}, Addr: dst}
	}
	n, err := sender.WriteBatch(out, 0)
	fmt.Println("sent", n, err)

	in := make([]ipv4.Message, 8)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, 1500)}
	}
	receiver.SetReadDeadline(time.Now().Add(5 * time.Second))
	for got := 0; got < len(out); {
		n, err := receiver.ReadBatch(in, 0)
		if err != nil {
			panic(err)
		}
		for _, m := range in[:n] {
			fmt.Printf("%q from %v\n", m.Buffers[0][:m.N], m.Addr)
		}
		got += n
	}
	// Output:
	// sent 3 <nil>
	// "one" from 192.0.2.1:9001
	// "two" from 192.0.2.1:9001
	// "three" from 192.0.2.1:9001
}
