package stack_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/fakeclock"
	"github.com/tapnet/tapnet/ipv6"
	"github.com/tapnet/tapnet/stack"
)

// relHost6 is the i-th extra IPv6 peer, in 2001:db8::/64 beside the env's.
func relHost6(i int) netip.Addr {
	return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)})
}

// TestICMPv6RateLimitHolds is TestICMPRateLimitHolds over IPv6: datagrams
// to a closed port with the clock stopped get one source its burst of 6
// Destination Unreachables and all sources together the global burst of
// 50, and a second later one more each; the rest is counted RateLimited.
func TestICMPv6RateLimitHolds(t *testing.T) {
	clk := fakeclock.New()
	e := newRelEnv6(t, stack.Options{ICMPRateLimit: stack.RateLimitOptions{Now: clk.Now}})
	st := &e.s.Stats().ICMPv6
	countErrors := func() int {
		n := 0
		for _, f := range e.link.take() {
			s := relParseSent(t, f)
			if s.etherType == ethernet.TypeIPv6 && s.proto == ipv6.ProtocolICMPv6 && s.l4[0] == ipv6.ICMPDestUnreachable &&
				s.l4[1] == ipv6.CodePortUnreachable {
				n++
			}
		}
		return n
	}
	closed := rel6UDPFrame(relPeerIP6, relOurIP6, 5000, 9, []byte("closed"))
	for i := 0; i < 1000; i++ {
		e.link.inject(closed)
	}
	if sent, limited := st.ErrorsSent.Load(), st.RateLimited.Load(); sent != 6 || limited != 994 {
		t.Errorf("one source, 1000 datagrams: %d errors sent, %d rate limited; want 6 and 994", sent, limited)
	}
	if n := countErrors(); n != 6 {
		t.Errorf("%d ICMPv6 errors on the wire, want 6", n)
	}

	clk.Advance(time.Second)
	for i := 0; i < 10; i++ {
		e.link.inject(closed)
	}
	if sent, limited := st.ErrorsSent.Load(), st.RateLimited.Load(); sent != 7 || limited != 1003 {
		t.Errorf("a second later: %d errors sent, %d rate limited; want 7 and 1003", sent, limited)
	}
	countErrors()

	// Many sources, each known as a neighbour first: the global bucket
	// (refilled to 50 by the second that passed, one token taken since)
	// caps the total.
	for i := 100; i < 200; i++ {
		e.link.inject(rel6NS(relHost6(i), relOurIP6, relOurSNM, true))
	}
	e.link.take()
	for i := 100; i < 200; i++ {
		e.link.inject(rel6UDPFrame(relHost6(i), relOurIP6, 5000, 9, []byte("closed")))
	}
	if sent, limited := st.ErrorsSent.Load(), st.RateLimited.Load(); sent != 7+49 || limited != 1003+51 {
		t.Errorf("100 sources: %d errors sent, %d rate limited; want %d and %d", sent, limited, 7+49, 1003+51)
	}
	if n := countErrors(); n != 49 {
		t.Errorf("%d ICMPv6 errors on the wire, want 49", n)
	}
	if got := e.s.Stats().UDP.NoPort.Load(); got != 1000+10+100 {
		t.Errorf("UDP.NoPort = %d, want %d", got, 1000+10+100)
	}
	relCheckBalance(t, e.s.Stats().Snapshot())
}
