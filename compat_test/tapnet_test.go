package compat

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tapnet/tapnet/gonet"
	"github.com/tapnet/tapnet/link"
	"github.com/tapnet/tapnet/neigh"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

var _ UDPConn = (*gonet.UDPConn)(nil)

// hostAddrs returns host A's (or B's) address and the prefixes its stack
// gets for family f: IPv4 alone, or IPv4 and IPv6.
func hostAddrs(f family, b bool) (netip.Addr, []string) {
	v4, v6 := "192.0.2.2/24", "2001:db8::2/64"
	if b {
		v4, v6 = "192.0.2.1/24", "2001:db8::1/64"
	}
	switch {
	case f.v6:
		return netip.MustParsePrefix(v6).Addr(), []string{v4, v6}
	case f.dual:
		return netip.MustParsePrefix(v4).Addr(), []string{v4, v6}
	}
	return netip.MustParsePrefix(v4).Addr(), []string{v4}
}

// altAddr is, for a dual-stack family, the host's address of the other IP
// version among its prefixes; the zero Addr otherwise.
func altAddr(f family, addr netip.Addr, prefixes []string) netip.Addr {
	if !f.dual {
		return netip.Addr{}
	}
	for _, p := range prefixes {
		if a := netip.MustParsePrefix(p).Addr(); a.Is4() != addr.Is4() {
			return a
		}
	}
	return netip.Addr{}
}

// newStack makes a stack with one NIC on l and the given addresses; IPv6
// ones are usable at once (no DAD).
func newStack(t *testing.T, l link.Device, addrs ...string) *stack.Stack {
	s := stack.New(stack.Options{})
	t.Cleanup(func() { s.Close() })
	var ps []netip.Prefix
	for _, a := range addrs {
		ps = append(ps, netip.MustParsePrefix(a))
	}
	if _, err := s.AddNIC(l, stack.NICOptions{Addresses: ps, IPv6: stack.IPv6Options{DADTransmits: -1}}); err != nil {
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
func tapnetPipeSubject(f family) Subject {
	var a, b *stack.Stack
	addrA, pa := hostAddrs(f, false)
	addrB, pb := hostAddrs(f, true)
	return Subject{
		Name:     "tapnet-pipe" + f.name,
		Network:  f.network,
		Wildcard: f.dual,
		AddrA:    addrA, AddrB: addrB,
		AltA: altAddr(f, addrA, pa), AltB: altAddr(f, addrB, pb),
		Setup: func(t *testing.T) {
			la, lb := tap.Pipe(tap.PipeOptions{})
			a = newStack(t, la, pa...)
			b = newStack(t, lb, pb...)
		},
		ListenA: gonetListen(&a), DialA: gonetDial(&a),
		ListenB: gonetListen(&b), DialB: gonetDial(&b),
		Settle: 50 * time.Millisecond,
		Diag: func(*testing.T) string {
			return "A: " + stackDiag(a) + "\nB: " + stackDiag(b)
		},
	}
}

// stackDiag lists the counters of s that are not zero, and its NICs'
// neighbours.
func stackDiag(s *stack.Stack) string {
	var b strings.Builder
	m := s.Stats().Snapshot()
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if m[k] != 0 {
			fmt.Fprintf(&b, "%s=%d ", k, m[k])
		}
	}
	for _, n := range s.NICs() {
		var es []neigh.Entry
		if c := n.ARP(); c != nil {
			es = c.Entries(es)
		}
		if nd := n.NeighborCache(); nd != nil {
			es = nd.Entries(es)
		}
		for _, e := range es {
			fmt.Fprintf(&b, "\n  nic %d: %v %v %v", n.ID(), e.Addr, e.MAC, e.State)
		}
	}
	return b.String()
}
