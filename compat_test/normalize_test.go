package compat

import (
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
)

// TestNormalize checks address and error rendering with distinct host
// addresses, as tapnet subjects have; the kernel subject cannot show this
// because both its hosts are 127.0.0.1. No packets are sent.
func TestNormalize(t *testing.T) {
	s := Subject{AddrA: netip.MustParseAddr("192.0.2.1"), AddrB: netip.MustParseAddr("192.0.2.2")}
	e := newEnv(t, s)
	srv := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1).To4(), Port: 40000}
	e.register("A:srv", srv)
	b0 := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 2).To4(), Port: 0}

	for _, c := range []struct {
		in   any
		want string
	}{
		{nil, "nil"},
		{(*net.UDPAddr)(nil), "(*net.UDPAddr)(nil)"},
		{srv, "A:srv"},
		{&net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 40000}, "A:srv/iplen=16"},
		{&net.UDPAddr{IP: net.IPv4(192, 0, 2, 2).To4(), Port: 50000}, "B:eph"},
		{&net.UDPAddr{IP: net.IPv4(192, 0, 2, 2).To4(), Port: 53}, "B:fixed"},
		{&net.UDPAddr{Port: 50000}, ":eph/iplen=0"},
		{netip.MustParseAddrPort("[::ffff:192.0.2.1]:40000"), "A:srv/4in6"},
		{netip.AddrPort{}, "invalid"},
		{&net.IPAddr{IP: net.IPv4(192, 0, 2, 2)}, "*net.IPAddr(ip B)"},
	} {
		if got := e.addr(c.in); got != c.want {
			t.Errorf("addr(%#v) = %q, want %q", c.in, got, c.want)
		}
	}

	err := &net.OpError{Op: "write", Net: "udp", Source: srv, Addr: b0,
		Err: os.NewSyscallError("sendto", syscall.EINVAL)}
	want := `OpError{write udp src=A:srv addr=B:0 err=SyscallError{sendto EINVAL}} timeout=false msg="write udp A:srv->B:0: sendto: invalid argument"` // Linux's wording on every system
	if got := e.err(err); got != want {
		t.Errorf("err:\n got %s\nwant %s", got, want)
	}
	if got, want := e.msg("listen udp4 :50000: bind"), "listen udp4 :eph: bind"; got != want {
		t.Errorf("msg = %q, want %q", got, want)
	}
	// A scenario can claim an IP for B, which the kernel subject needs.
	e.hostIs("B", s.AddrA)
	if got := e.addr(&net.UDPAddr{IP: net.IPv4(192, 0, 2, 1).To4(), Port: 0}); got != "B:0" {
		t.Errorf("after hostIs: %q", got)
	}
}
