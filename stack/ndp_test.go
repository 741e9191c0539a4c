package stack_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/fakeclock"
	"github.com/tapnet/tapnet/ipv6"
	"github.com/tapnet/tapnet/link"
	"github.com/tapnet/tapnet/neigh"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

// ndHost is a stack whose IPv6 timers run on a fake clock, with the far
// end of its pipe played by the test: what the stack sends arrives on out.
type ndHost struct {
	s    *stack.Stack
	nic  *stack.NIC
	peer *tap.PipeEnd
	clk  *fakeclock.Clock
	out  chan []byte // IPv6 packets the stack sent, Ethernet header removed
}

var ndPeerMAC = ethernet.MAC{0x02, 0, 0, 0, 0, 0x42}

func newNDHost(t *testing.T, o stack.IPv6Options, addrs ...netip.Prefix) *ndHost {
	t.Helper()
	la, lb := tap.Pipe(tap.PipeOptions{})
	h := &ndHost{s: stack.New(stack.Options{}), peer: lb, clk: fakeclock.New(), out: make(chan []byte, 256)}
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
				if len(p) > ethernet.HeaderLen && ethernet.Header(p).Type() == ethernet.TypeIPv6 {
					select {
					case h.out <- append([]byte(nil), p[ethernet.HeaderLen:]...):
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
func (h *ndHost) next(t *testing.T, typ uint8) ipv6.Header {
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

// inject sends an ICMPv6 message (checksum filled here) from src to dst
// with hop limit hop, from the peer's MAC, behind hbh when not nil.
func (h *ndHost) inject(t *testing.T, src, dst netip.Addr, hop uint8, hbh, msg []byte) {
	t.Helper()
	ipv6.PutChecksum(msg, src, dst)
	next := uint8(ipv6.ProtocolICMPv6)
	if hbh != nil {
		next = ipv6.ProtocolHopByHop
	}
	payload := append(append([]byte(nil), hbh...), msg...)
	b := make([]byte, ethernet.HeaderLen+ipv6.HeaderLen+len(payload))
	dmac := h.nic.MAC()
	if dst.IsMulticast() {
		dmac = ipv6.MulticastMAC(dst)
	}
	ethernet.PutHeader(b, dmac, ndPeerMAC, ethernet.TypeIPv6)
	ipv6.Put(b[ethernet.HeaderLen:], ipv6.Fields{PayloadLen: len(payload), NextHeader: next, HopLimit: hop, Src: src, Dst: dst})
	copy(b[ethernet.HeaderLen+ipv6.HeaderLen:], payload)
	if _, err := h.peer.WriteFrames([]link.Frame{{Buf: b, Len: len(b)}}); err != nil {
		t.Fatal(err)
	}
}

// waitStat waits for a counter of the stack's to reach want.
func (h *ndHost) waitStat(t *testing.T, name string, want uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for h.s.Stats().Snapshot()[name] < want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := h.s.Stats().Snapshot()[name]; got != want {
		t.Fatalf("%s = %d, want %d", name, got, want)
	}
}

func neighborSolicit(target netip.Addr, sll bool) []byte {
	b := make([]byte, 64)
	l := ipv6.PutNeighborSolicit(b, target)
	if sll {
		l += ipv6.PutLinkAddrOption(b[l:], ipv6.OptSourceLinkAddr, ndPeerMAC)
	}
	return b[:l]
}

func neighborAdvert(target netip.Addr, flags uint8) []byte {
	b := make([]byte, 64)
	l := ipv6.PutNeighborAdvert(b, flags, target)
	l += ipv6.PutLinkAddrOption(b[l:], ipv6.OptTargetLinkAddr, ndPeerMAC)
	return b[:l]
}

var ndPeer = netip.MustParseAddr("2001:db8::42")

// TestDADTimingFakeClock checks DAD's timing: DADTransmits probes
// RetransTimer apart, the address usable one RetransTimer after the last.
func TestDADTimingFakeClock(t *testing.T) {
	h := newNDHost(t, stack.IPv6Options{DADTransmits: 2}, v6A)
	st := &h.s.Stats().NDP
	// The link-local address and v6A each sent their first probe at once.
	if got := st.DADProbes.Load(); got != 2 {
		t.Fatalf("DADProbes at start = %d, want 2", got)
	}
	h.clk.Advance(999 * time.Millisecond)
	if got := st.DADProbes.Load(); got != 2 || h.s.IsLocalAddress(v6A.Addr()) {
		t.Fatalf("before 1s: %d probes, assigned %v", got, h.s.IsLocalAddress(v6A.Addr()))
	}
	h.clk.Advance(time.Millisecond)
	if got := st.DADProbes.Load(); got != 4 || h.s.IsLocalAddress(v6A.Addr()) {
		t.Fatalf("at 1s: %d probes, assigned %v; want 4, false", got, h.s.IsLocalAddress(v6A.Addr()))
	}
	h.clk.Advance(time.Second)
	if !h.s.IsLocalAddress(v6A.Addr()) || st.DADProbes.Load() != 4 {
		t.Fatalf("at 2s: assigned %v after %d probes; want true after 4", h.s.IsLocalAddress(v6A.Addr()), st.DADProbes.Load())
	}
}

// TestRouterSolicitationTimingFakeClock checks RFC 4861 §6.3.7: up to
// three solicitations, the first within a second, then four seconds
// apart, and none once they are spent.
func TestRouterSolicitationTimingFakeClock(t *testing.T) {
	h := newNDHost(t, stack.IPv6Options{AcceptRA: true, DADTransmits: -1})
	st := &h.s.Stats().NDP
	if st.RouterSolicits.Load() != 0 {
		t.Fatal("solicited before the random delay")
	}
	h.clk.Advance(time.Second)
	for i, want := range []uint64{1, 2, 3, 3, 3} {
		if got := st.RouterSolicits.Load(); got != want {
			t.Fatalf("after %d intervals: %d solicitations, want %d", i, got, want)
		}
		h.clk.Advance(4 * time.Second)
	}
}

// TestNeighborSolicitWithoutSourceLinkAddr: a unicast solicitation from
// a neighbour we do not know, without its link-layer address, is
// answered once the solicitor is resolved (RFC 4861 §7.2.4), not ignored.
func TestNeighborSolicitWithoutSourceLinkAddr(t *testing.T) {
	h := newNDHost(t, stack.IPv6Options{DADTransmits: -1}, v6A)
	h.inject(t, ndPeer, v6A.Addr(), 255, nil, neighborSolicit(v6A.Addr(), false))
	ns := h.next(t, ipv6.ICMPNeighborSolicit)
	if ns.Dst() != ipv6.SolicitedNode(ndPeer) {
		t.Fatalf("solicitation for the solicitor went to %v, want %v", ns.Dst(), ipv6.SolicitedNode(ndPeer))
	}
	h.inject(t, ndPeer, v6A.Addr(), 255, nil, neighborAdvert(ndPeer, ipv6.NAFlagSolicited|ipv6.NAFlagOverride))
	na := h.next(t, ipv6.ICMPNeighborAdvert)
	if na.Dst() != ndPeer || na.Src() != v6A.Addr() {
		t.Fatalf("advertisement %v -> %v, want %v -> %v", na.Src(), na.Dst(), v6A.Addr(), ndPeer)
	}
	if e, ok := h.nic.NeighborCache().Lookup(ndPeer); !ok || e.MAC != ndPeerMAC {
		t.Fatalf("solicitor not resolved: %+v %v", e, ok)
	}
}

// sentNDP returns the NDP message of the packet h (no extension headers:
// the stack sends NDP without them).
func sentNDP(h ipv6.Header) ipv6.NDP {
	return ipv6.NDP(h[ipv6.HeaderLen : ipv6.HeaderLen+h.PayloadLen()])
}

// TestNeighborAdvertForUnicastSolicit checks the answer to a solicitation
// against Linux's ndisc_recv_ns: to a unicast one Solicited alone and no
// target link-layer address option (RFC 4861 §7.2.4 lets it go: the
// solicitor has our address); to a multicast one Solicited and Override
// with the option.
func TestNeighborAdvertForUnicastSolicit(t *testing.T) {
	h := newNDHost(t, stack.IPv6Options{DADTransmits: -1}, v6A)
	for _, tc := range []struct {
		name      string
		dst       netip.Addr
		wantFlags uint8
		wantTLLA  bool
	}{
		{"unicast", v6A.Addr(), ipv6.NAFlagSolicited, false},
		{"multicast", ipv6.SolicitedNode(v6A.Addr()), ipv6.NAFlagSolicited | ipv6.NAFlagOverride, true},
	} {
		h.inject(t, ndPeer, tc.dst, 255, nil, neighborSolicit(v6A.Addr(), true))
		na := sentNDP(h.next(t, ipv6.ICMPNeighborAdvert))
		mac, hasTLLA := linkAddr(na, ipv6.OptTargetLinkAddr)
		if na.Flags() != tc.wantFlags || hasTLLA != tc.wantTLLA || hasTLLA && mac != h.nic.MAC() {
			t.Errorf("%s solicitation: flags %#x, target link address %v %v; want flags %#x, option %v",
				tc.name, na.Flags(), mac, hasTLLA, tc.wantFlags, tc.wantTLLA)
		}
	}
}

// TestMulticastSolicitWithoutSourceLinkAddr checks Linux's ndisc_recv_ns:
// a multicast solicitation without the solicitor's link-layer address is
// answered only when the solicitor has an entry already; from an unknown
// one it is counted and left unanswered, with nothing resolved.
func TestMulticastSolicitWithoutSourceLinkAddr(t *testing.T) {
	h := newNDHost(t, stack.IPv6Options{DADTransmits: -1}, v6A)
	group := ipv6.SolicitedNode(v6A.Addr())
	h.inject(t, ndPeer, group, 255, nil, neighborSolicit(v6A.Addr(), false))
	h.waitStat(t, "NDP.SolicitsUnanswered", 1)
	if _, ok := h.nic.NeighborCache().Lookup(ndPeer); ok || h.s.Stats().NDP.SolicitsSent.Load() != 0 {
		t.Fatalf("unknown solicitor: entry %v, %d solicitations sent; want none", ok, h.s.Stats().NDP.SolicitsSent.Load())
	}
	// Once known (from a unicast solicitation with its address), it is
	// answered, at the address it has.
	h.inject(t, ndPeer, v6A.Addr(), 255, nil, neighborSolicit(v6A.Addr(), true))
	h.next(t, ipv6.ICMPNeighborAdvert)
	h.inject(t, ndPeer, group, 255, nil, neighborSolicit(v6A.Addr(), false))
	na := h.next(t, ipv6.ICMPNeighborAdvert)
	if na.Dst() != ndPeer || h.s.Stats().NDP.SolicitsUnanswered.Load() != 1 {
		t.Fatalf("known solicitor: answer to %v, %d unanswered; want %v, 1", na.Dst(), h.s.Stats().NDP.SolicitsUnanswered.Load(), ndPeer)
	}
}

// linkAddr returns nd's link-layer address option typ.
func linkAddr(nd ipv6.NDP, typ uint8) (ethernet.MAC, bool) {
	o, ok := nd.Options().Find(typ)
	if !ok {
		return ethernet.MAC{}, false
	}
	mac, ok := o.LinkAddr()
	return ethernet.MAC(mac), ok
}

// TestNeighborEntriesFromSolicitsNotAdverts checks RFC 4861 §7.2.3 and
// §7.2.5 as Linux applies them: a solicitation from a unicast address
// with its link-layer address makes a stale entry (no proof the solicitor
// hears us), and an advertisement nobody asked for makes none.
func TestNeighborEntriesFromSolicitsNotAdverts(t *testing.T) {
	h := newNDHost(t, stack.IPv6Options{DADTransmits: -1}, v6A)
	stranger := netip.MustParseAddr("2001:db8::77")
	h.inject(t, stranger, v6A.Addr(), 255, nil, neighborAdvert(stranger, ipv6.NAFlagSolicited|ipv6.NAFlagOverride))
	h.inject(t, stranger, ipv6.AllNodes, 255, nil, neighborAdvert(stranger, ipv6.NAFlagOverride))
	h.waitStat(t, "NDP.AdvertsReceived", 2)
	if e, ok := h.nic.NeighborCache().Lookup(stranger); ok {
		t.Fatalf("unsolicited advertisements made an entry: %+v", e)
	}
	h.inject(t, ndPeer, ipv6.SolicitedNode(v6A.Addr()), 255, nil, neighborSolicit(v6A.Addr(), true))
	h.next(t, ipv6.ICMPNeighborAdvert)
	// Stale, then used by our answer: Delay, as `ip -6 neigh` shows on
	// Linux. A reachable entry would have stayed reachable.
	if e, ok := h.nic.NeighborCache().Lookup(ndPeer); !ok || e.MAC != ndPeerMAC || e.State != neigh.Delay {
		t.Fatalf("solicitor's entry %+v %v, want %v delay", e, ok, ndPeerMAC)
	}
}

// TestNeighborAdvertFlags checks RFC 4861 §7.2.5 through the table: an
// unsolicited override moves a known neighbour to a new address and makes
// it stale; one without Override does not change the address.
func TestNeighborAdvertFlags(t *testing.T) {
	h := newNDHost(t, stack.IPv6Options{DADTransmits: -1}, v6A)
	h.inject(t, ndPeer, v6A.Addr(), 255, nil, neighborSolicit(v6A.Addr(), true))
	h.next(t, ipv6.ICMPNeighborAdvert)
	other := neighborAdvert(ndPeer, 0)
	copy(other[len(other)-6:], []byte{0x02, 0, 0, 0, 0, 0x99})
	h.inject(t, ndPeer, v6A.Addr(), 255, nil, other)
	h.waitStat(t, "NDP.AdvertsReceived", 1)
	if e, _ := h.nic.NeighborCache().Lookup(ndPeer); e.MAC != ndPeerMAC {
		t.Fatalf("an advertisement without Override changed the address to %v", e.MAC)
	}
	other = neighborAdvert(ndPeer, ipv6.NAFlagOverride)
	copy(other[len(other)-6:], []byte{0x02, 0, 0, 0, 0, 0x99})
	h.inject(t, ndPeer, v6A.Addr(), 255, nil, other)
	h.waitStat(t, "NDP.AdvertsReceived", 2)
	if e, _ := h.nic.NeighborCache().Lookup(ndPeer); e.MAC != (ethernet.MAC{0x02, 0, 0, 0, 0, 0x99}) || e.State != neigh.Stale {
		t.Fatalf("after an unsolicited override: %+v, want the new address, stale", e)
	}
}

// TestMLDWithoutRouterAlertDropped checks RFC 3810 §5 and §6.2: a query
// without a Router Alert option is dropped and counted; with one it is
// taken.
func TestMLDWithoutRouterAlertDropped(t *testing.T) {
	h := newNDHost(t, stack.IPv6Options{DADTransmits: -1}, v6A)
	router := netip.MustParseAddr("fe80::1")
	query := func() []byte {
		b := make([]byte, 64)
		q := ipv6.MLDv2Query{MaxRespCode: 1, QRV: 2, QQIC: 125}
		return b[:q.Put(b)]
	}
	h.inject(t, router, ipv6.AllNodes, 1, nil, query())
	h.waitStat(t, "ICMPv6.MLDBadIPHeader", 1)
	hbh := make([]byte, ipv6.RouterAlertHopByHopLen)
	ipv6.PutRouterAlertHopByHop(hbh, ipv6.ProtocolICMPv6, ipv6.RouterAlertMLD)
	h.inject(t, router, ipv6.AllNodes, 1, hbh, query())
	h.waitStat(t, "MLD.Queries", 1)
	if got := h.s.Stats().ICMPv6.MLDBadIPHeader.Load(); got != 1 {
		t.Fatalf("MLDBadIPHeader = %d after a proper query, want 1", got)
	}
}

// TestStableLinkLocalDADRetry: a duplicate RFC 7217 link-local address
// is formed again with the next DAD counter after a second (RFC 7217 §6).
func TestStableLinkLocalDADRetry(t *testing.T) {
	secret := []byte("0123456789abcdef")
	h := newNDHost(t, stack.IPv6Options{StableSecret: secret})
	name := h.nic.Name()
	id0, c0 := ipv6.StableInterfaceID(ipv6.LinkLocalPrefix, name, 0, secret)
	ll0 := ipv6.AddrFromPrefix(ipv6.LinkLocalPrefix, id0)
	if ns := h.next(t, ipv6.ICMPNeighborSolicit); !ns.Src().IsUnspecified() {
		t.Fatalf("DAD probe from %v", ns.Src())
	}
	h.inject(t, ll0, ipv6.AllNodes, 255, nil, neighborAdvert(ll0, ipv6.NAFlagOverride))
	h.waitStat(t, "NDP.DADConflicts", 1)
	h.clk.Advance(time.Second) // idgen_delay: the retry starts its DAD
	h.clk.Advance(time.Second) // and ends it
	id1, _ := ipv6.StableInterfaceID(ipv6.LinkLocalPrefix, name, c0+1, secret)
	want := ipv6.AddrFromPrefix(ipv6.LinkLocalPrefix, id1)
	if got, ok := h.nic.LinkLocalAddress(); !ok || got != want {
		t.Fatalf("link-local address %v (%v), want %v with DAD counter %d", got, ok, want, c0+1)
	}
	if h.s.Stats().NDP.DADRetries.Load() != 1 {
		t.Errorf("DADRetries = %d, want 1", h.s.Stats().NDP.DADRetries.Load())
	}
}

// TestDefaultRouterList checks RFC 4861 §6.3.6 and §7.2.5: two routers
// advertise; the default route goes through the first, and moves to the
// second when the first says it is no longer a router.
func TestDefaultRouterList(t *testing.T) {
	h := newNDHost(t, stack.IPv6Options{AcceptRA: true, DADTransmits: -1}, v6A)
	r1, r2 := netip.MustParseAddr("fe80::1"), netip.MustParseAddr("fe80::2")
	ra := func() []byte {
		b := make([]byte, 64)
		l := ipv6.PutRouterAdvert(b, ipv6.RouterAdvertFields{RouterLifetime: 1800 * time.Second})
		l += ipv6.PutLinkAddrOption(b[l:], ipv6.OptSourceLinkAddr, ndPeerMAC)
		return b[:l]
	}
	h.inject(t, r1, ipv6.AllNodes, 255, nil, ra())
	h.inject(t, r2, ipv6.AllNodes, 255, nil, ra())
	h.waitStat(t, "NDP.RouterAdverts", 2)
	if got := h.nic.DefaultRouters(); len(got) != 2 || got[0] != r1 || got[1] != r2 {
		t.Fatalf("default routers %v, want [%v %v]", got, r1, r2)
	}
	na := neighborAdvert(r1, ipv6.NAFlagOverride) // R clear: no longer a router
	h.inject(t, r1, v6A.Addr(), 255, nil, na)
	h.waitStat(t, "NDP.AdvertsReceived", 1)
	if got := h.nic.DefaultRouters(); len(got) != 1 || got[0] != r2 {
		t.Fatalf("default routers after %v stopped routing: %v, want [%v]", r1, got, r2)
	}
	r, err := h.s.FindRoute(h.nic.ID(), netip.Addr{}, netip.MustParseAddr("2001:db8:ffff::1"))
	if err != nil || r.NextHop != r2 {
		t.Fatalf("route to an off-link address: next hop %v, %v; want %v", r.NextHop, err, r2)
	}
	h.clk.Advance(1800 * time.Second)
	if got := h.nic.DefaultRouters(); len(got) != 0 {
		t.Fatalf("default routers after their lifetime: %v", got)
	}
}

// TestIPv6OffBelowMinMTU checks Linux's addrconf rule: a link whose MTU
// is below IPv6's 1280 gets no IPv6 (no link-local address, no neighbour
// table, no IPv6 addresses, IPv6 frames dropped), counted; IPv4 still
// runs and SetMTU takes IPv4's minimum. At 1280 IPv6 runs.
func TestIPv6OffBelowMinMTU(t *testing.T) {
	for _, mtu := range []int{1279, 1280} {
		la, lb := tap.Pipe(tap.PipeOptions{MTU: mtu})
		s := stack.New(stack.Options{})
		nic, err := s.AddNIC(la, stack.NICOptions{Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")},
			IPv6: stack.IPv6Options{DADTransmits: -1}})
		if err != nil {
			t.Fatal(err)
		}
		ll, _ := nic.LinkLocalAddress()
		v6err := nic.AddAddress(v6A)
		on := mtu >= ipv6.MinMTU
		if got := ll.IsValid(); got != on || (nic.NeighborCache() != nil) != on || (v6err == nil) != on {
			t.Errorf("MTU %d: link-local %v, neighbour table %v, AddAddress(%v) = %v; want IPv6 %v",
				mtu, ll, nic.NeighborCache() != nil, v6A, v6err, on)
		}
		wantCount := map[bool]uint64{true: 0, false: 1}[on]
		if got := s.Stats().IPv6.LinkMTUTooSmall.Load(); got != wantCount {
			t.Errorf("MTU %d: IPv6.LinkMTUTooSmall %d, want %d", mtu, got, wantCount)
		}
		if err := nic.SetMTU(600); (err == nil) == on {
			t.Errorf("MTU %d: SetMTU(600) = %v with IPv6 %v", mtu, err, on)
		}
		s.Close()
		lb.Close()
	}
}
