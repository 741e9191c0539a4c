package gonet

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/tapnet/tapnet/tap"
)

// The expectations below were recorded with net on Linux (loopback in a
// namespace): what each network and address gives for the socket's
// family, its addresses, its peers and its errors.

// TestDualStackReceivesIPv4Mapped: "udp" on the wildcard is a dual-stack
// socket; an IPv4 peer shows as IPv4-mapped in every read, and replies to
// either spelling of it reach the peer.
func TestDualStackReceivesIPv4Mapped(t *testing.T) {
	a, b := pair(t, tap.PipeOptions{})
	for _, laddr := range []*net.UDPAddr{nil, {}, {IP: net.IPv4zero}, {IP: net.IPv6unspecified}} {
		srv, err := ListenUDP(a, "udp", laddr)
		if err != nil {
			t.Fatal(err)
		}
		la := srv.LocalAddr().(*net.UDPAddr)
		if len(la.IP) != net.IPv6len || !la.IP.Equal(net.IPv6unspecified) {
			t.Errorf("laddr %v: LocalAddr %v (%d bytes), want [::]:port in 16 bytes", laddr, la, len(la.IP))
		}
		cl, err := DialUDP(b, "udp", nil, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 2), Port: la.Port})
		if err != nil {
			t.Fatal(err)
		}
		if l, r := cl.LocalAddr().(*net.UDPAddr), cl.RemoteAddr().(*net.UDPAddr); len(l.IP) != 4 || len(r.IP) != 4 {
			t.Errorf("dial to IPv4 is AF_INET: local %v, remote %v should be 4-byte", l, r)
		}
		srv.SetReadDeadline(time.Now().Add(5 * time.Second))
		cl.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 16)
		want := netip.AddrPortFrom(netip.MustParseAddr("::ffff:192.0.2.1"), uint16(cl.LocalAddr().(*net.UDPAddr).Port))
		cl.Write([]byte("ap"))
		_, from, err := srv.ReadFromUDPAddrPort(buf)
		if err != nil || from != want || !from.Addr().Is4In6() {
			t.Fatalf("ReadFromUDPAddrPort: %v from %v, want %v", err, from, want)
		}
		cl.Write([]byte("udp"))
		_, ua, err := srv.ReadFromUDP(buf)
		if err != nil || len(ua.IP) != net.IPv6len || ua.AddrPort() != want {
			t.Fatalf("ReadFromUDP: %v from %v (%d bytes), want %v in 16 bytes", err, ua, len(ua.IP), want)
		}
		for _, to := range []netip.AddrPort{want, netip.AddrPortFrom(want.Addr().Unmap(), want.Port())} {
			if _, err := srv.WriteToUDPAddrPort([]byte("back"), to); err != nil {
				t.Fatalf("reply to %v: %v", to, err)
			}
			if n, err := cl.Read(buf); err != nil || string(buf[:n]) != "back" {
				t.Fatalf("reply to %v: read %q, %v", to, buf[:n], err)
			}
		}
		if _, err := srv.WriteToUDPAddrPort(make([]byte, 65508), want); !errors.Is(err, syscall.EMSGSIZE) {
			t.Errorf("65508 bytes to IPv4 from a dual-stack socket: %v, want EMSGSIZE", err)
		}
		cl.Close()
		srv.Close()
	}
}

// TestUDP6IsV6Only: "udp6" on the wildcard sets IPV6_V6ONLY: no IPv4 in
// either direction, and the IPv4 wildcard of the same port is free.
func TestUDP6IsV6Only(t *testing.T) {
	a, b := pair(t, tap.PipeOptions{})
	c, err := ListenUDP(a, "udp6", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	port := c.LocalAddr().(*net.UDPAddr).Port
	if got := c.LocalAddr().String(); got != "[::]:"+strconv.Itoa(port) {
		t.Errorf("LocalAddr %s", got)
	}
	for _, to := range []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:9"), netip.MustParseAddrPort("[::ffff:192.0.2.1]:9")} {
		_, err := c.WriteToUDPAddrPort([]byte("x"), to)
		if want := "write udp6 [::]:" + strconv.Itoa(port) + "->" + to.String() + ": " + sysText("sendto", syscall.ENETUNREACH); err == nil || err.Error() != want {
			t.Errorf("send to %v: %v, want %s", to, err, want)
		}
	}
	v4, err := ListenUDP(a, "udp4", &net.UDPAddr{Port: port})
	if err != nil {
		t.Fatalf("udp4 on the port of a udp6 wildcard: %v, want it free", err)
	}
	defer v4.Close()
	cl, err := DialUDP(b, "udp4", nil, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 2), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cl.Write([]byte("v4"))
	v4.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 8)
	if _, from, err := v4.ReadFromUDPAddrPort(buf); err != nil || !from.Addr().Is4() {
		t.Fatalf("udp4 socket: %v from %v", err, from)
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, _, _, ap, err := c.ReadMsgUDPAddrPort(buf, nil); !errors.Is(err, os.ErrDeadlineExceeded) || ap != netip.MustParseAddrPort("[::]:0") {
		t.Errorf("udp6 socket read: %v from %v, want a timeout from [::]:0", err, ap)
	}
}

// TestFamilyBindConflicts is Linux's bind table across families, through
// gonet.
func TestFamilyBindConflicts(t *testing.T) {
	a, _ := pair(t, tap.PipeOptions{})
	for _, tc := range []struct {
		n1, a1, n2, a2 string
		inUse          bool
	}{
		{"udp", "", "udp4", "", true},
		{"udp", "", "udp4", "192.0.2.2", true},
		{"udp6", "", "udp4", "", false},
		{"udp6", "", "udp", "", true},
		{"udp4", "", "udp", "", true},
		{"udp4", "", "udp6", "", false},
		{"udp4", "192.0.2.2", "udp", "", true},
		{"udp4", "192.0.2.2", "udp6", "", false},
		{"udp", "", "udp", "::ffff:192.0.2.2", true},
		{"udp6", "", "udp", "::ffff:192.0.2.2", false},
	} {
		ip := func(s string) net.IP {
			if s == "" {
				return nil
			}
			return net.ParseIP(s)
		}
		c1, err := ListenUDP(a, tc.n1, &net.UDPAddr{IP: ip(tc.a1)})
		if err != nil {
			t.Fatal(err)
		}
		c2, err := ListenUDP(a, tc.n2, &net.UDPAddr{IP: ip(tc.a2), Port: c1.LocalAddr().(*net.UDPAddr).Port})
		if got := errors.Is(err, syscall.EADDRINUSE); got != tc.inUse {
			t.Errorf("%s %q then %s %q: %v, want in use %v", tc.n1, tc.a1, tc.n2, tc.a2, err, tc.inUse)
		}
		if err == nil {
			c2.Close()
		}
		c1.Close()
	}
}

// TestFamilyErrors: the errors net gives for addresses of the
// wrong family or scope.
func TestFamilyErrors(t *testing.T) {
	a, _ := pair(t, tap.PipeOptions{})
	listen := func(network string, ip net.IP, zone string) error {
		c, err := ListenUDP(a, network, &net.UDPAddr{IP: ip, Zone: zone})
		if err == nil {
			c.Close()
		}
		return err
	}
	dial := func(network string, laddr *net.UDPAddr, ip net.IP) error {
		c, err := DialUDP(a, network, laddr, &net.UDPAddr{IP: ip, Port: 9})
		if err == nil {
			c.Close()
		}
		return err
	}
	lo4 := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 2)}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{listen("udp6", net.IPv4(192, 0, 2, 2), ""), "listen udp6 192.0.2.2:0: " + sysText("bind", syscall.EINVAL)},
		{listen("udp4", net.IPv6loopback, ""), "listen udp4 [::1]:0: address ::1: non-IPv4 address"},
		{listen("udp4", net.IPv6unspecified, ""), "listen udp4 [::]:0: address ::: non-IPv4 address"},
		{listen("udp", net.ParseIP("fe80::1"), ""), "listen udp [fe80::1]:0: " + sysText("bind", syscall.EINVAL)},
		{listen("udp", net.ParseIP("2001:db8::99"), ""), "listen udp [2001:db8::99]:0: " + sysText("bind", syscall.EADDRNOTAVAIL)},
		{dial("udp6", nil, net.IPv4(192, 0, 2, 1)), "dial udp6 192.0.2.1:9: " + sysText("connect", syscall.ENETUNREACH)},
		{dial("udp4", nil, net.IPv6loopback), "dial udp4 [::1]:9: address ::1: non-IPv4 address"},
		{dial("udp", lo4, net.ParseIP("2001:db8::1")), "dial udp 192.0.2.2:0->[2001:db8::1]:9: " + sysText("connect", syscall.EAFNOSUPPORT)},
		{dial("udp", nil, net.ParseIP("fe80::1")), "dial udp [fe80::1]:9: " + sysText("connect", syscall.EINVAL)},
		{dial("udp", nil, net.ParseIP("ff02::1")), "dial udp [ff02::1]:9: " + sysText("connect", syscall.EINVAL)},
	} {
		if tc.err == nil || tc.err.Error() != tc.want {
			t.Errorf("got %v, want %s", tc.err, tc.want)
		}
	}
	if _, err := ListenPacket(a, "udp6", "192.0.2.2:0"); err == nil || err.Error() != "listen udp6: address 192.0.2.2: no suitable address found" {
		t.Errorf("ListenPacket udp6 with an IPv4 host: %v", err)
	}
	if _, err := Dial(a, "udp4", "[2001:db8::1]:9"); err == nil || err.Error() != "dial udp4: address 2001:db8::1: no suitable address found" {
		t.Errorf("Dial udp4 with an IPv6 host: %v", err)
	}
	c, err := ListenUDP(a, "udp", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, _, err := c.WriteMsgUDPAddrPort([]byte("x"), nil, netip.MustParseAddrPort("[fe80::1%99]:9")); err == nil || !errors.Is(err, syscall.ENETUNREACH) {
		t.Errorf("send through an unknown zone index: %v, want ENETUNREACH", err)
	}
	if _, err := c.WriteToUDPAddrPort(make([]byte, 65528), netip.MustParseAddrPort("[2001:db8::1]:9")); !errors.Is(err, syscall.EMSGSIZE) {
		t.Errorf("65528 bytes to IPv6: %v, want EMSGSIZE", err)
	}
}

// TestDialUnspecifiedByFamily: "nowhere" is the loopback address of the
// socket's family.
func TestDialUnspecifiedByFamily(t *testing.T) {
	a, _ := pair(t, tap.PipeOptions{})
	for _, tc := range []struct {
		network string
		ip      net.IP
		want    string
	}{
		{"udp", nil, "127.0.0.1:9"},
		{"udp", net.IPv4zero, "127.0.0.1:9"},
		{"udp6", nil, "[::1]:9"},
		{"udp", net.IPv6unspecified, "[::1]:9"},
	} {
		c, err := DialUDP(a, tc.network, nil, &net.UDPAddr{IP: tc.ip, Port: 9})
		if err != nil {
			t.Fatalf("%s %v: %v", tc.network, tc.ip, err)
		}
		if got := c.RemoteAddr().String(); got != tc.want {
			t.Errorf("%s %v: RemoteAddr %s, want %s", tc.network, tc.ip, got, tc.want)
		}
		c.Close()
	}
}

// sysText is the text net's errors carry for errno from call on this
// system (Winsock's names and messages on Windows).
func sysText(call string, errno syscall.Errno) string {
	return osCall(call) + ": " + osErrno(errno).Error()
}
