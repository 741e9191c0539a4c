//go:build !race

package gonet

import (
	"net"
	"testing"

	"github.com/tapnet/tapnet/stack"
)

// TestSocketAllocations pins what opening and closing a socket allocates,
// since churn from many goroutines is bounded by the allocator: the conn
// with its socket, the socket's wake-up channel and the port's binding
// record. Deadline channels, the local *net.UDPAddr and the multicast
// state are made only when used. (Not under -race, which allocates.)
func TestSocketAllocations(t *testing.T) {
	s := stack.New(stack.Options{})
	defer s.Close()
	laddr := &net.UDPAddr{}
	open := testing.AllocsPerRun(200, func() {
		c, err := ListenUDP(s, "udp", laddr)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	})
	if open > 3 {
		t.Errorf("ListenUDP+Close: %v allocations, want at most 3", open)
	}
}
