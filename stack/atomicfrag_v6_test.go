package stack_test

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/tapnet/tapnet/internal/udpsock"
	"github.com/tapnet/tapnet/stack"
)

// listen6 binds a udp6 (IPV6_V6ONLY) endpoint of e's stack to [::]:port.
func (e *relEnv) listen6(port uint16) *udpsock.Endpoint {
	e.t.Helper()
	ep := udpsock.NewIPv6(e.s, true)
	if err := ep.Bind(netip.AddrPortFrom(netip.IPv6Unspecified(), port)); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { ep.Close() })
	return ep
}

// TestIPv6AtomicFragmentDelivered: a UDP datagram in an atomic fragment (a
// fragment header with offset 0 and M clear) is delivered at once, without
// reassembly, and does not disturb a datagram being reassembled under the
// same identification (RFC 6946 §4). It is counted as an atomic fragment,
// not as a fragment.
func TestIPv6AtomicFragmentDelivered(t *testing.T) {
	e := newRelEnv6(t, stack.Options{})
	ep := e.listen6(7)
	const id = 77
	big := bytes.Repeat([]byte("fragmented-"), 200)
	u := rel6UDP(relPeerIP6, relOurIP6, 5000, 7, big)
	half := 1200
	first := rel6Frame(rel6Build(relPeerIP6, relOurIP6, 64, 17, u[:half], rel6Frag(0, true, id)))
	last := rel6Frame(rel6Build(relPeerIP6, relOurIP6, 64, 17, u[half:], rel6Frag(half, false, id)))
	msg := []byte("in an atomic fragment")
	atomic := rel6Frame(rel6Build(relPeerIP6, relOurIP6, 64, 17, rel6UDP(relPeerIP6, relOurIP6, 5001, 7, msg), rel6Frag(0, false, id)))

	e.link.inject(first)
	e.link.inject(atomic)
	got := relRead(ep)
	if len(got) != 1 || !bytes.Equal(got[0].data, msg) || got[0].src != netip.AddrPortFrom(relPeerIP6, 5001) || got[0].dst != relOurIP6 {
		t.Fatalf("after the atomic fragment: %d datagrams %+v, want %q from [%v]:5001", len(got), got, msg, relPeerIP6)
	}
	e.link.inject(last)
	got = relRead(ep)
	if len(got) != 1 || !bytes.Equal(got[0].data, big) || got[0].src != netip.AddrPortFrom(relPeerIP6, 5000) {
		t.Fatalf("after the last fragment: %d datagrams, want the %d-byte reassembled one", len(got), len(big))
	}

	m := e.s.Stats().Snapshot()
	for k, want := range map[string]uint64{
		"IPv6.AtomicFragments":    1,
		"IPv6.FragmentsIn":        2, // the two real fragments only
		"IPv6.Reassembled":        1,
		"Reassembly6.Fragments":   2,
		"Reassembly6.Reassembled": 1,
		"Reassembly6.InFlight":    0,
		"UDP.Delivered":           2,
	} {
		if m[k] != want {
			t.Errorf("%s = %d, want %d", k, m[k], want)
		}
	}
	relCheckBalance(t, m)
}
