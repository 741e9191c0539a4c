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

// Errors look like the ones net returns.
func ExampleDialUDP_refused() {
	la, lb := tap.Pipe(tap.PipeOptions{})
	a, b := stack.New(stack.Options{}), stack.New(stack.Options{})
	defer a.Close()
	defer b.Close()
	a.AddNIC(la, stack.NICOptions{Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")}})
	b.AddNIC(lb, stack.NICOptions{Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}})

	conn, _ := gonet.DialUDP(b, "udp", &net.UDPAddr{Port: 40000}, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 9})
	defer conn.Close()
	conn.Write([]byte("anyone there?"))
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := conn.Read(make([]byte, 64))
	fmt.Println(err)
	// Output: read udp 192.0.2.1:40000->192.0.2.2:9: read: connection refused
}
