package main

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/tapnet/tapnet/examples/internal/netsetup"
	"github.com/tapnet/tapnet/gonet"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

// The names serveNames answers: one has only an AAAA record, the other
// both families.
var testNames = map[string][]netip.Addr{
	"v6only.tapnet.test.": {netip.MustParseAddr("2001:db8::80")},
	"both.tapnet.test.":   {netip.MustParseAddr("192.0.2.80"), netip.MustParseAddr("2001:db8::80")},
}

// serveNames answers A and AAAA queries for testNames on s's port 53
// (NODATA for a family a name lacks, NXDOMAIN for other names).
func serveNames(t *testing.T, s *stack.Stack) {
	c, err := gonet.ListenUDP(s, "udp", &net.UDPAddr{Port: 53})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			var m dnsmessage.Message
			if m.Unpack(buf[:n]) != nil || len(m.Questions) != 1 {
				continue
			}
			q := m.Questions[0]
			m.Header.Response, m.Header.Authoritative = true, true
			m.Additionals = nil
			ips, ok := testNames[q.Name.String()]
			if !ok {
				m.Header.RCode = dnsmessage.RCodeNameError
			}
			for _, ip := range ips {
				h := dnsmessage.ResourceHeader{Name: q.Name, Type: q.Type, Class: dnsmessage.ClassINET, TTL: 60}
				switch {
				case q.Type == dnsmessage.TypeA && ip.Is4():
					m.Answers = append(m.Answers, dnsmessage.Resource{Header: h, Body: &dnsmessage.AResource{A: ip.As4()}})
				case q.Type == dnsmessage.TypeAAAA && ip.Is6():
					m.Answers = append(m.Answers, dnsmessage.Resource{Header: h, Body: &dnsmessage.AAAAResource{AAAA: ip.As16()}})
				}
			}
			if out, err := m.Pack(); err == nil {
				c.WriteToUDPAddrPort(out, from)
			}
		}
	}()
}

// namesOverPipe starts a name server on a dual-stack tapnet stack and
// returns the resolver a quic client with clientAddrs would use, over
// an in-memory pipe to it.
func namesOverPipe(t *testing.T, clientAddrs string) resolver {
	t.Helper()
	ls, lc := tap.Pipe(tap.PipeOptions{})
	srv, err := (&netsetup.Flags{Addr: "192.0.2.2/24,2001:db8::2/64"}).Attach(ls)
	if err != nil {
		lc.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	serveNames(t, srv.Stack)
	cl, err := (&netsetup.Flags{Addr: clientAddrs}).Attach(lc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return resolver{Resolver: cl.Resolver(netip.MustParseAddrPort("192.0.2.2:53")), reachable: sameFamilyAs(cl.Addrs)}
}

// -connect NAME:PORT resolves both families and takes an address the
// stack can reach: a name with only an AAAA record works from a stack
// with IPv6, and a dual-stack name gives an IPv4-only stack its A record.
func TestResolveConnectBothFamilies(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	dual := namesOverPipe(t, "192.0.2.3/24,2001:db8::3/64")
	got, err := resolveConnect(ctx, dual, "v6only.tapnet.test.:4433")
	if want := netip.MustParseAddrPort("[2001:db8::80]:4433"); err != nil || got != want {
		t.Errorf("dual-stack client, AAAA-only name: %v, %v; want %v", got, err, want)
	}
	got, err = resolveConnect(ctx, dual, "both.tapnet.test.:4433")
	if err != nil || got.Port() != 4433 || !containsAddr(testNames["both.tapnet.test."], got.Addr()) {
		t.Errorf("dual-stack client, dual-stack name: %v, %v", got, err)
	}

	v4 := namesOverPipe(t, "192.0.2.3/24")
	got, err = resolveConnect(ctx, v4, "both.tapnet.test.:4433")
	if want := netip.MustParseAddrPort("192.0.2.80:4433"); err != nil || got != want {
		t.Errorf("IPv4-only client, dual-stack name: %v, %v; want %v", got, err, want)
	}
	_, err = resolveConnect(ctx, v4, "v6only.tapnet.test.:4433")
	if err == nil || !strings.Contains(err.Error(), "no address reachable") {
		t.Errorf("IPv4-only client, AAAA-only name: %v, want a no-reachable-address error", err)
	}

	// Literal addresses are taken as they are, with no lookup.
	got, err = resolveConnect(ctx, v4, "[::ffff:192.0.2.9]:1")
	if want := netip.MustParseAddrPort("192.0.2.9:1"); err != nil || got != want {
		t.Errorf("literal: %v, %v; want %v", got, err, want)
	}
}

func containsAddr(list []netip.Addr, a netip.Addr) bool {
	for _, b := range list {
		if a == b {
			return true
		}
	}
	return false
}

func TestPickReachable(t *testing.T) {
	v4, v6 := netip.MustParseAddr("192.0.2.80"), netip.MustParseAddr("2001:db8::80")
	mapped := netip.AddrFrom16(v4.As16())
	only4 := sameFamilyAs([]netip.Prefix{netip.MustParsePrefix("192.0.2.3/24")})
	for _, tc := range []struct {
		ips       []netip.Addr
		reachable func(netip.Addr) bool
		want      netip.Addr // invalid: an error
	}{
		{[]netip.Addr{v6, v4}, nil, v6},
		{[]netip.Addr{v6, v4}, only4, v4},
		{[]netip.Addr{v6, mapped}, only4, v4},
		{[]netip.Addr{v6}, only4, netip.Addr{}},
		{nil, nil, netip.Addr{}},
	} {
		got, err := pickReachable(tc.ips, tc.reachable)
		if got != tc.want || (err != nil) != !tc.want.IsValid() {
			t.Errorf("pickReachable(%v): %v, %v; want %v", tc.ips, got, err, tc.want)
		}
	}
}
