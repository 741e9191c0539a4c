package gonet

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/tapnet/tapnet/link"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

// These tests run udp6 and dual-stack udp sockets over the wire: two
// stacks on an in-memory Ethernet pipe, each with an IPv4 and an IPv6
// address and its link-local one.

var (
	v6A = netip.MustParseAddr("2001:db8::2")
	v6B = netip.MustParseAddr("2001:db8::1")
)

// pair6 is pair with IPv6: a at 192.0.2.2/24 and 2001:db8::2/64, b at
// 192.0.2.1/24 and 2001:db8::1/64, DAD skipped so every address is usable
// at once. It returns the NICs too.
func pair6(t testing.TB, opts tap.PipeOptions) (a, b *stack.Stack, na, nb *stack.NIC) {
	t.Helper()
	la, lb := tap.Pipe(opts)
	a, b = stack.New(stack.Options{}), stack.New(stack.Options{})
	t.Cleanup(func() { a.Close(); b.Close() })
	add := func(s *stack.Stack, l *tap.PipeEnd, v4, v6 string) *stack.NIC {
		n, err := s.AddNIC(l, stack.NICOptions{
			Addresses: []netip.Prefix{netip.MustParsePrefix(v4), netip.MustParsePrefix(v6)},
			IPv6:      stack.IPv6Options{DADTransmits: -1},
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	na = add(a, la, "192.0.2.2/24", "2001:db8::2/64")
	nb = add(b, lb, "192.0.2.1/24", "2001:db8::1/64")
	return a, b, na, nb
}

// linkLocal waits (boundedly) for n's link-local address.
func linkLocal(t testing.TB, n *stack.NIC) netip.Addr {
	t.Helper()
	for range 500 {
		if a, ok := n.LinkLocalAddress(); ok {
			return a
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s has no link-local address", n.Name())
	return netip.Addr{}
}

// echoServer answers every datagram c receives until c closes.
func echoServer(c *UDPConn) {
	go func() {
		buf := make([]byte, 1<<16)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			c.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
}

// roundTrip sends msg on cl and checks that the same bytes come back.
func roundTrip(t *testing.T, cl *UDPConn, msg []byte) {
	t.Helper()
	if _, err := cl.Write(msg); err != nil {
		t.Fatalf("write %d bytes: %v", len(msg), err)
	}
	cl.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, len(msg)+1)
	n, err := cl.Read(got)
	if err != nil || !bytes.Equal(got[:n], msg) {
		t.Fatalf("echo of %d bytes: got %d bytes, %v", len(msg), n, err)
	}
}

// TestUDP6EchoOverPipe: a udp6 echo from 1 byte to the 65527-byte IPv6
// maximum, fragmented both ways, with the addresses net would report.
func TestUDP6EchoOverPipe(t *testing.T) {
	a, b, _, _ := pair6(t, tap.PipeOptions{})
	srv, err := ListenUDP(a, "udp6", &net.UDPAddr{Port: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	echoServer(srv)
	cl, err := DialUDP(b, "udp6", nil, &net.UDPAddr{IP: v6A.AsSlice(), Port: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if la := cl.LocalAddr().(*net.UDPAddr); la.AddrPort().Addr() != v6B || len(la.IP) != net.IPv6len {
		t.Errorf("LocalAddr %v, want %v", la, v6B)
	}
	if ra := cl.RemoteAddr().String(); ra != "[2001:db8::2]:7" {
		t.Errorf("RemoteAddr %s", ra)
	}
	for _, size := range []int{0, 1, 1232, 1452, 1453, 9000, 65507, 65508, 65527} {
		msg := make([]byte, size)
		for i := range msg {
			msg[i] = byte(i * 7)
		}
		roundTrip(t, cl, msg)
	}
	if _, err := cl.Write(make([]byte, 65528)); !errors.Is(err, syscall.EMSGSIZE) {
		t.Errorf("65528 bytes: %v, want EMSGSIZE", err)
	}
}

// TestDualStackServerOverPipe: one "udp" wildcard socket answers an IPv4
// and an IPv6 client, seeing the first as IPv4-mapped.
func TestDualStackServerOverPipe(t *testing.T) {
	a, b, _, _ := pair6(t, tap.PipeOptions{})
	srv, err := ListenUDP(a, "udp", &net.UDPAddr{Port: 53})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if got := srv.LocalAddr().String(); got != "[::]:53" {
		t.Errorf("LocalAddr %s, want [::]:53", got)
	}
	for _, tc := range []struct {
		network, dst string
		wantFrom     string
	}{
		{"udp4", "192.0.2.2", "::ffff:192.0.2.1"},
		{"udp6", "2001:db8::2", "2001:db8::1"},
		{"udp", "::ffff:192.0.2.2", "::ffff:192.0.2.1"},
	} {
		cl, err := DialUDP(b, tc.network, nil, &net.UDPAddr{IP: net.ParseIP(tc.dst), Port: 53})
		if err != nil {
			t.Fatal(err)
		}
		cl.Write([]byte(tc.network))
		srv.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 16)
		n, from, err := srv.ReadFromUDPAddrPort(buf)
		if err != nil || string(buf[:n]) != tc.network || from.Addr().String() != tc.wantFrom {
			t.Fatalf("%s client: %q from %v, %v; want from %s", tc.network, buf[:n], from, err, tc.wantFrom)
		}
		if _, err := srv.WriteToUDPAddrPort([]byte("re:"+tc.network), from); err != nil {
			t.Fatal(err)
		}
		cl.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := cl.Read(buf); err != nil || string(buf[:n]) != "re:"+tc.network {
			t.Fatalf("%s client read %q, %v", tc.network, buf[:n], err)
		}
		cl.Close()
	}
}

// TestUDP6ConnRefused: ICMPv6 port unreachable surfaces on a connected
// udp6 socket as ECONNREFUSED, once.
func TestUDP6ConnRefused(t *testing.T) {
	_, b, _, _ := pair6(t, tap.PipeOptions{})
	cl, err := DialUDP(b, "udp6", nil, &net.UDPAddr{IP: v6A.AsSlice(), Port: 9})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cl.Write([]byte("x"))
	cl.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = cl.Read(make([]byte, 10))
	var se *os.SyscallError
	if !errors.As(err, &se) || se.Syscall != wantRefusedCall || !errors.Is(err, wantRefusedErrno) {
		t.Fatalf("got %v, want %s: %v", err, wantRefusedCall, wantRefusedErrno)
	}
	cl.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := cl.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("second read: %v, want timeout (error reported once)", err)
	}
}

// TestUDP6LinkLocalZones: link-local peers need a zone; the zone is the
// NIC's name or index, and reads report the peer with the NIC's name, as
// net reports an interface's.
func TestUDP6LinkLocalZones(t *testing.T) {
	a, b, na, nb := pair6(t, tap.PipeOptions{})
	llA, llB := linkLocal(t, na), linkLocal(t, nb)
	srv, err := ListenUDP(a, "udp6", &net.UDPAddr{IP: llA.AsSlice(), Zone: na.Name(), Port: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if got, want := srv.LocalAddr().String(), netip.AddrPortFrom(llA.WithZone(na.Name()), 7).String(); got != want {
		t.Errorf("LocalAddr %s, want %s", got, want)
	}
	for _, zone := range []string{nb.Name(), "2"} {
		cl, err := DialUDP(b, "udp6", nil, &net.UDPAddr{IP: llA.AsSlice(), Zone: zone, Port: 7})
		if err != nil {
			t.Fatalf("zone %q: %v", zone, err)
		}
		if got := cl.LocalAddr().(*net.UDPAddr); got.AddrPort().Addr() != llB.WithZone(nb.Name()) {
			t.Errorf("zone %q: LocalAddr %v, want %v%%%s", zone, got, llB, nb.Name())
		}
		cl.Write([]byte("hi"))
		srv.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 8)
		_, from, err := srv.ReadFromUDPAddrPort(buf)
		if err != nil || from.Addr() != llB.WithZone(na.Name()) {
			t.Fatalf("zone %q: from %v, %v; want %v%%%s", zone, from, err, llB, na.Name())
		}
		if _, err := srv.WriteToUDPAddrPort([]byte("ok"), from); err != nil {
			t.Fatal(err)
		}
		cl.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := cl.Read(buf); err != nil || string(buf[:n]) != "ok" {
			t.Fatalf("zone %q: reply %q, %v", zone, buf[:n], err)
		}
		cl.Close()
	}
	if _, err := DialUDP(b, "udp6", nil, &net.UDPAddr{IP: llA.AsSlice(), Port: 7}); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("link-local peer without a zone: %v, want EINVAL", err)
	}
}

// TestUDP6MappedDial: "udp" and "udp6" dials to an IPv4-mapped peer: the
// first is AF_INET6 without V6ONLY and talks IPv4, showing mapped
// addresses; the second is ENETUNREACH, as net on Linux.
func TestUDP6MappedDial(t *testing.T) {
	a, b, _, _ := pair6(t, tap.PipeOptions{})
	srv, err := ListenUDP(a, "udp4", &net.UDPAddr{Port: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	echoServer(srv)
	cl, err := DialUDP(b, "udp", nil, &net.UDPAddr{IP: net.ParseIP("::ffff:192.0.2.2"), Port: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// net parses ::ffff:192.0.2.2 to the 16-byte form of an IPv4 address,
	// which its family choice treats as IPv4: the socket is AF_INET.
	if got := cl.RemoteAddr().String(); got != "192.0.2.2:7" {
		t.Errorf("RemoteAddr %s", got)
	}
	roundTrip(t, cl, []byte("mapped"))
	if _, err := DialUDP(b, "udp6", nil, &net.UDPAddr{IP: net.ParseIP("::ffff:192.0.2.2"), Port: 7}); !errors.Is(err, syscall.ENETUNREACH) {
		t.Errorf("udp6 to a mapped peer: %v, want ENETUNREACH", err)
	}
	six, err := ListenUDP(b, "udp", &net.UDPAddr{IP: net.IPv6unspecified})
	if err != nil {
		t.Fatal(err)
	}
	defer six.Close()
	if _, err := six.WriteToUDPAddrPort([]byte("m"), netip.MustParseAddrPort("[::ffff:192.0.2.2]:7")); err != nil {
		t.Fatal(err)
	}
	six.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 8)
	if _, from, err := six.ReadFromUDPAddrPort(buf); err != nil || from != netip.MustParseAddrPort("[::ffff:192.0.2.2]:7") {
		t.Fatalf("dual-stack reply from %v, %v", from, err)
	}
}

// TestUDP6TentativeAddress: an address still in duplicate address
// detection cannot be bound (EADDRNOTAVAIL, as on Linux); once
// NIC.WaitAddress returns it can.
func TestUDP6TentativeAddress(t *testing.T) {
	la, lb := tap.Pipe(tap.PipeOptions{})
	defer lb.Close()
	s := stack.New(stack.Options{})
	defer s.Close()
	n, err := s.AddNIC(la, stack.NICOptions{IPv6: stack.IPv6Options{RetransTimer: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	go func() { // the far end: a silent wire
		frames := []link.Frame{{Buf: make([]byte, 2048)}}
		for {
			if _, err := lb.ReadFrames(frames); err != nil {
				return
			}
		}
	}()
	p := netip.MustParsePrefix("2001:db8::7/64")
	if err := n.AddAddress(p); err != nil {
		t.Fatal(err)
	}
	_, err = ListenUDP(s, "udp6", &net.UDPAddr{IP: p.Addr().AsSlice()})
	if err == nil || err.Error() != "listen udp6 [2001:db8::7]:0: "+sysText("bind", syscall.EADDRNOTAVAIL) {
		t.Fatalf("bind a tentative address: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.WaitAddress(ctx, p.Addr()); err != nil {
		t.Fatal(err)
	}
	c, err := ListenUDP(s, "udp6", &net.UDPAddr{IP: p.Addr().AsSlice()})
	if err != nil {
		t.Fatalf("bind after DAD: %v", err)
	}
	c.Close()
}
