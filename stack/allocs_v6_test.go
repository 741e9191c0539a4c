package stack_test

import (
	"net/netip"
	"testing"

	"github.com/tapnet/tapnet/internal/udpsock"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

// TestZeroAllocs6 is TestSeamZeroAllocs over IPv6 (with IPv4 beside it for
// comparison): a datagram sent from one stack's socket and read from the
// other's, across an Ethernet pipe with the neighbour resolved, allocates
// nothing once the pools are warm.
func TestZeroAllocs6(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	for _, c := range []struct {
		name   string
		pa, pb netip.Prefix
	}{
		{"IPv6", v6A, v6B},
		{"IPv4", netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("192.0.2.2/24")},
	} {
		t.Run(c.name, func(t *testing.T) {
			la, lb := tap.Pipe(tap.PipeOptions{})
			sock := func(dev *tap.PipeEnd, p netip.Prefix) *udpsock.Endpoint {
				s := stack.New(stack.Options{})
				t.Cleanup(func() { s.Close() })
				if _, err := s.AddNIC(dev, stack.NICOptions{Addresses: []netip.Prefix{p}, IPv6: stack.IPv6Options{DADTransmits: -1}}); err != nil {
					t.Fatal(err)
				}
				ep := udpsock.New(s)
				if p.Addr().Is6() {
					ep = udpsock.NewIPv6(s, true)
				}
				t.Cleanup(func() { ep.Close() })
				if err := ep.Bind(netip.AddrPortFrom(p.Addr(), 7)); err != nil {
					t.Fatal(err)
				}
				return ep
			}
			a, b := sock(la, c.pa), sock(lb, c.pb)
			to := netip.AddrPortFrom(c.pb.Addr(), 7)
			msg, buf := make([]byte, 64), make([]byte, 2048)
			send := func() {
				if _, err := a.Write(msg, to, nil); err != nil {
					t.Fatal(err)
				}
			}
			recv := func() {
				ri, err := b.Read(buf, false, nil)
				if err != nil || ri.N != len(msg) || ri.Src != netip.AddrPortFrom(c.pa.Addr(), 7) {
					t.Fatalf("read %d bytes from %v: %v", ri.N, ri.Src, err)
				}
			}
			send() // resolve the neighbour
			recv()
			// A run writes one datagram and reads it on the other side: the
			// send path, the peer's receive path and the read.
			round := testing.AllocsPerRun(200, func() { send(); recv() })
			if round != 0 {
				t.Errorf("allocs per datagram sent and received: %v, want 0", round)
			}
		})
	}
}
