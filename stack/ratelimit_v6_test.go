package stack_test

import (
	"net/netip"
	"sync/atomic"
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
	testICMPRateLimitHolds(t, rateLimitFamily{
		newEnv: newRelEnv6,
		counters: func(st *stack.Stats) (sent, limited *atomic.Uint64) {
			return &st.ICMPv6.ErrorsSent, &st.ICMPv6.RateLimited
		},
		isError: func(s relSent) bool {
			return s.etherType == ethernet.TypeIPv6 && s.proto == ipv6.ProtocolICMPv6 && s.l4[0] == ipv6.ICMPDestUnreachable &&
				s.l4[1] == ipv6.CodePortUnreachable
		},
		closed: rel6UDPFrame(relPeerIP6, relOurIP6, 5000, 9, []byte("closed")),
		// Each source solicits us first, and so is a known neighbour.
		learn: func(e *relEnv, i int) { e.link.inject(rel6NS(relHost6(i), relOurIP6, relOurSNM, true)) },
		closedFrom: func(i int) []byte {
			return rel6UDPFrame(relHost6(i), relOurIP6, 5000, 9, []byte("closed"))
		},
	})
}

// rateLimitFamily is what testICMPRateLimitHolds needs of an IP version.
type rateLimitFamily struct {
	newEnv     func(testing.TB, stack.Options) *relEnv
	counters   func(*stack.Stats) (sent, limited *atomic.Uint64) // the family's ICMP errors
	isError    func(relSent) bool                                // a port unreachable
	closed     []byte                                            // a datagram from the peer to a closed port
	learn      func(e *relEnv, i int)                            // makes the i-th extra host a neighbour
	closedFrom func(i int) []byte                                // closed, from the i-th extra host
}

// testICMPRateLimitHolds floods closed ports with the clock stopped: one
// source gets its burst of 6 errors, all sources together the global
// burst of 50, and a second later one more each; the rest is counted
// RateLimited.
func testICMPRateLimitHolds(t *testing.T, f rateLimitFamily) {
	clk := fakeclock.New()
	e := f.newEnv(t, stack.Options{ICMPRateLimit: stack.RateLimitOptions{Now: clk.Now}})
	sentC, limitedC := f.counters(e.s.Stats())
	countErrors := func() int {
		n := 0
		for _, fr := range e.link.take() {
			if f.isError(relParseSent(t, fr)) {
				n++
			}
		}
		return n
	}
	for i := 0; i < 1000; i++ {
		e.link.inject(f.closed)
	}
	if sent, limited := sentC.Load(), limitedC.Load(); sent != 6 || limited != 994 {
		t.Errorf("one source, 1000 datagrams: %d errors sent, %d rate limited; want 6 and 994", sent, limited)
	}
	if n := countErrors(); n != 6 {
		t.Errorf("%d errors on the wire, want 6", n)
	}

	clk.Advance(time.Second)
	for i := 0; i < 10; i++ {
		e.link.inject(f.closed)
	}
	if sent, limited := sentC.Load(), limitedC.Load(); sent != 7 || limited != 1003 {
		t.Errorf("a second later: %d errors sent, %d rate limited; want 7 and 1003", sent, limited)
	}
	countErrors()

	// Many sources, each a known neighbour first: the global bucket (50,
	// refilled to 50 by the second that passed, one token taken since)
	// caps the total.
	for i := 100; i < 200; i++ {
		f.learn(e, i)
	}
	e.link.take()
	for i := 100; i < 200; i++ {
		e.link.inject(f.closedFrom(i))
	}
	if sent, limited := sentC.Load(), limitedC.Load(); sent != 7+49 || limited != 1003+51 {
		t.Errorf("100 sources: %d errors sent, %d rate limited; want %d and %d", sent, limited, 7+49, 1003+51)
	}
	if n := countErrors(); n != 49 {
		t.Errorf("%d errors on the wire, want 49", n)
	}
	if got := e.s.Stats().UDP.NoPort.Load(); got != 1000+10+100 {
		t.Errorf("UDP.NoPort = %d, want %d", got, 1000+10+100)
	}
	relCheckBalance(t, e.s.Stats().Snapshot())
}
