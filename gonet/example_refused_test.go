//go:build !windows

package gonet_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/tapnet/tapnet/gonet"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

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
	// On Linux, err reads "read udp 192.0.2.1:40000->192.0.2.2:9: read:
	// connection refused"; the message is the system's, as net's is.
	// (On Windows, where this example is not built, the error is
	// Winsock's WSAECONNREFUSED from wsarecv, as net gives it.)
	var op *net.OpError
	if errors.As(err, &op) {
		fmt.Println(op.Op, op.Net, op.Source, op.Addr)
	}
	fmt.Println(errors.Is(err, syscall.ECONNREFUSED))
	// Output:
	// read udp 192.0.2.1:40000 192.0.2.2:9
	// true
}
