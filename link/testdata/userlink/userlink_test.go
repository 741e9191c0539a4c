package userlink_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"example.com/userlink"
	"github.com/tapnet/tapnet/gonet"
	"github.com/tapnet/tapnet/stack"
)

// TestEchoOverUserLink runs a UDP echo between two stacks joined by the
// channel link, with sockets shaped like net.UDPConn.
func TestEchoOverUserLink(t *testing.T) {
	ea, eb := userlink.Pair(64)
	a, b := stack.New(stack.Options{}), stack.New(stack.Options{})
	defer a.Close()
	defer b.Close()
	if _, err := a.AddNIC(ea, stack.NICOptions{Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}); err != nil {
		t.Fatal(err)
	}
	nb, err := b.AddNIC(eb, stack.NICOptions{Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := gonet.ListenUDP(b, "udp", &net.UDPAddr{Port: 7})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 5000)
		for {
			n, from, err := srv.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			srv.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	conn, err := gonet.DialUDP(a, "udp", nil, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 5000)
	// Small datagrams and one fragmented across the link's MTU.
	for _, size := range []int{1, 100, 1472, 4000} {
		msg := make([]byte, size)
		for i := range msg {
			msg[i] = byte(i + size)
		}
		if _, err := conn.Write(msg); err != nil {
			t.Fatal(err)
		}
		n, err := conn.Read(buf)
		if err != nil || string(buf[:n]) != string(msg) {
			t.Fatalf("%d-byte echo: got %d bytes, %v", size, n, err)
		}
	}
	if got := nb.Link(); got != eb {
		t.Errorf("NIC.Link() = %v, want the user's device", got)
	}
	if nb.Err() != nil {
		t.Errorf("NIC.Err() = %v while the link runs", nb.Err())
	}
	// Closing the link from outside stops the stack that has no other.
	ea.Close()
	select {
	case <-b.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("stack still open after its only link closed")
	}
}
