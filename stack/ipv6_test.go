package stack_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/igmp"
	"github.com/tapnet/tapnet/ipv6"
	"github.com/tapnet/tapnet/link"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
	"github.com/tapnet/tapnet/udp"
)

// v6Host is one of two stacks joined by an Ethernet pipe.
type v6Host struct {
	s    *stack.Stack
	nic  *stack.NIC
	addr netip.Addr // its 2001:db8::/64 address
	ll   netip.Addr // its link-local address

	mu    sync.Mutex
	icmp  []v6ICMP
	icmpC chan struct{}
}

type v6ICMP struct {
	src netip.Addr
	m   []byte
}

var (
	v6A = netip.MustParsePrefix("2001:db8::1/64")
	v6B = netip.MustParsePrefix("2001:db8::2/64")
)

// fastDAD runs duplicate address detection with one probe and a short
// wait, so that tests do not sit through RFC 4861's second.
var fastDAD = stack.IPv6Options{RetransTimer: 20 * time.Millisecond}

// newV6Pair returns two stacks on a pipe, at 2001:db8::1 and ::2, with
// their addresses usable.
func newV6Pair(t *testing.T, mtu int, oa, ob stack.IPv6Options) (a, b *v6Host) {
	t.Helper()
	la, lb := tap.Pipe(tap.PipeOptions{MTU: mtu})
	a = newV6Host(t, la, v6A, oa)
	b = newV6Host(t, lb, v6B, ob)
	return a, b
}

func newV6Host(t *testing.T, dev link.Device, p netip.Prefix, o stack.IPv6Options) *v6Host {
	t.Helper()
	h := &v6Host{s: stack.New(stack.Options{}), icmpC: make(chan struct{}, 1024)}
	t.Cleanup(func() { h.s.Close() })
	stack.HookICMPv6Input(h.s, func(src netip.Addr, m []byte) {
		h.mu.Lock()
		h.icmp = append(h.icmp, v6ICMP{src, bytes.Clone(m)})
		h.mu.Unlock()
		h.icmpC <- struct{}{}
	})
	var err error
	opts := stack.NICOptions{IPv6: o}
	if p.IsValid() {
		opts.Addresses = []netip.Prefix{p}
	}
	if h.nic, err = h.s.AddNIC(dev, opts); err != nil {
		t.Fatal(err)
	}
	h.addr = p.Addr()
	if p.IsValid() {
		h.wait(t, h.addr)
	}
	ll := ipv6.AddrFromPrefix(ipv6.LinkLocalPrefix, ipv6.EUI64(h.nic.MAC()))
	if o.StableSecret == nil {
		h.wait(t, ll)
	}
	h.ll, _ = h.nic.LinkLocalAddress()
	return h
}

// wait waits for DAD to finish on a.
func (h *v6Host) wait(t *testing.T, a netip.Addr) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.nic.WaitAddress(ctx, a); err != nil {
		t.Fatalf("address %v: %v", a, err)
	}
}

// nextICMP waits for an ICMPv6 message of type typ and returns it.
func (h *v6Host) nextICMP(t *testing.T, typ uint8) v6ICMP {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		h.mu.Lock()
		for i, m := range h.icmp {
			if m.m[0] == typ {
				h.icmp = append(h.icmp[:i], h.icmp[i+1:]...)
				h.mu.Unlock()
				return m
			}
		}
		h.mu.Unlock()
		select {
		case <-h.icmpC:
		case <-deadline:
			t.Fatalf("no ICMPv6 type %d arrived", typ)
		}
	}
}

// v6Endpoint is a minimal transport endpoint recording what it gets.
type v6Endpoint struct {
	pkts chan stack.Packet
	errs chan stack.ControlError
}

func newV6Endpoint() *v6Endpoint {
	return &v6Endpoint{pkts: make(chan stack.Packet, 64), errs: make(chan stack.ControlError, 64)}
}

func (e *v6Endpoint) HandlePacket(p stack.Packet) stack.Delivery {
	select {
	case e.pkts <- p:
		return stack.Delivered
	default:
		p.Payload.Release()
		return stack.ReceiveBufferFull
	}
}
func (e *v6Endpoint) HandleError(ce stack.ControlError)                         { e.errs <- ce }
func (e *v6Endpoint) AcceptMulticast(group, src netip.Addr, _ stack.NICID) bool { return true }
func (e *v6Endpoint) StackClosed()                                              {}

// bind registers a v6Endpoint on port of h's stack.
func (h *v6Host) bind(t *testing.T, local netip.Addr, port uint16) *v6Endpoint {
	t.Helper()
	ep := newV6Endpoint()
	id, err := h.s.RegisterEndpoint(udp.ProtocolNumber, stack.TransportID{LocalAddr: local, LocalPort: port}, ep, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.s.UnregisterEndpoint(udp.ProtocolNumber, id, ep) })
	return ep
}

// send sends one UDP datagram from h.
func (h *v6Host) send(t *testing.T, nic stack.NICID, to netip.AddrPort, sport uint16, data []byte) error {
	t.Helper()
	r, err := h.s.FindRoute(nic, netip.Addr{}, to.Addr())
	if err != nil {
		return err
	}
	return h.s.WriteUDP(&r, sport, to.Port(), data, stack.WriteOptions{})
}

func recvPacket(t *testing.T, ep *v6Endpoint) (stack.Packet, []byte) {
	t.Helper()
	select {
	case p := <-ep.pkts:
		b := make([]byte, p.Payload.Len())
		p.Payload.CopyTo(b)
		p.Payload.Release()
		return p, b
	case <-time.After(5 * time.Second):
		t.Fatal("no datagram arrived")
	}
	return stack.Packet{}, nil
}

// TestIPv6LinkLocalAndGlobalAddresses checks the addresses a NIC shows: its
// EUI-64 link-local address and the global one added, and lo's ::1.
func TestIPv6LinkLocalAndGlobalAddresses(t *testing.T) {
	a, _ := newV6Pair(t, 0, fastDAD, fastDAD)
	mac := a.nic.MAC()
	want := ipv6.AddrFromPrefix(ipv6.LinkLocalPrefix, ipv6.EUI64(mac))
	if a.ll != want {
		t.Fatalf("link-local %v, want %v", a.ll, want)
	}
	got := a.nic.Addresses()
	has := func(p netip.Prefix) bool {
		for _, x := range got {
			if x == p {
				return true
			}
		}
		return false
	}
	if !has(v6A) || !has(netip.PrefixFrom(want, 64)) {
		t.Fatalf("Addresses() = %v", got)
	}
	lo := a.s.NIC(1).Addresses()
	if len(lo) != 2 || lo[1] != netip.MustParsePrefix("::1/128") {
		t.Fatalf("lo addresses %v", lo)
	}
	if !a.nic.MLD().IsMember(ipv6.SolicitedNode(v6A.Addr())) || !a.nic.MLD().IsMember(ipv6.AllNodes) {
		t.Fatal("solicited-node or all-nodes group not joined")
	}
}

// TestIPv6PingLinkLocalAndGlobal pings B's link-local and global addresses
// from A: neighbour discovery resolves B, and the replies carry the data.
func TestIPv6PingLinkLocalAndGlobal(t *testing.T) {
	a, b := newV6Pair(t, 0, fastDAD, fastDAD)
	for i, dst := range []netip.Addr{b.ll, b.addr} {
		data := []byte("ping6 payload")
		if err := stack.SendICMPv6(a.s, a.nic.ID(), dst, ipv6.ICMPEchoRequest, uint32(0x1234<<16|i), data); err != nil {
			t.Fatal(err)
		}
		r := a.nextICMP(t, ipv6.ICMPEchoReply)
		m := ipv6.ICMP(r.m)
		if r.src != dst || m.EchoID() != 0x1234 || int(m.EchoSeq()) != i || !bytes.Equal(m.Body(), data) {
			t.Fatalf("reply from %v id %#x seq %d body %q", r.src, m.EchoID(), m.EchoSeq(), m.Body())
		}
	}
	if e, ok := a.nic.NeighborCache().Lookup(b.addr); !ok || e.MAC != b.nic.MAC() {
		t.Fatalf("B not in A's neighbour table: %+v %v", e, ok)
	}
}

// TestIPv6LinkLocalNeedsZone: a link-local destination without a NIC is
// EINVAL, as Linux refuses one without a scope id.
func TestIPv6LinkLocalNeedsZone(t *testing.T) {
	a, b := newV6Pair(t, 0, fastDAD, fastDAD)
	if _, err := a.s.FindRoute(0, netip.Addr{}, b.ll); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("FindRoute without a NIC: %v, want EINVAL", err)
	}
	r, err := a.s.FindRoute(a.nic.ID(), netip.Addr{}, b.ll)
	if err != nil || r.LocalAddr != a.ll {
		t.Fatalf("route %+v, %v: want source %v", r, err, a.ll)
	}
}

// TestIPv6UDPEchoSizes sends UDP datagrams of 1 to 65527 bytes from A to B
// and back: large ones fragmented both ways and reassembled.
func TestIPv6UDPEchoSizes(t *testing.T) {
	a, b := newV6Pair(t, 0, fastDAD, fastDAD)
	epA := a.bind(t, netip.Addr{}, 4000)
	epB := b.bind(t, netip.Addr{}, 7)
	for _, n := range []int{0, 1, 1232, 1452, 1453, 3000, 9000, 65527} {
		data := bytes.Repeat([]byte{byte(n)}, n)
		for i := range data {
			data[i] = byte(i * 7)
		}
		if err := a.send(t, 0, netip.AddrPortFrom(b.addr, 7), 4000, data); err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		p, got := recvPacket(t, epB)
		if !bytes.Equal(got, data) || p.Src != netip.AddrPortFrom(a.addr, 4000) || p.Dst.Addr() != b.addr || p.TTL != 64 {
			t.Fatalf("%d bytes: got %d from %v to %v hop limit %d", n, len(got), p.Src, p.Dst, p.TTL)
		}
		if err := b.send(t, 0, p.Src, 7, got); err != nil {
			t.Fatal(err)
		}
		if _, back := recvPacket(t, epA); !bytes.Equal(back, data) {
			t.Fatalf("%d bytes: echo differs", n)
		}
	}
	if err := a.send(t, 0, netip.AddrPortFrom(b.addr, 7), 4000, make([]byte, 65528)); !errors.Is(err, syscall.EMSGSIZE) {
		t.Fatalf("65528 bytes: %v, want EMSGSIZE", err)
	}
	st := b.s.Stats().Snapshot()
	if st["IPv6.Reassembled"] == 0 || st["IPv6.FragmentsOut"] == 0 {
		t.Fatalf("no fragments: %v", st)
	}
}

// TestIPv6FragmentedPing pings with 1 to 65527 bytes of data: requests and
// replies larger than the MTU travel in fragments.
func TestIPv6FragmentedPing(t *testing.T) {
	a, b := newV6Pair(t, 0, fastDAD, fastDAD)
	for _, n := range []int{1, 1452, 1453, 20000, 65527 - 8} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i)
		}
		if err := stack.SendICMPv6(a.s, 0, b.addr, ipv6.ICMPEchoRequest, 7, data); err != nil {
			t.Fatal(err)
		}
		if r := a.nextICMP(t, ipv6.ICMPEchoReply); !bytes.Equal(ipv6.ICMP(r.m).Body(), data) {
			t.Fatalf("%d bytes: reply body of %d bytes differs", n, len(r.m)-8)
		}
	}
}

// TestIPv6PortUnreachable: a datagram to a closed port is answered with
// ICMPv6 port unreachable, which the sender's connected endpoint sees as
// ECONNREFUSED, also when the endpoint is bound to the NIC the error comes
// in by (as on Linux, which looks sockets up by the incoming interface).
func TestIPv6PortUnreachable(t *testing.T) {
	a, b := newV6Pair(t, 0, fastDAD, fastDAD)
	for i, bindNIC := range []stack.NICID{0, a.nic.ID()} {
		ep := newV6Endpoint()
		sport := uint16(4001 + i)
		id := stack.TransportID{LocalAddr: a.addr, LocalPort: sport, RemoteAddr: b.addr, RemotePort: 9}
		if _, err := a.s.RegisterEndpoint(udp.ProtocolNumber, id, ep, false, bindNIC); err != nil {
			t.Fatal(err)
		}
		if err := a.send(t, 0, netip.AddrPortFrom(b.addr, 9), sport, []byte("x")); err != nil {
			t.Fatal(err)
		}
		select {
		case ce := <-ep.errs:
			if ce.Errno != syscall.ECONNREFUSED || !ce.Hard || ce.Type != ipv6.ICMPDestUnreachable || ce.From != b.addr {
				t.Fatalf("bound to NIC %d: control error %+v", bindNIC, ce)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("bound to NIC %d: no error reported", bindNIC)
		}
	}
	if got := b.s.Stats().ICMPv6.ErrorsSent.Load(); got != 2 {
		t.Fatalf("B sent %d errors, want 2", got)
	}
}

// TestIPv6PacketTooBig: a Packet Too Big lowers the path MTU to that
// destination (never below 1280), the sender's socket learns EMSGSIZE, and
// later datagrams are fragmented to fit.
func TestIPv6PacketTooBig(t *testing.T) {
	a, b := newV6Pair(t, 0, fastDAD, fastDAD)
	ep := newV6Endpoint()
	id := stack.TransportID{LocalAddr: a.addr, LocalPort: 4002, RemoteAddr: b.addr, RemotePort: 7}
	if _, err := a.s.RegisterEndpoint(udp.ProtocolNumber, id, ep, false, 0); err != nil {
		t.Fatal(err)
	}
	epB := b.bind(t, netip.Addr{}, 7)
	// B says the 1400-byte datagram A sent was too big for a 1300-byte hop.
	quoted := make([]byte, 1400)
	ipv6.Put(quoted, ipv6.Fields{PayloadLen: 1360, NextHeader: udp.ProtocolNumber, HopLimit: 64, Src: a.addr, Dst: b.addr})
	binary.BigEndian.PutUint16(quoted[40:], 4002)
	binary.BigEndian.PutUint16(quoted[42:], 7)
	if err := stack.SendICMPv6(b.s, 0, a.addr, ipv6.ICMPPacketTooBig, 1300, quoted[:1232-8]); err != nil {
		t.Fatal(err)
	}
	select {
	case ce := <-ep.errs:
		if ce.Errno != syscall.EMSGSIZE || ce.Info != 1300 {
			t.Fatalf("control error %+v", ce)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no error reported")
	}
	if mtu, ok := a.s.PathMTU(b.addr); !ok || mtu != 1300 {
		t.Fatalf("path MTU %d %v, want 1300", mtu, ok)
	}
	before := a.s.Stats().IPv6.FragmentsOut.Load()
	if err := a.send(t, 0, netip.AddrPortFrom(b.addr, 7), 4003, make([]byte, 1400)); err != nil {
		t.Fatal(err)
	}
	if _, got := recvPacket(t, epB); len(got) != 1400 {
		t.Fatalf("got %d bytes", len(got))
	}
	if a.s.Stats().IPv6.FragmentsOut.Load()-before != 2 {
		t.Fatal("datagram above the path MTU not fragmented")
	}
	// A PTB below IPv6's minimum MTU counts as 1280.
	if err := stack.SendICMPv6(b.s, 0, a.addr, ipv6.ICMPPacketTooBig, 500, quoted[:1232-8]); err != nil {
		t.Fatal(err)
	}
	<-ep.errs
	if mtu, _ := a.s.PathMTU(b.addr); mtu != ipv6.MinMTU {
		t.Fatalf("path MTU %d after a PTB of 500, want 1280", mtu)
	}
}

// TestIPv6DADConflict: a host configured with an address its neighbour
// already has detects the duplicate and never uses it.
func TestIPv6DADConflict(t *testing.T) {
	_, b := newV6Pair(t, 0, fastDAD, fastDAD)
	// A third port of the same link is not possible with a pipe: give B
	// A's address on a second NIC facing a fresh stack that owns it.
	la, lb := tap.Pipe(tap.PipeOptions{})
	owner := newV6Host(t, la, netip.MustParsePrefix("2001:db8:1::1/64"), fastDAD)
	_ = owner
	nic, err := b.s.AddNIC(lb, stack.NICOptions{IPv6: fastDAD})
	if err != nil {
		t.Fatal(err)
	}
	dup := netip.MustParsePrefix("2001:db8:1::1/64")
	if err := nic.AddAddress(dup); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := nic.WaitAddress(ctx, dup.Addr()); !errors.Is(err, stack.ErrDuplicateAddress) {
		t.Fatalf("WaitAddress = %v, want ErrDuplicateAddress", err)
	}
	// Asked again after the failure (as a caller who comes late does), the
	// outcome is the same, not "no such address".
	if err := nic.WaitAddress(ctx, dup.Addr()); !errors.Is(err, stack.ErrDuplicateAddress) {
		t.Fatalf("WaitAddress after the failure = %v, want ErrDuplicateAddress", err)
	}
	if b.s.IsLocalAddress(dup.Addr()) {
		t.Fatal("duplicate address assigned")
	}
	if got := b.s.Stats().NDP.DADConflicts.Load(); got != 1 {
		t.Fatalf("DADConflicts = %d", got)
	}
}

// TestIPv6RouterAdvertisement: with AcceptRA, a router advertisement gives
// a SLAAC address in its prefix, an on-link route, a default route through
// the router, its MTU and DNS servers.
func TestIPv6RouterAdvertisement(t *testing.T) {
	o := fastDAD
	o.AcceptRA = true
	router, host := newV6Pair(t, 0, fastDAD, o)
	// The host solicits routers; the "router" sends a crafted RA.
	ra := make([]byte, 200)
	l := ipv6.PutRouterAdvert(ra, ipv6.RouterAdvertFields{CurHopLimit: 77, RouterLifetime: 1800 * time.Second})
	l += ipv6.PutLinkAddrOption(ra[l:], ipv6.OptSourceLinkAddr, router.nic.MAC())
	l += ipv6.PutPrefixInfoOption(ra[l:], ipv6.PrefixInfo{Prefix: netip.MustParsePrefix("2001:db8:5::/64"),
		OnLink: true, Autonomous: true, ValidLifetime: 3600, PreferredLifetime: 1800})
	l += ipv6.PutMTUOption(ra[l:], 1400)
	dns := netip.MustParseAddr("2001:db8:5::53")
	l += ipv6.PutRDNSSOption(ra[l:], 600, []netip.Addr{dns})
	if err := stack.SendNDP(router.s, router.nic.ID(), ipv6.AllNodes, ra[:l]); err != nil {
		t.Fatal(err)
	}
	want := ipv6.AddrFromPrefix(netip.MustParsePrefix("2001:db8:5::/64"), ipv6.EUI64(host.nic.MAC()))
	for i := 0; i < 10000 && !host.s.IsLocalAddress(want); i++ {
		time.Sleep(time.Millisecond) // the advertisement is on its way, then DAD
	}
	host.wait(t, want)
	routes := host.s.Routes()
	var def, onlink bool
	for _, r := range routes {
		def = def || r.Dst.Bits() == 0 && r.Dst.Addr().Is6() && r.Gateway == router.ll
		onlink = onlink || r.Dst == netip.MustParsePrefix("2001:db8:5::/64")
	}
	if !def || !onlink {
		t.Fatalf("routes %v: default via %v %v, on-link %v", routes, router.ll, def, onlink)
	}
	r, err := host.s.FindRoute(0, netip.Addr{}, netip.MustParseAddr("2001:db8:5:1::1"))
	if err != nil || r.LocalAddr != want || r.NextHop != router.ll || r.MaxPayload() != 1400-40 {
		t.Fatalf("route off-link: %+v %v (max payload %d)", r, err, r.MaxPayload())
	}
	if got := host.nic.DNSServers(); len(got) != 1 || got[0] != dns {
		t.Fatalf("DNS servers %v", got)
	}
}

// TestIPv6RouterAdvertisementIgnoredByDefault: without AcceptRA nothing is
// configured from an advertisement.
func TestIPv6RouterAdvertisementIgnoredByDefault(t *testing.T) {
	router, host := newV6Pair(t, 0, fastDAD, fastDAD)
	ra := make([]byte, 100)
	l := ipv6.PutRouterAdvert(ra, ipv6.RouterAdvertFields{RouterLifetime: 1800 * time.Second})
	l += ipv6.PutPrefixInfoOption(ra[l:], ipv6.PrefixInfo{Prefix: netip.MustParsePrefix("2001:db8:5::/64"),
		OnLink: true, Autonomous: true, ValidLifetime: 3600, PreferredLifetime: 1800})
	if err := stack.SendNDP(router.s, router.nic.ID(), ipv6.AllNodes, ra[:l]); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for host.s.Stats().NDP.RouterAdvertsIgnored.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if host.s.Stats().NDP.RouterAdvertsIgnored.Load() != 1 || len(host.nic.Addresses()) != 2 {
		t.Fatalf("advertisement applied: %v", host.nic.Addresses())
	}
}

// TestIPv6MLDReport: joining a group sends an MLDv2 report with hop limit
// 1, a Router Alert hop-by-hop header and a link-local source, to
// ff02::16 at 33:33:00:00:00:16.
func TestIPv6MLDReport(t *testing.T) {
	la, lb := tap.Pipe(tap.PipeOptions{})
	h := newV6Host(t, la, v6A, fastDAD)
	group := netip.MustParseAddr("ff3e::4242")
	h.nic.ChangeMembership(group, stackFilterNone, stackFilterAny)
	deadline := time.After(10 * time.Second)
	for {
		frame := readFrame(t, lb, deadline)
		if ethernet.Header(frame).Type() != ethernet.TypeIPv6 {
			continue
		}
		p := frame[ethernet.HeaderLen:]
		ip := ipv6.Header(p)
		if ip.NextHeader() != ipv6.ProtocolHopByHop || ip.Src().IsUnspecified() {
			continue // not MLD, or a report sent before the link-local address was ready
		}
		ext, err := ipv6.WalkExtHeaders(p)
		if err != nil || ext.Protocol != ipv6.ProtocolICMPv6 || !ext.RouterAlert {
			t.Fatalf("MLD packet's headers: %+v %v", ext, err)
		}
		m, err := ipv6.ParseICMP(p[ext.Offset:], ip.Src(), ip.Dst())
		if err != nil || m.Type() != ipv6.ICMPMLDv2Report {
			t.Fatalf("MLD message: type %d, %v", m.Type(), err)
		}
		if ip.HopLimit() != 1 || ip.Dst() != ipv6.AllMLDv2Routers || !ip.Src().IsLinkLocalUnicast() {
			t.Fatalf("hop limit %d, %v -> %v", ip.HopLimit(), ip.Src(), ip.Dst())
		}
		mm, _ := ipv6.ParseMLD(m)
		for rec := range mm.Records() {
			if rec.Group() == group {
				return
			}
		}
	}
}

var (
	stackFilterNone = igmp.Filter{}
	stackFilterAny  = igmp.Filter{Mode: igmp.Exclude}
)

// readFrame reads the next frame from dev, failing the test at deadline.
func readFrame(t *testing.T, dev *tap.PipeEnd, deadline <-chan time.Time) []byte {
	t.Helper()
	ch := make(chan []byte, 1)
	go func() {
		fr := []link.Frame{{Buf: make([]byte, 2048)}}
		if n, err := dev.ReadFrames(fr); n == 1 && err == nil {
			ch <- fr[0].Bytes()
		}
		close(ch)
	}()
	select {
	case f, ok := <-ch:
		if !ok {
			t.Fatal("link closed")
		}
		return f
	case <-deadline:
		t.Fatal("no frame arrived")
	}
	return nil
}
