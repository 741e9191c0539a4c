package stack_test

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"github.com/tapnet/tapnet/internal/udpsock"
	"github.com/tapnet/tapnet/stack"
)

// Scale benchmarks of the demultiplexer and the ephemeral port allocator:
// their cost per operation should not depend on how many sockets are open.

// sharedPort is the local port the connected sockets of
// BenchmarkDeliverConnectedSharedPort share.
const sharedPort = 9000

// benchPeer is the i-th distinct peer of the shared-port benchmark: the
// same on-link host, a different port each.
func benchPeer(i int) netip.AddrPort {
	return netip.AddrPortFrom(relPeerIP, uint16(1024+i))
}

// openConnectedShared opens n sockets bound to :sharedPort with
// SO_REUSEADDR, each connected to its own peer, as a server that hands each
// client a connected socket does.
func openConnectedShared(tb testing.TB, s *stack.Stack, n int) []*udpsock.Endpoint {
	tb.Helper()
	eps := make([]*udpsock.Endpoint, n)
	for i := range eps {
		ep := udpsock.New(s)
		ep.SetReuseAddr(true)
		if err := ep.Bind(netip.AddrPortFrom(netip.IPv4Unspecified(), sharedPort)); err != nil {
			tb.Fatal(err)
		}
		if err := ep.Connect(benchPeer(i)); err != nil {
			tb.Fatal(err)
		}
		eps[i] = ep
	}
	tb.Cleanup(func() {
		for _, ep := range eps {
			ep.Close()
		}
	})
	return eps
}

// BenchmarkDeliverConnectedSharedPort delivers datagrams, through the whole
// receive path, to sockets among n connected ones sharing a local port, and
// reads each back.
func BenchmarkDeliverConnectedSharedPort(b *testing.B) {
	for _, n := range []int{1, 100, 10_000, 50_000} {
		b.Run(fmt.Sprintf("sockets=%d", n), func(b *testing.B) {
			e := newRelEnv(b, stack.Options{})
			eps := openConnectedShared(b, e.s, n)
			// A handful of targets spread over the table, so that no
			// single position (first or last bound) is measured alone.
			const targets = 16
			frames := make([][]byte, targets)
			dst := make([]*udpsock.Endpoint, targets)
			for k := range targets {
				i := k * (n - 1) / max(targets-1, 1)
				frames[k] = relUDPFrame(relPeerIP, relOurIP, benchPeer(i).Port(), sharedPort, make([]byte, 64))
				dst[k] = eps[i]
			}
			buf := make([]byte, 128)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				k := i % targets
				e.link.inject(frames[k])
				if _, err := dst[k].Read(buf, false, relNow); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// holdEphemeral binds n sockets to ephemeral ports.
func holdEphemeral(tb testing.TB, s *stack.Stack, n int) {
	tb.Helper()
	eps := make([]*udpsock.Endpoint, n)
	for i := range eps {
		eps[i] = udpsock.New(s)
		if err := eps[i].Bind(netip.AddrPortFrom(netip.IPv4Unspecified(), 0)); err != nil {
			tb.Fatalf("holding port %d: %v", i, err)
		}
	}
	tb.Cleanup(func() {
		for _, ep := range eps {
			ep.Close()
		}
	})
}

// openClose binds a new socket to an ephemeral port and closes it.
func openClose(s *stack.Stack) error {
	ep := udpsock.New(s)
	defer ep.Close()
	return ep.Bind(netip.AddrPortFrom(netip.IPv4Unspecified(), 0))
}

// BenchmarkOpenCloseEphemeral opens and closes a socket on an ephemeral
// port while others hold most of the range (28,232 ports).
func BenchmarkOpenCloseEphemeral(b *testing.B) {
	for _, held := range []int{0, 20_000, 28_000} {
		b.Run(fmt.Sprintf("held=%d", held), func(b *testing.B) {
			s := stack.New(stack.Options{})
			b.Cleanup(func() { s.Close() })
			holdEphemeral(b, s, held)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := openClose(s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpenCloseChurn opens and closes sockets on ephemeral ports from
// g goroutines at once. ns/op is wall time per open+close, so on two or
// more cores goroutines=2 should be at most goroutines=1.
func BenchmarkOpenCloseChurn(b *testing.B) {
	for _, g := range []int{1, 2} {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) {
			s := stack.New(stack.Options{})
			b.Cleanup(func() { s.Close() })
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for w := range g {
				n := b.N / g
				if w == 0 {
					n += b.N % g
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range n {
						if err := openClose(s); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}
