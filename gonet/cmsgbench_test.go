package gonet

import (
	"net"
	"net/netip"
	"testing"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/tapnet/tapnet/internal/udpsock"
)

// BenchmarkControlMessages measures encoding a received datagram's control
// messages (every flag) and parsing a send's, for each family; an op is
// one datagram's worth.
func BenchmarkControlMessages(b *testing.B) {
	srv, _, _ := benchPair(b)
	p := NewPacketConn(srv)
	s := p.stack()
	oob := make([]byte, 256)
	b.Run("put4", func(b *testing.B) {
		info := &udpsock.ReadInfo{Src: netip.MustParseAddrPort("192.0.2.1:53"), Dst: netip.MustParseAddr("192.0.2.2"), NIC: 1, TTL: 64}
		cf := uint(ipv4.FlagTTL | ipv4.FlagDst | ipv4.FlagInterface)
		b.ReportAllocs()
		for b.Loop() {
			if n, trunc := putControlMessages4(s, oob, cf, info); n == 0 || trunc {
				b.Fatal(n, trunc)
			}
		}
	})
	b.Run("put6", func(b *testing.B) {
		info := &udpsock.ReadInfo{Src: netip.MustParseAddrPort("[2001:db8::2]:53"), Dst: netip.MustParseAddr("2001:db8::1"), NIC: 1, TTL: 64, TOS: 3}
		cf := uint(ipv6.FlagDst | ipv6.FlagInterface | ipv6.FlagHopLimit | ipv6.FlagTrafficClass)
		b.ReportAllocs()
		for b.Loop() {
			if n, trunc := putControlMessages6(s, oob, cf, info); n == 0 || trunc {
				b.Fatal(n, trunc)
			}
		}
	})
	b.Run("parse4", func(b *testing.B) {
		m := (&ipv4.ControlMessage{Src: net.IPv4(192, 0, 2, 2), IfIndex: 1}).Marshal()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.parseControl(m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parse6", func(b *testing.B) {
		m := (&ipv6.ControlMessage{HopLimit: 9, TrafficClass: 3, IfIndex: 1}).Marshal()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := parseControl6(m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
