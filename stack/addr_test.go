package stack_test

import (
	"errors"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"testing"

	"github.com/tapnet/tapnet/internal/udpsock"
	"github.com/tapnet/tapnet/stack"
)

var relSecondIP = netip.MustParseAddr("192.0.2.4")

func mustAdd(t testing.TB, n *stack.NIC, ps ...string) {
	t.Helper()
	for _, p := range ps {
		if err := n.AddAddress(netip.MustParsePrefix(p)); err != nil {
			t.Fatal(err)
		}
	}
}

func routeSource(t *testing.T, s *stack.Stack, remote string) netip.Addr {
	t.Helper()
	r, err := s.FindRoute(0, netip.Addr{}, netip.MustParseAddr(remote))
	if err != nil {
		t.Fatalf("FindRoute(%s): %v", remote, err)
	}
	return r.LocalAddr
}

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// A second address on a prefix is a secondary, as on Linux: the prefix
// route keeps the first address as its source. (It used to switch to the
// newest address, so replies to queries sent to the first came from the
// wrong address.)
func TestSecondaryAddressKeepsPrimarySource(t *testing.T) {
	e := newRelEnv(t, stack.Options{})
	mustAdd(t, e.nic, "192.0.2.4/24")
	if got := routeSource(t, e.s, "192.0.2.9"); got != relOurIP {
		t.Fatalf("source to 192.0.2.9 = %v, want the primary %v", got, relOurIP)
	}
	// A later address on another prefix is a primary of its own and lists
	// before the secondaries, like `ip address`.
	mustAdd(t, e.nic, "198.51.100.1/24")
	if got, want := e.nic.Addresses(), prefixes("192.0.2.1/24", "198.51.100.1/24", "192.0.2.4/24"); !slices.Equal(got, want) {
		t.Fatalf("Addresses() = %v, want %v", got, want)
	}
	if got := routeSource(t, e.s, "198.51.100.9"); got != netip.MustParseAddr("198.51.100.1") {
		t.Fatalf("source to 198.51.100.9 = %v", got)
	}
	if got := len(e.s.Routes()); got != 2 {
		t.Fatalf("%d routes, want one per prefix: %v", got, e.s.Routes())
	}
	// A connected socket binds the primary, as net.DialUDP does on Linux.
	ep := udpsock.New(e.s)
	defer ep.Close()
	if err := ep.Connect(netip.AddrPortFrom(relPeerIP, 53)); err != nil {
		t.Fatal(err)
	}
	if got := ep.LocalAddr().Addr(); got != relOurIP {
		t.Fatalf("connected socket bound %v, want %v", got, relOurIP)
	}
}

// A wildcard socket receives on every address; replying without choosing
// a source uses the route's (the primary), while a chosen source (what
// IP_PKTINFO does) answers from the address the query was sent to.
func TestWildcardReplySource(t *testing.T) {
	e := newRelEnv(t, stack.Options{})
	mustAdd(t, e.nic, "192.0.2.4/24")
	e.link.take() // its gratuitous ARP
	ep := e.listen(netip.Addr{}, 53)
	e.link.inject(relUDPFrame(relPeerIP, relSecondIP, 1234, 53, []byte("q")))
	got := relRead(ep)
	if len(got) != 1 || got[0].dst != relSecondIP {
		t.Fatalf("read %+v, want one datagram to %v", got, relSecondIP)
	}
	peer := got[0].src
	for _, c := range []struct {
		src, want netip.Addr
	}{
		{netip.Addr{}, relOurIP},
		{relSecondIP, relSecondIP},
	} {
		if _, err := ep.Write([]byte("a"), peer, &udpsock.WriteOptions{Src: c.src}); err != nil {
			t.Fatal(err)
		}
		sent := e.link.take()
		if len(sent) != 1 {
			t.Fatalf("sent %d frames", len(sent))
		}
		if p := relParseSent(t, sent[0]); p.src != c.want || p.dst != relPeerIP {
			t.Fatalf("reply with source %v went %v -> %v, want from %v", c.src, p.src, p.dst, c.want)
		}
	}
}

// Removing a primary promotes the oldest secondary of its prefix, which
// takes over the connected route (promote_secondaries=1); removing the
// last address of a prefix removes the route.
func TestRemoveAddressPromotesSecondary(t *testing.T) {
	e := newRelEnv(t, stack.Options{})
	mustAdd(t, e.nic, "192.0.2.4/24", "192.0.2.5/24", "198.51.100.1/24")
	if err := e.nic.RemoveAddress(netip.MustParsePrefix("192.0.2.1/24")); err != nil {
		t.Fatal(err)
	}
	if got := routeSource(t, e.s, "192.0.2.9"); got != relSecondIP {
		t.Fatalf("source after removing the primary = %v, want the promoted %v", got, relSecondIP)
	}
	// The promoted address goes after the other primaries.
	if got, want := e.nic.Addresses(), prefixes("198.51.100.1/24", "192.0.2.4/24", "192.0.2.5/24"); !slices.Equal(got, want) {
		t.Fatalf("Addresses() = %v, want %v", got, want)
	}
	if e.s.IsLocalAddress(relOurIP) || !e.s.IsLocalAddress(relSecondIP) {
		t.Fatal("IsLocalAddress does not follow the removal")
	}
	// The subnet broadcast stays while the prefix has an address.
	bc := e.listen(netip.Addr{}, 67)
	e.link.inject(relUDPFrame(relPeerIP, relBcastIP, 68, 67, []byte("b")))
	if got := relRead(bc); len(got) != 1 {
		t.Fatalf("broadcast delivered %d times, want 1", len(got))
	}
	// Datagrams to the removed address are no longer ours.
	before := e.s.Stats().IP.NotForUs.Load()
	e.link.inject(relUDPFrame(relPeerIP, relOurIP, 68, 67, []byte("u")))
	if e.s.Stats().IP.NotForUs.Load() != before+1 {
		t.Fatal("datagram to a removed address not counted as not for us")
	}

	for _, p := range []string{"192.0.2.5/24", "192.0.2.4/24"} {
		if err := e.nic.RemoveAddress(netip.MustParsePrefix(p)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.s.FindRoute(0, netip.Addr{}, netip.MustParseAddr("192.0.2.9")); !errors.Is(err, syscall.ENETUNREACH) {
		t.Fatalf("FindRoute to a removed prefix: %v, want ENETUNREACH", err)
	}
	if got, want := e.s.Routes(), []stack.RouteEntry{{Dst: netip.MustParsePrefix("198.51.100.0/24"), NIC: e.nic.ID()}}; len(got) != 1 || got[0].Dst != want[0].Dst || got[0].NIC != want[0].NIC {
		t.Fatalf("Routes() = %v, want %v", got, want)
	}
	before = e.s.Stats().IP.NotForUs.Load()
	e.link.inject(relUDPFrame(relPeerIP, relBcastIP, 68, 67, []byte("b")))
	if e.s.Stats().IP.NotForUs.Load() != before+1 {
		t.Fatal("broadcast of a removed prefix still accepted")
	}

	if err := e.nic.RemoveAddress(netip.MustParsePrefix("192.0.2.4/24")); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Fatalf("removing a missing address: %v, want EADDRNOTAVAIL", err)
	}
	if err := e.s.NIC(1).RemoveAddress(netip.MustParsePrefix("127.0.0.1/8")); err == nil {
		t.Fatal("lo gave up 127.0.0.1/8")
	}
	// The NIC can still send: from its remaining primary.
	if got := routeSource(t, e.s, "255.255.255.255"); got != netip.MustParseAddr("198.51.100.1") {
		t.Fatalf("broadcast source = %v", got)
	}
}

// A route that the user put in place of a connected one is left alone when
// the address goes.
func TestRemoveAddressKeepsUserRoute(t *testing.T) {
	e := newRelEnv(t, stack.Options{})
	mustAdd(t, e.nic, "198.51.100.1/24")
	dst := netip.MustParsePrefix("192.0.2.0/24")
	if err := e.s.AddRoute(stack.RouteEntry{Dst: dst, NIC: e.nic.ID()}); err != nil {
		t.Fatal(err)
	}
	if err := e.nic.RemoveAddress(netip.MustParsePrefix("192.0.2.1/24")); err != nil {
		t.Fatal(err)
	}
	if got := routeSource(t, e.s, "192.0.2.9"); got != netip.MustParseAddr("198.51.100.1") {
		t.Fatalf("source through the user's route = %v", got)
	}
}

// Overlapping prefixes of different lengths are both primaries. Connected
// destinations take the longest prefix's source; other sources (gateway,
// broadcast) are the first primary whose prefix holds the next hop, like
// Linux's inet_select_addr.
func TestOverlappingPrefixesSources(t *testing.T) {
	e := newRelEnv(t, stack.Options{})
	mustAdd(t, e.nic, "192.0.2.130/25", "192.0.2.66/26")
	if got := routeSource(t, e.s, "192.0.2.200"); got != netip.MustParseAddr("192.0.2.130") {
		t.Fatalf("source to 192.0.2.200 = %v, want the /25's", got)
	}
	if got := routeSource(t, e.s, "192.0.2.70"); got != netip.MustParseAddr("192.0.2.66") {
		t.Fatalf("source to 192.0.2.70 = %v, want the /26's", got)
	}
	if got := routeSource(t, e.s, "192.0.2.9"); got != relOurIP {
		t.Fatalf("source to 192.0.2.9 = %v, want the /24's", got)
	}
	if err := e.s.SetDefaultGateway(e.nic.ID(), netip.MustParseAddr("192.0.2.254")); err != nil {
		t.Fatal(err)
	}
	if got := routeSource(t, e.s, "198.51.100.7"); got != relOurIP {
		t.Fatalf("source through gateway 192.0.2.254 = %v, want the first matching primary %v", got, relOurIP)
	}
	// 192.0.2.127 is the /26's broadcast; .255 that of the /24 and the /25.
	for _, a := range []string{"192.0.2.127", "192.0.2.255"} {
		r, err := e.s.FindRoute(0, netip.Addr{}, netip.MustParseAddr(a))
		if err != nil || !r.Broadcast {
			t.Fatalf("FindRoute(%s) = %+v, %v: want a subnet broadcast", a, r, err)
		}
	}
	// A broadcast address shared by two prefixes outlives one of them.
	for _, p := range []string{"192.0.2.130/25", "192.0.2.66/26"} {
		if err := e.nic.RemoveAddress(netip.MustParsePrefix(p)); err != nil {
			t.Fatal(err)
		}
	}
	for a, want := range map[string]bool{"192.0.2.127": false, "192.0.2.255": true} {
		if r, err := e.s.FindRoute(0, netip.Addr{}, netip.MustParseAddr(a)); err != nil || r.Broadcast != want {
			t.Fatalf("after removing the /25 and /26, FindRoute(%s).Broadcast = %v (%v), want %v", a, r.Broadcast, err, want)
		}
	}
}

// Routes of equal length list in the order added; a route re-added through
// the same NIC replaces the old one and moves to the end.
func TestRoutesOrder(t *testing.T) {
	e := newRelEnv(t, stack.Options{})
	gw := relPeerIP
	for _, d := range []string{"198.51.100.0/24", "203.0.113.0/24", "198.51.100.0/25", "0.0.0.0/0", "198.51.100.0/24"} {
		if err := e.s.AddRoute(stack.RouteEntry{Dst: netip.MustParsePrefix(d), Gateway: gw, NIC: e.nic.ID()}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, r := range e.s.Routes() {
		got = append(got, r.Dst.String())
	}
	want := []string{"198.51.100.0/25", "192.0.2.0/24", "203.0.113.0/24", "198.51.100.0/24", "0.0.0.0/0"}
	if !slices.Equal(got, want) {
		t.Fatalf("Routes() = %v, want %v", got, want)
	}
}

// With thousands of addresses every one stays reachable, its prefix routes
// from it, and removals are exact.
func TestManyAddresses(t *testing.T) {
	e := newRelEnv(t, stack.Options{})
	ps := manyPrefixes(5000)
	for _, p := range ps {
		if err := e.nic.AddAddress(p); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < len(ps); i += 2 {
		if err := e.nic.RemoveAddress(ps[i]); err != nil {
			t.Fatal(err)
		}
	}
	for i, p := range ps {
		kept := i%2 == 1
		if e.s.IsLocalAddress(p.Addr()) != kept {
			t.Fatalf("IsLocalAddress(%v) = %v after removing every other address", p.Addr(), !kept)
		}
		peer := p.Addr().Next() // the other host of the /30
		r, err := e.s.FindRoute(0, netip.Addr{}, peer)
		switch {
		case kept && (err != nil || r.LocalAddr != p.Addr()):
			t.Fatalf("FindRoute(%v) = %v, %v; want source %v", peer, r.LocalAddr, err, p.Addr())
		case !kept && !errors.Is(err, syscall.ENETUNREACH):
			t.Fatalf("FindRoute(%v) through a removed prefix: %v, %v", peer, r.LocalAddr, err)
		}
	}
	if got := len(e.nic.Addresses()); got != 1+len(ps)/2 {
		t.Fatalf("%d addresses left", got)
	}
	if got := len(e.s.Routes()); got != 1+len(ps)/2 {
		t.Fatalf("%d routes left", got)
	}
}

// Readers on packet paths take no lock while addresses and routes change:
// under -race this checks the copy-on-write publication.
func TestAddressChangesWhileReading(t *testing.T) {
	e := newRelEnv(t, stack.Options{})
	ps := manyPrefixes(300)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			p := ps[i%len(ps)]
			e.s.IsLocalAddress(p.Addr())
			if r, err := e.s.FindRoute(0, netip.Addr{}, relPeerIP); err != nil || r.LocalAddr != relOurIP {
				t.Errorf("FindRoute(%v) = %v, %v while other prefixes change", relPeerIP, r.LocalAddr, err)
				return
			}
		}
	}()
	for round := 0; round < 3; round++ {
		for _, p := range ps {
			if err := e.nic.AddAddress(p); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range ps {
			if err := e.nic.RemoveAddress(p); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	if got := len(e.s.Routes()); got != 1 {
		t.Fatalf("%d routes left, want 1", got)
	}
}
