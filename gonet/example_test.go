package gonet_test

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/tapnet/tapnet/gonet"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

// Two stacks joined by an in-memory Ethernet pipe: a UDP server on one, a
// client on the other. On a real network, use tap.Open instead of tap.Pipe.
func ExampleListenUDP() {
	la, lb := tap.Pipe(tap.PipeOptions{})
	server, client := stack.New(stack.Options{}), stack.New(stack.Options{})
	defer server.Close()
	defer client.Close()
	server.AddNIC(la, stack.NICOptions{Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")}})
	client.AddNIC(lb, stack.NICOptions{Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}})

	srv, err := gonet.ListenUDP(server, "udp", &net.UDPAddr{Port: 7})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := srv.ReadFromUDP(buf)
			if err != nil {
				return
			}
			srv.WriteToUDP(buf[:n], from)
		}
	}()

	conn, err := gonet.Dial(client, "udp", "192.0.2.2:7")
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	conn.Write([]byte("hello"))
	buf := make([]byte, 64)
	n, err := conn.Read(buf)
	fmt.Println(string(buf[:n]), err)
	// Output: hello <nil>
}
