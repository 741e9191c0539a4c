package stack_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/tapnet/tapnet/arp"
	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/fakeclock"
	"github.com/tapnet/tapnet/neigh"
	"github.com/tapnet/tapnet/stack"
)

// TestARPLockTimeOnTheWire checks the NIC's side of Linux's locktime: a
// reply claiming the peer's address for another MAC right after the peer
// was learned is ignored, a gratuitous ARP (request or reply) moves the
// peer at once, and after LockTime a plain reply moves it too.
func TestARPLockTimeOnTheWire(t *testing.T) {
	clk := fakeclock.New()
	e := newRelEnv(t, stack.Options{ARP: arp.Config{Now: clk.Now}})
	c := e.nic.ARP()
	forged, moved, again := relMAC(0x666), relMAC(0x777), relMAC(0x888)
	mac := func() ethernet.MAC { m, _, _ := c.Lookup(relPeerIP); return m }

	e.link.inject(relARP(2, forged, relPeerIP, relOurMAC, relOurIP, relOurMAC))
	if mac() != relPeerMAC || c.Stats().LockTimeIgnored.Load() != 1 {
		t.Fatalf("forged reply within LockTime: peer at %v, ignored %d", mac(), c.Stats().LockTimeIgnored.Load())
	}
	e.link.inject(relARP(1, moved, relPeerIP, ethernet.MAC{}, relPeerIP, ethernet.Broadcast))
	if mac() != moved {
		t.Fatalf("gratuitous request: peer at %v, want %v", mac(), moved)
	}
	e.link.inject(relARP(2, again, relPeerIP, again, relPeerIP, ethernet.Broadcast))
	if mac() != again {
		t.Fatalf("gratuitous reply: peer at %v, want %v", mac(), again)
	}
	// A reply whose target MAC differs from its sender's is no
	// announcement: it waits out the lock like any other.
	e.link.inject(relARP(2, forged, relPeerIP, relOurMAC, relPeerIP, relOurMAC))
	if mac() != again {
		t.Fatalf("reply to sender's own address: peer at %v, want %v", mac(), again)
	}
	clk.Advance(1100 * time.Millisecond)
	e.link.inject(relARP(2, forged, relPeerIP, relOurMAC, relOurIP, relOurMAC))
	if mac() != forged {
		t.Fatalf("reply after LockTime: peer at %v, want %v", mac(), forged)
	}
	if sent := e.link.take(); len(sent) != 0 {
		t.Fatalf("%d frames sent in answer to replies and announcements", len(sent))
	}
}

// TestARPStaleNeighbourProbed checks Linux's neighbour unreachability
// detection on the wire: a reply to a stale peer goes out at once on its
// cached MAC, then after DelayFirstProbeTime unicast requests probe it.
// A peer that answers is reachable again; one that does not is forgotten
// after three probes, and the next reply to it is held for a broadcast
// request.
func TestARPStaleNeighbourProbed(t *testing.T) {
	for _, answers := range []bool{true, false} {
		name := map[bool]string{true: "answers", false: "gone"}[answers]
		t.Run(name, func(t *testing.T) {
			clk := fakeclock.New()
			e := newRelEnv(t, stack.Options{ARP: arp.Config{Now: clk.Now, ReachableTime: 30 * time.Second,
				AfterFunc: func(d time.Duration, f func()) neigh.Timer { return clk.AfterFunc(d, f) }}})
			c := e.nic.ARP()
			state := func() arp.State { _, st, _ := c.Lookup(relPeerIP); return st }
			ping := func(seq uint32) {
				e.link.inject(relEther(relOurMAC, relPeerMAC, ethernet.TypeIPv4,
					relIPv4(relIP{ttl: 64, proto: 1, src: relPeerIP, dst: relOurIP, payload: relICMP(8, 0, seq, []byte("nud"))})))
			}
			// sent sorts what went out: echo replies to the peer's MAC,
			// ARP requests unicast to it and broadcast.
			sent := func() (replies, unicast, broadcast int) {
				for _, f := range e.link.take() {
					s := relParseSent(t, f)
					switch {
					case s.etherType == ethernet.TypeIPv4 && s.ethDst == relPeerMAC:
						replies++
					case s.etherType == ethernet.TypeARP && s.ethDst == relPeerMAC:
						unicast++
					case s.etherType == ethernet.TypeARP && s.ethDst == ethernet.Broadcast:
						broadcast++
					default:
						t.Fatalf("unexpected frame %+v", s)
					}
				}
				return
			}
			clk.Advance(31 * time.Second)
			ping(1)
			if r, u, b := sent(); r != 1 || u+b != 0 || state() != arp.Delay {
				t.Fatalf("ping to a stale peer: %d replies, %d+%d requests, %v; want 1 reply, none, delay", r, u, b, state())
			}
			clk.Advance(5 * time.Second)
			if r, u, b := sent(); r != 0 || u != 1 || b != 0 || state() != arp.Probe {
				t.Fatalf("after DelayFirstProbeTime: %d replies, %d unicast and %d broadcast requests, %v; want one unicast probe", r, u, b, state())
			}
			if answers {
				e.link.inject(relARP(2, relPeerMAC, relPeerIP, relOurMAC, relOurIP, relOurMAC))
				clk.Advance(10 * time.Second)
				if _, u, _ := sent(); u != 0 || state() != arp.Reachable {
					t.Fatalf("after the peer answered: %d more probes, %v; want none, reachable", u, state())
				}
				return
			}
			clk.Advance(3 * time.Second)
			if _, u, _ := sent(); u != 2 || state() != 0 {
				t.Fatalf("after three probes: %d more probes, %v; want 2, no entry", u, state())
			}
			if got := e.s.Stats().ARP.Failed.Load(); got != 1 {
				t.Fatalf("ARP.Failed %d, want 1", got)
			}
			ping(2)
			if r, u, b := sent(); r != 0 || u != 0 || b != 1 {
				t.Fatalf("ping from a forgotten peer: %d replies, %d unicast and %d broadcast requests; want a broadcast request", r, u, b)
			}
		})
	}
}

// TestARPRequestSenderStaleThenProbed checks Linux's arp_process on the
// wire: the sender of a request aimed at us becomes stale, not reachable
// (neigh_event_ns), so the reply to its first packet goes out at once and
// starts Delay, and DelayFirstProbeTime later a unicast request probes
// it. tapnet made such senders reachable, and probed them only once
// ReachableTime had passed.
func TestARPRequestSenderStaleThenProbed(t *testing.T) {
	clk := fakeclock.New()
	e := newRelEnv(t, stack.Options{ARP: arp.Config{Now: clk.Now, ReachableTime: 30 * time.Second,
		AfterFunc: func(d time.Duration, f func()) neigh.Timer { return clk.AfterFunc(d, f) }}})
	c := e.nic.ARP()
	state := func() arp.State { _, st, _ := c.Lookup(relPeerIP); return st }
	if state() != arp.Stale {
		t.Fatalf("request's sender %v, want stale", state())
	}
	e.link.inject(relEther(relOurMAC, relPeerMAC, ethernet.TypeIPv4,
		relIPv4(relIP{ttl: 64, proto: 1, src: relPeerIP, dst: relOurIP, payload: relICMP(8, 0, 1, []byte("nud"))})))
	var replies, probes int
	count := func() {
		for _, f := range e.link.take() {
			s := relParseSent(t, f)
			switch {
			case s.etherType == ethernet.TypeIPv4 && s.ethDst == relPeerMAC:
				replies++
			case s.etherType == ethernet.TypeARP && s.ethDst == relPeerMAC:
				probes++
			default:
				t.Fatalf("unexpected frame %+v", s)
			}
		}
	}
	count()
	if replies != 1 || probes != 0 || state() != arp.Delay {
		t.Fatalf("ping from the requester: %d replies, %d probes, %v; want 1, 0, delay", replies, probes, state())
	}
	clk.Advance(5 * time.Second)
	count()
	if probes != 1 || state() != arp.Probe {
		t.Fatalf("after DelayFirstProbeTime: %d unicast probes, %v; want 1, probe", probes, state())
	}
}

// TestARPOverheardPacketsKeepPeerStale checks Linux's arp_process on the
// wire: a request for another host and a reply broadcast rather than sent
// to our MAC say where the peer is but not that it hears us, so its stale
// entry stays stale; only a reply unicast to us makes it reachable.
// tapnet made the peer reachable on every one of them.
func TestARPOverheardPacketsKeepPeerStale(t *testing.T) {
	e := newRelEnv(t, stack.Options{})
	c := e.nic.ARP()
	state := func() arp.State { _, st, _ := c.Lookup(relPeerIP); return st }
	if state() != arp.Stale {
		t.Fatalf("request's sender %v, want stale", state())
	}
	elsewhere := netip.MustParseAddr("192.0.2.99")
	e.link.inject(relARP(1, relPeerMAC, relPeerIP, ethernet.MAC{}, elsewhere, ethernet.Broadcast))
	if state() != arp.Stale {
		t.Fatalf("after a request for another host: %v, want stale", state())
	}
	e.link.inject(relARP(2, relPeerMAC, relPeerIP, relOurMAC, relOurIP, ethernet.Broadcast))
	if state() != arp.Stale {
		t.Fatalf("after a broadcast reply: %v, want stale", state())
	}
	e.link.inject(relARP(2, relPeerMAC, relPeerIP, relOurMAC, relOurIP, relOurMAC))
	if state() != arp.Reachable {
		t.Fatalf("after a reply unicast to us: %v, want reachable", state())
	}
	if sent := e.link.take(); len(sent) != 0 {
		t.Fatalf("%d frames sent in answer to overheard packets and replies", len(sent))
	}
}
