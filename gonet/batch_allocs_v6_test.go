//go:build !race

package gonet

import (
	"net"
	"net/netip"
	"testing"

	"github.com/tapnet/tapnet/tap"
)

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
