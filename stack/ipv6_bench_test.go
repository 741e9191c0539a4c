package stack_test

import (
	"net/netip"
	"testing"

	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

// benchEchoPair runs 64-byte UDP round trips between two stacks on a pipe,
// from a to b's port 7 and back, through the stack API alone (no socket
// layer), so that IPv4 and IPv6 compare on the same path.
func benchEchoPair(b *testing.B, pa, pb netip.Prefix) {
	la, lb := tap.Pipe(tap.PipeOptions{})
	mk := func(dev *tap.PipeEnd, p netip.Prefix) *v6Host {
		h := &v6Host{s: stack.New(stack.Options{})}
		b.Cleanup(func() { h.s.Close() })
		var err error
		if h.nic, err = h.s.AddNIC(dev, stack.NICOptions{Addresses: []netip.Prefix{p}, IPv6: stack.IPv6Options{DADTransmits: -1}}); err != nil {
			b.Fatal(err)
		}
		h.addr = p.Addr()
		return h
	}
	ha, hb := mk(la, pa), mk(lb, pb)
	epA, epB := newV6Endpoint(), newV6Endpoint()
	for _, x := range []struct {
		h  *v6Host
		ep *v6Endpoint
		p  uint16
	}{{ha, epA, 4000}, {hb, epB, 7}} {
		if _, err := x.h.s.RegisterEndpoint(17, stack.TransportID{LocalPort: x.p}, x.ep, false, 0); err != nil {
			b.Fatal(err)
		}
	}
	ra, err := ha.s.FindRoute(0, netip.Addr{}, hb.addr)
	if err != nil {
		b.Fatal(err)
	}
	rb, err := hb.s.FindRoute(0, netip.Addr{}, ha.addr)
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 64)
	buf := make([]byte, 2048)
	round := func() {
		if err := ha.s.WriteUDP(&ra, 4000, 7, msg, stack.WriteOptions{}); err != nil {
			b.Fatal(err)
		}
		p := <-epB.pkts
		n := p.Payload.CopyTo(buf)
		p.Payload.Release()
		if err := hb.s.WriteUDP(&rb, 7, 4000, buf[:n], stack.WriteOptions{}); err != nil {
			b.Fatal(err)
		}
		q := <-epA.pkts
		q.Payload.Release()
	}
	round() // resolve neighbours
	b.ReportAllocs()
	b.SetBytes(64)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		round()
	}
}

// BenchmarkEcho6 is a 64-byte UDP echo over IPv6 (NDP-resolved, on a pipe).
func BenchmarkEcho6(b *testing.B) {
	benchEchoPair(b, netip.MustParsePrefix("2001:db8::1/64"), netip.MustParsePrefix("2001:db8::2/64"))
}

// BenchmarkEcho4 is the same echo over IPv4, for comparison.
func BenchmarkEcho4(b *testing.B) {
	benchEchoPair(b, netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("192.0.2.2/24"))
}

// benchFindRoute measures the per-datagram route lookup of an unbound,
// unconnected socket (what an echo server's every reply pays): the NIC
// has an IPv4 and an IPv6 address (plus its IPv6 link-local), as the
// bench's tapnet6 subject does.
func benchFindRoute(b *testing.B, remote netip.Addr) {
	la, _ := tap.Pipe(tap.PipeOptions{})
	s := stack.New(stack.Options{})
	b.Cleanup(func() { s.Close() })
	addrs := []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24"), netip.MustParsePrefix("2001:db8::2/64")}
	if _, err := s.AddNIC(la, stack.NICOptions{Addresses: addrs, IPv6: stack.IPv6Options{DADTransmits: -1}}); err != nil {
		b.Fatal(err)
	}
	if _, err := s.FindRoute(0, netip.Addr{}, remote); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.FindRoute(0, netip.Addr{}, remote); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFindRoute6 is benchFindRoute to an on-link IPv6 peer.
func BenchmarkFindRoute6(b *testing.B) { benchFindRoute(b, netip.MustParseAddr("2001:db8::1")) }

// BenchmarkFindRoute4 is benchFindRoute to an on-link IPv4 peer.
func BenchmarkFindRoute4(b *testing.B) { benchFindRoute(b, netip.MustParseAddr("192.0.2.1")) }
