package stack_test

import (
	"net/netip"
	"testing"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/udpsock"
	"github.com/tapnet/tapnet/stack"
)

// TestUnconfiguredNICCarriesDHCP checks what a DHCP client needs from a NIC
// without an address, as Linux gives it: a socket on port 68 broadcasts
// from 0.0.0.0 and receives the server's unicast reply to the address on
// offer; nothing else sent to that address is accepted or answered.
func TestUnconfiguredNICCarriesDHCP(t *testing.T) {
	s := stack.New(stack.Options{})
	t.Cleanup(func() { s.Close() })
	link := newRelLink(relOurMAC, 1500)
	nic, err := s.AddNIC(link, stack.NICOptions{IPv6: stack.IPv6Options{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	ep := udpsock.New(s)
	t.Cleanup(func() { ep.Close() })
	if err := ep.BindToNIC(nic.ID()); err != nil {
		t.Fatal(err)
	}
	if err := ep.Bind(netip.AddrPortFrom(netip.IPv4Unspecified(), 68)); err != nil {
		t.Fatal(err)
	}
	if _, err := ep.Write([]byte("DISCOVER"), netip.AddrPortFrom(relLimited, 67), nil); err != nil {
		t.Fatalf("broadcast from an unconfigured NIC: %v", err)
	}
	sent := link.take()
	if len(sent) != 1 {
		t.Fatalf("%d frames sent, want 1", len(sent))
	}
	f := relParseSent(t, sent[0])
	if f.ethDst != ethernet.Broadcast || f.src != netip.IPv4Unspecified() || f.dst != relLimited {
		t.Fatalf("sent %v -> %v (Ethernet %v), want 0.0.0.0 -> 255.255.255.255 broadcast", f.src, f.dst, f.ethDst)
	}
	if _, err := ep.Write([]byte("x"), netip.AddrPortFrom(relPeerIP, 67), nil); err == nil {
		t.Fatal("unicast from an unconfigured NIC succeeded; want ENETUNREACH")
	}

	offered := netip.MustParseAddr("192.0.2.50")
	for _, tc := range []struct {
		name    string
		dst     netip.Addr
		dport   uint16
		deliver bool
		delta   string
	}{
		{"unicast offer to port 68", offered, 68, true, "UDP.Delivered"},
		{"broadcast offer to port 68", relLimited, 68, true, "UDP.Delivered"},
		{"unicast to another port", offered, 69, false, "IP.NotForUs"},
	} {
		before := s.Stats().Snapshot()
		link.inject(relUDPFrame(relPeerIP, tc.dst, 67, tc.dport, []byte("OFFER")))
		d := relDelta(before, s.Stats().Snapshot())
		got := relRead(ep)
		if tc.deliver != (len(got) == 1) || d[tc.delta] != 1 {
			t.Errorf("%s: read %d datagrams, counters %s, want %s", tc.name, len(got), relFormat(d), tc.delta)
		}
		if out := link.take(); len(out) != 0 {
			t.Errorf("%s: the stack answered with %d frames", tc.name, len(out))
		}
	}

	// Once configured, the NIC takes unicast only to its own addresses.
	if err := nic.AddAddress(netip.PrefixFrom(offered, 24)); err != nil {
		t.Fatal(err)
	}
	link.take()
	before := s.Stats().Snapshot()
	link.inject(relUDPFrame(relPeerIP, offered.Next(), 67, 68, []byte("OFFER")))
	if d := relDelta(before, s.Stats().Snapshot()); d["IP.NotForUs"] != 1 || len(relRead(ep)) != 0 {
		t.Errorf("configured NIC: counters %s, want IP.NotForUs", relFormat(d))
	}
	relCheckBalance(t, s.Stats().Snapshot())
}

// TestRemoveRoute removes what AddRoute added and nothing else: connected
// routes stay, and a route that is not there is ESRCH.
func TestRemoveRoute(t *testing.T) {
	e := newRelEnv(t, stack.Options{})
	gw := stack.RouteEntry{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: relPeerIP, NIC: e.nic.ID()}
	if err := e.s.AddRoute(gw); err != nil {
		t.Fatal(err)
	}
	if err := e.s.RemoveRoute(gw); err != nil {
		t.Fatal(err)
	}
	if err := e.s.RemoveRoute(gw); err == nil {
		t.Fatal("second RemoveRoute succeeded")
	}
	if err := e.s.RemoveRoute(stack.RouteEntry{Dst: netip.MustParsePrefix("192.0.2.0/24"), NIC: e.nic.ID()}); err == nil {
		t.Fatal("RemoveRoute removed the connected route")
	}
	if rs := e.s.Routes(); len(rs) != 1 || rs[0].Dst != netip.MustParsePrefix("192.0.2.0/24") {
		t.Fatalf("routes %v, want only the connected one", rs)
	}
}
