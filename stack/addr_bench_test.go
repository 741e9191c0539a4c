package stack_test

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/tapnet/tapnet/stack"
)

// manyPrefixes returns n addresses, each alone in its /30 of 198.18.0.0/15
// (RFC 2544's benchmarking range): n connected routes and n subnet
// broadcast addresses, the worst case for per-packet address checks.
func manyPrefixes(n int) []netip.Prefix {
	out := make([]netip.Prefix, n)
	for i := range out {
		v := uint32(198)<<24 | uint32(18)<<16 | uint32(i)<<2 | 1
		out[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), 30)
	}
	return out
}

// BenchmarkDeliverManyAddresses receives one 64-byte UDP datagram per op on
// a NIC that has 192.0.2.1/24 and addrs-1 more addresses, each on its own
// prefix, and reads it from a wildcard socket. Throughput must not depend
// on the number of addresses.
func BenchmarkDeliverManyAddresses(b *testing.B) {
	for _, n := range []int{1, 100, 10000} {
		b.Run(fmt.Sprintf("addrs=%d", n), func(b *testing.B) {
			e := newRelEnv(b, stack.Options{})
			for _, p := range manyPrefixes(n - 1) {
				if err := e.nic.AddAddress(p); err != nil {
					b.Fatal(err)
				}
			}
			ep := e.listen(netip.Addr{}, 7)
			frame := relUDPFrame(relPeerIP, relOurIP, 1234, 7, make([]byte, 64))
			buf := make([]byte, 128)
			b.SetBytes(64)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				e.link.inject(frame)
				if _, err := ep.Read(buf, false, relNow); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAddAddresses assigns 10,001 addresses one AddAddress at a time,
// as NICOptions.Addresses does, to a fresh NIC per op.
func BenchmarkAddAddresses(b *testing.B) {
	ps := manyPrefixes(10001)
	b.ReportAllocs()
	for range b.N {
		s := stack.New(stack.Options{})
		nic, err := s.AddNIC(newRelLink(relOurMAC, 1500), stack.NICOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range ps {
			if err := nic.AddAddress(p); err != nil {
				b.Fatal(err)
			}
		}
		s.Close()
	}
}

// BenchmarkFindRouteManyRoutes picks the route to an off-link host through
// a default gateway while 10,000 connected prefixes are installed.
func BenchmarkFindRouteManyRoutes(b *testing.B) {
	for _, n := range []int{1, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			e := newRelEnv(b, stack.Options{})
			for _, p := range manyPrefixes(n - 1) {
				if err := e.nic.AddAddress(p); err != nil {
					b.Fatal(err)
				}
			}
			if err := e.s.SetDefaultGateway(e.nic.ID(), relPeerIP); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				r, err := e.s.FindRoute(0, netip.Addr{}, relOffLink)
				if err != nil || r.LocalAddr != relOurIP {
					b.Fatal(r, err)
				}
			}
		})
	}
}
