//go:build !race

package gonet

import (
	"net"
	"net/netip"
	"testing"

	"golang.org/x/net/ipv6"

	"github.com/tapnet/tapnet/tap"
)

// TestBatchAllocs6 is TestBatchAllocs over IPv6: a udp6 client batching
// to a udp6 or dual-stack udp server pays a handful of allocations per
// batch of 64, not one or two per datagram. (Not under -race, where
// sync.Pool drops buffers at random.)
func TestBatchAllocs6(t *testing.T) {
	for _, network := range []string{"udp6", "udp"} {
		t.Run(network, func(t *testing.T) {
			a, b, _, _ := pair6(t, tap.PipeOptions{})
			srv, err := ListenUDP(a, network, &net.UDPAddr{Port: 7})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			cl, err := ListenUDP(b, "udp6", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			srv.SetReadBuffer(8 << 20)
			const batch = 64
			to := &net.UDPAddr{IP: v6A.AsSlice(), Port: 7}
			out, in := make([]ipv6.Message, batch), make([]ipv6.Message, batch)
			for i := range out {
				out[i] = ipv6.Message{Buffers: [][]byte{make([]byte, 100)}, Addr: to}
				in[i] = ipv6.Message{Buffers: [][]byte{make([]byte, 200)}}
			}
			wc, rc := NewPacketConn6(cl), NewPacketConn6(srv)
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
			allocs := testing.AllocsPerRun(20, roundTrip)
			t.Logf("%v allocations per batch of %d", allocs, batch)
			if allocs > 8 {
				t.Errorf("%v allocations per batch of %d, want at most 8", allocs, batch)
			}
			if a, ok := in[0].Addr.(*net.UDPAddr); !ok || a.Port == 0 || !a.IP.Equal(v6B.AsSlice()) {
				t.Errorf("source %v", in[0].Addr)
			}
			if in[0].Addr == in[1].Addr {
				t.Error("two messages share one *net.UDPAddr")
			}
		})
	}
}

// TestDatagramAllocs6: one udp6 datagram written with WriteToUDPAddrPort
// and read with ReadFromUDPAddrPort allocates nothing once the pools are
// warm, on a udp6 and on a dual-stack udp server.
func TestDatagramAllocs6(t *testing.T) {
	for _, network := range []string{"udp6", "udp"} {
		t.Run(network, func(t *testing.T) {
			a, b, _, _ := pair6(t, tap.PipeOptions{})
			srv, err := ListenUDP(a, network, &net.UDPAddr{Port: 7})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			cl, err := ListenUDP(b, "udp6", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			to := netip.AddrPortFrom(v6A, 7)
			msg, buf := make([]byte, 64), make([]byte, 2048)
			roundTrip := func() {
				if _, err := cl.WriteToUDPAddrPort(msg, to); err != nil {
					t.Fatal(err)
				}
				n, from, err := srv.ReadFromUDPAddrPort(buf)
				if err != nil || n != len(msg) || from.Addr() != v6B {
					t.Fatalf("read %d bytes from %v: %v", n, from, err)
				}
			}
			roundTrip() // resolve the neighbour
			if allocs := testing.AllocsPerRun(200, roundTrip); allocs != 0 {
				t.Errorf("%v allocations per datagram, want 0", allocs)
			}
		})
	}
}
