//go:build !race

package gonet

import (
	"net"
	"testing"

	"github.com/tapnet/tapnet/stack"
)

// TestSocketAllocations pins what opening and closing a socket allocates,
// since churn from many goroutines is bounded by the allocator and the
// collector: the conn with its socket, and the port's binding record. The
// socket's wake-up channel (made by the first read that waits), deadline
// channels, the local *net.UDPAddr and the multicast state are made only
// when used. (Not under -race, which allocates.)
func TestSocketAllocations(t *testing.T) {
	s := stack.New(stack.Options{})
	defer s.Close()
	for _, laddr := range []*net.UDPAddr{nil, {}} {
		open := testing.AllocsPerRun(200, func() {
			c, err := ListenUDP(s, "udp", laddr)
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
		})
		if open > 2 {
			t.Errorf("ListenUDP(%v)+Close: %v allocations, want at most 2", laddr, open)
		}
	}
	// A dialed conn also keeps its peer's *net.UDPAddr.
	raddr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}
	dial := testing.AllocsPerRun(200, func() {
		c, err := DialUDP(s, "udp", nil, raddr)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	})
	if dial > 3 {
		t.Errorf("DialUDP+Close: %v allocations, want at most 3", dial)
	}
}
