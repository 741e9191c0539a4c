//go:build !race

package gonet

import (
	"net"
	"testing"

	"golang.org/x/net/ipv4"

	"github.com/tapnet/tapnet/tap"
)

// A batch of 64 datagrams costs a handful of allocations, not one or two
// per datagram: the source addresses come from a slab (IPv4 and
// IPv4-mapped alike) and the per-datagram read state does not escape.
// (Not under -race, where sync.Pool drops buffers at random.)
func TestBatchAllocs(t *testing.T) {
	for _, network := range []string{"udp4", "udp"} {
		t.Run(network, func(t *testing.T) {
			a, b := pair(t, tap.PipeOptions{})
			srv, err := ListenUDP(a, network, &net.UDPAddr{Port: 7})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			cl, err := ListenUDP(b, "udp4", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			srv.SetReadBuffer(8 << 20)
			const batch = 64
			to := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 7}
			out, in := make([]ipv4.Message, batch), make([]ipv4.Message, batch)
			for i := range out {
				out[i] = ipv4.Message{Buffers: [][]byte{make([]byte, 100)}, Addr: to}
				in[i] = ipv4.Message{Buffers: [][]byte{make([]byte, 200)}}
			}
			wc, rc := NewPacketConn(cl), NewPacketConn(srv)
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
			if a, ok := in[0].Addr.(*net.UDPAddr); !ok || a.Port == 0 || !a.IP.Equal(net.IPv4(192, 0, 2, 1)) {
				t.Errorf("source %v", in[0].Addr)
			}
			if in[0].Addr == in[1].Addr {
				t.Error("two messages share one *net.UDPAddr")
			}
		})
	}
}
