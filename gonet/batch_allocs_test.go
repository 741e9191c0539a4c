//go:build !race

package gonet

import (
	"net"
	"net/netip"
	"testing"

	"golang.org/x/net/ipv4"

	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

// batcher is the batch API PacketConn and PacketConn6 share (ipv4.Message
// and ipv6.Message are both x/net's socket.Message).
type batcher interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// A batch of 64 datagrams costs a handful of allocations, not one or two
// per datagram: the source addresses come from a slab (IPv4, IPv4-mapped
// and IPv6 alike) and the per-datagram read state does not escape. A udp4
// client batches to a udp4 or dual-stack udp server, a udp6 client to a
// udp6 or dual-stack one. (Not under -race, where sync.Pool drops buffers
// at random.)
func TestBatchAllocs(t *testing.T) {
	pair4 := func(t *testing.T) (a, b *stack.Stack) { return pair(t, tap.PipeOptions{}) }
	pairV6 := func(t *testing.T) (a, b *stack.Stack) { a, b, _, _ = pair6(t, tap.PipeOptions{}); return a, b }
	for _, c := range []struct {
		name, network, client string
		pair                  func(*testing.T) (a, b *stack.Stack)
		srvAddr, clAddr       netip.Addr
		wrap                  func(*UDPConn) batcher
	}{
		{"udp4", "udp4", "udp4", pair4, netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.1"),
			func(c *UDPConn) batcher { return NewPacketConn(c) }},
		{"udp/v4", "udp", "udp4", pair4, netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.1"),
			func(c *UDPConn) batcher { return NewPacketConn(c) }},
		{"udp6", "udp6", "udp6", pairV6, v6A, v6B, func(c *UDPConn) batcher { return NewPacketConn6(c) }},
		{"udp/v6", "udp", "udp6", pairV6, v6A, v6B, func(c *UDPConn) batcher { return NewPacketConn6(c) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b := c.pair(t)
			srv, err := ListenUDP(a, c.network, &net.UDPAddr{Port: 7})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			cl, err := ListenUDP(b, c.client, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			srv.SetReadBuffer(8 << 20)
			const batch = 64
			to := &net.UDPAddr{IP: c.srvAddr.AsSlice(), Port: 7}
			out, in := make([]ipv4.Message, batch), make([]ipv4.Message, batch)
			for i := range out {
				out[i] = ipv4.Message{Buffers: [][]byte{make([]byte, 100)}, Addr: to}
				in[i] = ipv4.Message{Buffers: [][]byte{make([]byte, 200)}}
			}
			wc, rc := c.wrap(cl), c.wrap(srv)
			roundTrip := func() {
				if n, err := wc.WriteBatch(out, 0); n != batch || err != nil {
					t.Fatalf("WriteBatch: %d, %v", n, err)
				}
				for got := 0; got < batch; {
					n, err := rc.ReadBatch(in[:batch-got], 0)
					if err != nil {
						t.Fatal(err)
					}
					got += n
				}
			}
			roundTrip() // resolve the neighbour
			if allocs := testing.AllocsPerRun(20, roundTrip); allocs > 8 {
				t.Errorf("%v allocations per batch of %d, want at most 8", allocs, batch)
			}
			if a, ok := in[0].Addr.(*net.UDPAddr); !ok || a.Port == 0 || !a.IP.Equal(c.clAddr.AsSlice()) {
				t.Errorf("source %v", in[0].Addr)
			}
			if in[0].Addr == in[1].Addr {
				t.Error("two messages share one *net.UDPAddr")
			}
		})
	}
}
