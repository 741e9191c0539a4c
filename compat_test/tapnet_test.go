package compat

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/tapnet/tapnet/gonet"
	"github.com/tapnet/tapnet/link"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

var _ UDPConn = (*gonet.UDPConn)(nil)

var (
	addrA = netip.MustParseAddr("192.0.2.2")
	addrB = netip.MustParseAddr("192.0.2.1")
)

func newStack(t *testing.T, l link.Device, addr string) *stack.Stack {
	s := stack.New(stack.Options{})
	t.Cleanup(func() { s.Close() })
	if _, err := s.AddNIC(l, stack.NICOptions{Addresses: []netip.Prefix{netip.MustParsePrefix(addr)}}); err != nil {
		t.Fatal(err)
	}
	return s
}

func gonetListen(s **stack.Stack) func(string, *net.UDPAddr) (UDPConn, error) {
	return func(network string, laddr *net.UDPAddr) (UDPConn, error) {
		c, err := gonet.ListenUDP(*s, network, laddr)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}

func gonetDial(s **stack.Stack) func(string, *net.UDPAddr, *net.UDPAddr) (UDPConn, error) {
	return func(network string, laddr, raddr *net.UDPAddr) (UDPConn, error) {
		c, err := gonet.DialUDP(*s, network, laddr, raddr)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}

// tapnetPipeSubject is two tapnet stacks joined by tap.Pipe, rebuilt for
// every scenario so that no state (ICMP rate limits, ports) leaks between
// them.
func tapnetPipeSubject() Subject {
	var a, b *stack.Stack
	return Subject{
		Name:  "tapnet-pipe",
		AddrA: addrA, AddrB: addrB,
		Setup: func(t *testing.T) {
			la, lb := tap.Pipe(tap.PipeOptions{})
			a = newStack(t, la, "192.0.2.2/24")
			b = newStack(t, lb, "192.0.2.1/24")
		},
		ListenA: gonetListen(&a), DialA: gonetDial(&a),
		ListenB: gonetListen(&b), DialB: gonetDial(&b),
		Settle: 50 * time.Millisecond,
	}
}
