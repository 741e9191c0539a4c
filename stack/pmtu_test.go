package stack_test

import (
	"bytes"
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/tapnet/tapnet/internal/fakeclock"
	"github.com/tapnet/tapnet/internal/udpsock"
	"github.com/tapnet/tapnet/ipv6"
	"github.com/tapnet/tapnet/stack"
)

// sendBig writes data from ep to the peer's port 9 and returns the frames
// that left.
func (e *relEnv) sendBig(ep *udpsock.Endpoint, data []byte) [][]byte {
	e.t.Helper()
	return e.sendBigTo(ep, relPeerIP, data)
}

// sendBigTo writes data from ep to port 9 of peer and returns the frames
// that left, less the NIC's own NDP and MLD messages: on a dual-stack NIC
// its router solicitation and second unsolicited report go out at random
// within a second of its start.
func (e *relEnv) sendBigTo(ep *udpsock.Endpoint, peer netip.Addr, data []byte) [][]byte {
	e.t.Helper()
	if _, err := ep.Write(data, netip.AddrPortFrom(peer, 9), nil); err != nil {
		e.t.Fatal(err)
	}
	var frames [][]byte
	for _, f := range e.link.take() {
		if relParseSent(e.t, f).proto != ipv6.ProtocolICMPv6 {
			frames = append(frames, f)
		}
	}
	return frames
}

// fragNeeded injects an ICMP "fragmentation needed" with next-hop MTU mtu
// from the peer, quoting the first 28 bytes of ip, as a router does.
func (e *relEnv) fragNeeded(ip []byte, mtu uint16) {
	e.link.inject(relICMPFrame(relICMP(3, 4, uint32(mtu), ip[:28])))
}

// TestFragNeededLowersPathMTU: a "fragmentation needed" with MTU 1000
// about a datagram of ours makes later datagrams to that destination leave
// in fragments of at most 1000 bytes, and DF sends above 1000 bytes fail
// with EMSGSIZE, as on Linux.
func TestFragNeededLowersPathMTU(t *testing.T) {
	e := newRelEnv(t, stack.Options{})
	ep := e.listen(relOurIP, 5000)
	data := bytes.Repeat([]byte("tapnet-mtu"), 140)
	frames := e.sendBig(ep, data)
	if len(frames) != 1 {
		t.Fatalf("%d frames before any frag-needed, want 1", len(frames))
	}
	e.fragNeeded(relParseSent(t, frames[0]).ip, 1000)
	if mtu, ok := e.s.PathMTU(relPeerIP); !ok || mtu != 1000 {
		t.Fatalf("PathMTU = %d %v, want 1000", mtu, ok)
	}
	if got := e.s.Stats().ICMP.FragNeeded.Load(); got != 1 {
		t.Errorf("ICMP.FragNeeded = %d, want 1", got)
	}
	if r, err := e.s.FindRoute(0, netip.Addr{}, relPeerIP); err != nil || r.MaxPayload() != 980 {
		t.Fatalf("route MaxPayload %d (%v), want 980", r.MaxPayload(), err)
	}

	frames = e.sendBig(ep, data)
	if len(frames) != 2 {
		t.Fatalf("%d frames for 1400 bytes at path MTU 1000, want 2", len(frames))
	}
	for i, f := range frames {
		if ip := relParseSent(t, f).ip; len(ip) > 1000 {
			t.Fatalf("fragment %d is %d bytes, over the path MTU", i, len(ip))
		}
	}
	if _, payload := relReassemble(t, frames); !bytes.Equal(payload[8:], data) {
		t.Fatal("fragments do not carry the datagram")
	}
	// Another destination keeps the link's MTU.
	if mtu, ok := e.s.PathMTU(netip.MustParseAddr("192.0.2.3")); ok {
		t.Fatalf("PathMTU of another host = %d", mtu)
	}

	ep.UpdateOptions(func(o *udpsock.Options) { o.PMTUDiscovery = udpsock.PMTUDiscoveryDo })
	to := netip.AddrPortFrom(relPeerIP, 9)
	if _, err := ep.Write(data, to, nil); !errors.Is(err, syscall.EMSGSIZE) {
		t.Fatalf("DF send of 1400 bytes at path MTU 1000: %v, want EMSGSIZE", err)
	}
	if _, err := ep.Write(make([]byte, 973), to, nil); !errors.Is(err, syscall.EMSGSIZE) {
		t.Fatalf("DF send of 973 bytes at path MTU 1000: %v, want EMSGSIZE", err)
	}
	if _, err := ep.Write(make([]byte, 972), to, nil); err != nil {
		t.Fatalf("DF send of 972 bytes at path MTU 1000: %v", err)
	}
	if frames := e.link.take(); len(frames) != 1 || len(relParseSent(t, frames[0]).ip) != 1000 {
		t.Fatalf("DF send of 972 bytes: %d frames, want one of 1000 bytes", len(frames))
	}
}

// TestFragNeededReachesConnectedSocket: the path MTU is learned, and the
// error handed to the socket whose datagram was too big, also when that
// socket is connected and bound to the NIC.
func TestFragNeededReachesConnectedSocket(t *testing.T) {
	e := newRelEnv(t, stack.Options{})
	ep := e.nicBoundConn(netip.AddrPortFrom(relPeerIP, 9))
	if _, err := ep.Write(make([]byte, 1400), netip.AddrPort{}, nil); err != nil {
		t.Fatal(err)
	}
	frames := e.link.take()
	if len(frames) != 1 {
		t.Fatalf("%d frames, want 1", len(frames))
	}
	e.fragNeeded(relParseSent(t, frames[0]).ip, 1000)
	if got := e.s.Stats().ICMP.ErrorsDelivered.Load(); got != 1 {
		t.Fatalf("ICMP.ErrorsDelivered = %d, want 1", got)
	}
	if mtu, ok := e.s.PathMTU(relPeerIP); !ok || mtu != 1000 {
		t.Fatalf("PathMTU = %d %v, want 1000", mtu, ok)
	}
}

// TestFragNeededBounds: a next-hop MTU below Linux's min_pmtu counts as
// 552, and a frag-needed never raises the path MTU (above what was learned,
// or above the link's MTU), as __ip_rt_update_pmtu.
func TestFragNeededBounds(t *testing.T) {
	e := newRelEnv(t, stack.Options{})
	ep := e.listen(relOurIP, 5000)
	ip := relParseSent(t, e.sendBig(ep, make([]byte, 1400))[0]).ip

	e.fragNeeded(ip, 1600)
	if mtu, ok := e.s.PathMTU(relPeerIP); ok {
		t.Fatalf("PathMTU = %d after a frag-needed above the link MTU, want none", mtu)
	}
	e.fragNeeded(ip, 1200)
	e.fragNeeded(ip, 1300)
	if mtu, _ := e.s.PathMTU(relPeerIP); mtu != 1200 {
		t.Fatalf("PathMTU = %d after 1200 then 1300, want 1200", mtu)
	}
	for _, small := range []uint16{300, 0} {
		e.fragNeeded(ip, small)
		if mtu, _ := e.s.PathMTU(relPeerIP); mtu != 552 {
			t.Fatalf("PathMTU = %d after a frag-needed of %d, want 552", mtu, small)
		}
	}
	frames := e.sendBig(ep, make([]byte, 1400))
	for i, f := range frames {
		if ip := relParseSent(t, f).ip; len(ip) > 552 {
			t.Fatalf("fragment %d is %d bytes, over 552", i, len(ip))
		}
	}
}

// TestFragNeededBogusIgnored: a frag-needed that does not quote a datagram
// one of our sockets sent (another source, ports no socket has, not UDP,
// too short, a later fragment, to a broadcast) changes no path MTU.
func TestFragNeededBogusIgnored(t *testing.T) {
	e := newRelEnv(t, stack.Options{})
	e.listen(relOurIP, 5000)
	udpFrom := func(src, dst netip.Addr, sport uint16) []byte {
		return relIPv4(relIP{ttl: 64, proto: 17, src: src, dst: dst, payload: relUDP(src, dst, sport, 9, make([]byte, 1372))})
	}
	later := relIPv4(relIP{ttl: 64, proto: 17, offset: 1480, src: relOurIP, dst: relPeerIP, payload: make([]byte, 100)})
	other := netip.MustParseAddr("192.0.2.3")
	for name, ip := range map[string][]byte{
		"not our source": udpFrom(other, relPeerIP, 5000),
		"no socket":      udpFrom(relOurIP, relPeerIP, 5001),
		"not UDP":        relIPv4(relIP{ttl: 64, proto: 6, src: relOurIP, dst: relPeerIP, payload: make([]byte, 40)}),
		"later fragment": later,
		"to a broadcast": udpFrom(relOurIP, relBcastIP, 5000),
	} {
		e.fragNeeded(ip, 1000)
		if mtu, ok := e.s.PathMTU(relPeerIP); ok {
			t.Fatalf("%s: PathMTU = %d, want none", name, mtu)
		}
	}
	// A quote shorter than the IP header and ports.
	e.link.inject(relICMPFrame(relICMP(3, 4, 1000, udpFrom(relOurIP, relPeerIP, 5000)[:22])))
	if mtu, ok := e.s.PathMTU(relPeerIP); ok {
		t.Fatalf("short quote: PathMTU = %d, want none", mtu)
	}
	if got := e.s.Stats().ICMP.FragNeeded.Load(); got != 0 {
		t.Fatalf("ICMP.FragNeeded = %d, want 0", got)
	}
	// The same message quoting our datagram is believed.
	e.fragNeeded(udpFrom(relOurIP, relPeerIP, 5000), 1000)
	if mtu, _ := e.s.PathMTU(relPeerIP); mtu != 1000 {
		t.Fatalf("PathMTU = %d, want 1000", mtu)
	}
}

// TestPathMTUExpires: a learned path MTU lasts 10 minutes (Linux's
// mtu_expires), then datagrams leave whole again.
func TestPathMTUExpires(t *testing.T) {
	e := newRelEnv(t, stack.Options{})
	clock := fakeclock.New()
	stack.SetPathMTUClock(e.s, clock.Now)
	ep := e.listen(relOurIP, 5000)
	data := make([]byte, 1400)
	e.fragNeeded(relParseSent(t, e.sendBig(ep, data)[0]).ip, 1000)
	clock.Advance(10*time.Minute - time.Second)
	if frames := e.sendBig(ep, data); len(frames) != 2 {
		t.Fatalf("%d frames just before expiry, want 2", len(frames))
	}
	clock.Advance(2 * time.Second)
	if mtu, ok := e.s.PathMTU(relPeerIP); ok {
		t.Fatalf("PathMTU = %d after 10 minutes, want none", mtu)
	}
	if frames := e.sendBig(ep, data); len(frames) != 1 {
		t.Fatalf("%d frames after expiry, want the datagram whole", len(frames))
	}
}
