package stack_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/tapnet/tapnet/internal/fakeclock"
	"github.com/tapnet/tapnet/ipv6"
	"github.com/tapnet/tapnet/link"
	"github.com/tapnet/tapnet/neigh"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

// These tests run neighbour discovery on an IP link (a TUN), as Linux does
// on a tun device (IFF_POINTOPOINT|IFF_NOARP, no link-layer address):
// router solicitations and advertisements work, with no link-layer
// address options and no neighbour cache; solicitations for our addresses
// are answered without a target link-layer address; DAD never runs.

// ipNDHost is a stack on an IP pipe whose IPv6 timers run on a fake
// clock; the test plays the far end. What the stack sends arrives on out.
type ipNDHost struct {
	s    *stack.Stack
	nic  *stack.NIC
	peer *tap.PipeEnd
	clk  *fakeclock.Clock
	out  chan []byte
}

func newIPNDHost(t *testing.T, o stack.IPv6Options, addrs ...netip.Prefix) *ipNDHost {
	t.Helper()
	la, lb := tap.Pipe(tap.PipeOptions{Layer: link.LayerIP})
	h := &ipNDHost{s: stack.New(stack.Options{}), peer: lb, clk: fakeclock.New(), out: make(chan []byte, 256)}
	stack.SetIPv6Clock(h.s, h.clk.Now, func(d time.Duration, f func()) neigh.Timer { return h.clk.AfterFunc(d, f) })
	done := make(chan struct{})
	go func() {
		defer close(done)
		frames := []link.Frame{{Buf: make([]byte, 2048)}}
		for {
			n, err := lb.ReadFrames(frames)
			if err != nil {
				return
			}
			for _, f := range frames[:n] {
				p := f.Buf[f.Off : f.Off+f.Len]
				if len(p) >= ipv6.HeaderLen && p[0]>>4 == 6 {
					select {
					case h.out <- append([]byte(nil), p...):
					default:
					}
				}
			}
			frames[0].Len = 0
		}
	}()
	t.Cleanup(func() { h.s.Close(); lb.Close(); <-done })
	var err error
	if h.nic, err = h.s.AddNIC(la, stack.NICOptions{Addresses: addrs, IPv6: o}); err != nil {
		t.Fatal(err)
	}
	return h
}

// next returns the next ICMPv6 message of type typ the stack sent, with
// its IPv6 header, skipping others.
func (h *ipNDHost) next(t *testing.T, typ uint8) ipv6.Header {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case p := <-h.out:
			ext, err := ipv6.WalkExtHeaders(p)
			if err == nil && ext.Protocol == ipv6.ProtocolICMPv6 && ext.Offset < len(p) && p[ext.Offset] == typ {
				return ipv6.Header(p)
			}
		case <-deadline:
			t.Fatalf("the stack sent no ICMPv6 type %d", typ)
		}
	}
}

// inject sends the ICMPv6 message msg (checksum filled here) from src to
// dst with hop limit 255, as a bare IPv6 packet.
func (h *ipNDHost) inject(t *testing.T, src, dst netip.Addr, msg []byte) {
	t.Helper()
	ipv6.PutChecksum(msg, src, dst)
	b := make([]byte, ipv6.HeaderLen+len(msg))
	ipv6.Put(b, ipv6.Fields{PayloadLen: len(msg), NextHeader: ipv6.ProtocolICMPv6, HopLimit: 255, Src: src, Dst: dst})
	copy(b[ipv6.HeaderLen:], msg)
	if _, err := h.peer.WriteFrames([]link.Frame{{Buf: b, Len: len(b)}}); err != nil {
		t.Fatal(err)
	}
}

// waitStat waits for a counter of the stack's to reach want.
func (h *ipNDHost) waitStat(t *testing.T, name string, want uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for h.s.Stats().Snapshot()[name] < want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := h.s.Stats().Snapshot()[name]; got != want {
		t.Fatalf("%s = %d, want %d", name, got, want)
	}
}

// icmpBody returns the ICMPv6 message of a packet the stack sent.
func icmpBody(t *testing.T, h ipv6.Header) []byte {
	t.Helper()
	p := []byte(h)
	if len(p) < ipv6.HeaderLen+int(h.PayloadLen()) {
		t.Fatalf("short packet: %d bytes", len(p))
	}
	return p[ipv6.HeaderLen : ipv6.HeaderLen+int(h.PayloadLen())]
}

var tunRouter = netip.MustParseAddr("fe80::1")

// TestRouterSolicitOnIPLink: a router solicitation on an IP link comes
// from the link-local address and carries no source link-layer address
// option (RFC 4861 §4.1: not on a link without link-layer addresses), as
// Linux's ndisc_send_rs on a tun device.
func TestRouterSolicitOnIPLink(t *testing.T) {
	h := newIPNDHost(t, stack.IPv6Options{AcceptRA: true})
	if got := h.s.Stats().NDP.DADProbes.Load(); got != 0 {
		t.Fatalf("DAD probes on an IP link: %d", got)
	}
	ll, ok := h.nic.LinkLocalAddress()
	if !ok {
		t.Fatal("link-local address not usable at once (IP links run no DAD)")
	}
	h.clk.Advance(time.Second)
	rs := h.next(t, ipv6.ICMPRouterSolicit)
	if rs.Src() != ll || rs.Dst() != ipv6.AllRouters || rs.HopLimit() != 255 {
		t.Fatalf("solicitation %v -> %v hop limit %d", rs.Src(), rs.Dst(), rs.HopLimit())
	}
	if m := icmpBody(t, rs); len(m) != 8 {
		t.Fatalf("solicitation is %d bytes, want 8 (no options): % x", len(m), m)
	}
}

// tunRouterAdvert returns an advertisement of prefix with a router
// lifetime of 30 minutes, the MTU mtu (0: none) and the DNS server dns
// (invalid: none), without a link-layer address option.
func tunRouterAdvert(prefix netip.Prefix, mtu uint32, dns netip.Addr) []byte {
	ra := make([]byte, 200)
	l := ipv6.PutRouterAdvert(ra, ipv6.RouterAdvertFields{CurHopLimit: 64, RouterLifetime: 1800 * time.Second})
	l += ipv6.PutPrefixInfoOption(ra[l:], ipv6.PrefixInfo{Prefix: prefix,
		OnLink: true, Autonomous: true, ValidLifetime: 3600, PreferredLifetime: 1800})
	if mtu != 0 {
		l += ipv6.PutMTUOption(ra[l:], mtu)
	}
	if dns.IsValid() {
		l += ipv6.PutRDNSSOption(ra[l:], 600, []netip.Addr{dns})
	}
	return ra[:l]
}

// TestRouterAdvertOnIPLink: an advertisement on an IP link gives a SLAAC
// address in its prefix (usable at once: no DAD), an on-link route, a
// default route through the router, the MTU and DNS servers, as Linux
// takes them on a tun device; and an off-link datagram leaves by the link.
func TestRouterAdvertOnIPLink(t *testing.T) {
	h := newIPNDHost(t, stack.IPv6Options{AcceptRA: true})
	prefix := netip.MustParsePrefix("2001:db8:5::/64")
	dns := netip.MustParseAddr("2001:db8:5::53")
	h.inject(t, tunRouter, ipv6.AllNodes, tunRouterAdvert(prefix, 1400, dns))
	h.waitStat(t, "NDP.RouterAdverts", 1)

	var slaac netip.Addr
	for _, p := range h.nic.Addresses() {
		if prefix.Contains(p.Addr()) {
			slaac = p.Addr()
		}
	}
	if !slaac.IsValid() || !h.s.IsLocalAddress(slaac) {
		t.Fatalf("no usable SLAAC address in %v: %v", prefix, h.nic.Addresses())
	}
	var def, onlink bool
	for _, r := range h.s.Routes() {
		def = def || r.Dst == netip.MustParsePrefix("::/0") && r.Gateway == tunRouter && r.NIC == h.nic.ID()
		onlink = onlink || r.Dst == prefix && r.NIC == h.nic.ID()
	}
	if !def || !onlink {
		t.Fatalf("routes %v: default via %v %v, on-link %v", h.s.Routes(), tunRouter, def, onlink)
	}
	if got := h.nic.DefaultRouters(); len(got) != 1 || got[0] != tunRouter {
		t.Fatalf("default routers %v", got)
	}
	if got := h.nic.DNSServers(); len(got) != 1 || got[0] != dns {
		t.Fatalf("DNS servers %v", got)
	}
	far := netip.MustParseAddr("2001:db8:9::1")
	r, err := h.s.FindRoute(0, netip.Addr{}, far)
	if err != nil || r.LocalAddr != slaac || r.NextHop != tunRouter || r.MaxPayload() != 1400-40 {
		t.Fatalf("route off-link: %+v %v (max payload %d)", r, err, r.MaxPayload())
	}
	if err := stack.SendICMPv6(h.s, 0, far, ipv6.ICMPEchoRequest, 1, []byte("via the router")); err != nil {
		t.Fatal(err)
	}
	if p := h.next(t, ipv6.ICMPEchoRequest); p.Src() != slaac || p.Dst() != far {
		t.Fatalf("echo request %v -> %v, want %v -> %v", p.Src(), p.Dst(), slaac, far)
	}
	if got := h.s.Stats().NDP.DADProbes.Load(); got != 0 {
		t.Fatalf("DAD probes on an IP link: %d", got)
	}

	// A lifetime of zero takes the router and the default route away.
	gone := make([]byte, 16)
	l := ipv6.PutRouterAdvert(gone, ipv6.RouterAdvertFields{})
	h.inject(t, tunRouter, ipv6.AllNodes, gone[:l])
	h.waitStat(t, "NDP.RouterAdverts", 2)
	if got := h.nic.DefaultRouters(); len(got) != 0 {
		t.Fatalf("default routers after lifetime 0: %v", got)
	}
	if _, err := h.s.FindRoute(0, netip.Addr{}, far); err == nil {
		t.Fatal("off-link route left after the router's lifetime ended")
	}
}

// TestRouterLifetimeOnIPLinkFakeClock: the default route through a router
// heard on an IP link goes when its lifetime ends, and the SLAAC address
// when its valid lifetime does.
func TestRouterLifetimeOnIPLinkFakeClock(t *testing.T) {
	h := newIPNDHost(t, stack.IPv6Options{AcceptRA: true})
	prefix := netip.MustParsePrefix("2001:db8:5::/64")
	h.inject(t, tunRouter, ipv6.AllNodes, tunRouterAdvert(prefix, 0, netip.Addr{}))
	h.waitStat(t, "NDP.RouterAdverts", 1)
	if len(h.nic.DefaultRouters()) != 1 {
		t.Fatal("no default router")
	}
	h.clk.Advance(1800 * time.Second)
	if got := h.nic.DefaultRouters(); len(got) != 0 {
		t.Fatalf("default routers after the lifetime: %v", got)
	}
	h.clk.Advance(1800 * time.Second)
	for _, p := range h.nic.Addresses() {
		if prefix.Contains(p.Addr()) {
			t.Fatalf("SLAAC address %v outlived its valid lifetime", p)
		}
	}
}

// TestNeighborSolicitOnIPLink: a solicitation for our address on an IP
// link is answered (Linux's ndisc_recv_ns answers on a device without
// header_ops) straight to the solicitor, with no target link-layer
// address option, and nothing is learned: there is no neighbour cache.
func TestNeighborSolicitOnIPLink(t *testing.T) {
	p := netip.MustParsePrefix("2001:db8::2/64")
	h := newIPNDHost(t, stack.IPv6Options{}, p)
	for _, sll := range []bool{false, true} {
		h.inject(t, ndPeer, ipv6.SolicitedNode(p.Addr()), neighborSolicit(p.Addr(), sll))
		na := h.next(t, ipv6.ICMPNeighborAdvert)
		if na.Src() != p.Addr() || na.Dst() != ndPeer {
			t.Fatalf("advertisement %v -> %v, want %v -> %v", na.Src(), na.Dst(), p.Addr(), ndPeer)
		}
		m := icmpBody(t, na)
		if len(m) != 24 {
			t.Fatalf("advertisement is %d bytes, want 24 (no options): % x", len(m), m)
		}
		if flags := m[4]; flags&ipv6.NAFlagSolicited == 0 {
			t.Fatalf("advertisement flags %#x: not solicited", flags)
		}
	}
	if h.nic.NeighborCache() != nil {
		t.Fatal("an IP link has a neighbour cache")
	}
	// A solicitation for an address that is not ours goes unanswered.
	h.inject(t, ndPeer, p.Addr(), neighborSolicit(netip.MustParseAddr("2001:db8::99"), false))
	h.waitStat(t, "NDP.NotForUs", 1)
}

// TestNoDADOnIPLink: an address added on an IP link is usable at once,
// without probes, whatever DADTransmits says (Linux skips DAD on NOARP
// devices, which a tun is), and an advertisement for it from elsewhere
// is no conflict to act on.
func TestNoDADOnIPLink(t *testing.T) {
	p := netip.MustParsePrefix("2001:db8::2/64")
	h := newIPNDHost(t, stack.IPv6Options{DADTransmits: 3}, p)
	if !h.s.IsLocalAddress(p.Addr()) {
		t.Fatal("address not usable at once")
	}
	h.inject(t, ndPeer, ipv6.AllNodes, neighborAdvert(p.Addr(), ipv6.NAFlagOverride))
	h.waitStat(t, "NDP.AdvertsReceived", 1)
	if !h.s.IsLocalAddress(p.Addr()) || h.s.Stats().NDP.DADProbes.Load() != 0 {
		t.Fatalf("address %v usable %v after %d probes", p, h.s.IsLocalAddress(p.Addr()), h.s.Stats().NDP.DADProbes.Load())
	}
}
