package stack_test

import (
	"testing"
	"time"

	"github.com/tapnet/tapnet/arp"
	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/fakeclock"
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
