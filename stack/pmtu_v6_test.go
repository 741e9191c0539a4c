package stack_test

import (
	"testing"
	"time"

	"github.com/tapnet/tapnet/internal/fakeclock"
	"github.com/tapnet/tapnet/internal/udpsock"
	"github.com/tapnet/tapnet/ipv6"
	"github.com/tapnet/tapnet/stack"
)

// sendBig6 is sendBig to the IPv6 peer.
func (e *relEnv) sendBig6(ep *udpsock.Endpoint, data []byte) [][]byte {
	e.t.Helper()
	return e.sendBigTo(ep, relPeerIP6, data)
}

// packetTooBig injects a Packet Too Big with MTU mtu from the peer,
// quoting as much of ip as fits in 1280 bytes, as a router does.
func (e *relEnv) packetTooBig(ip []byte, mtu uint32) {
	quote := ip[:min(len(ip), ipv6.MinMTU-ipv6.HeaderLen-ipv6.ICMPHeaderLen)]
	e.link.inject(rel6ICMPFrame(relPeerIP6, relOurIP6, 64, ipv6.ICMPPacketTooBig, 0, mtu, quote))
}

// TestPathMTUExpires6 is TestPathMTUExpires over IPv6: a Packet Too Big
// lowers the path MTU, later datagrams leave in fragments, and after 10
// minutes (Linux's ip6_rt_mtu_expires) the entry is gone and datagrams
// leave whole again.
func TestPathMTUExpires6(t *testing.T) {
	e := newRelEnv6(t, stack.Options{})
	clock := fakeclock.New()
	stack.SetPathMTUClock(e.s, clock.Now)
	ep := e.listen6(5000)
	data := make([]byte, 1400)
	frames := e.sendBig6(ep, data)
	if len(frames) != 1 {
		t.Fatalf("%d frames before any Packet Too Big, want 1", len(frames))
	}
	e.packetTooBig(relParseSent(t, frames[0]).ip, 1300)
	if mtu, ok := e.s.PathMTU(relPeerIP6); !ok || mtu != 1300 {
		t.Fatalf("PathMTU = %d, %v after a Packet Too Big of 1300", mtu, ok)
	}
	if got := e.s.Stats().ICMPv6.PacketTooBig.Load(); got != 1 {
		t.Errorf("ICMPv6.PacketTooBig = %d, want 1", got)
	}
	clock.Advance(10*time.Minute - time.Second)
	frames = e.sendBig6(ep, data)
	if len(frames) != 2 {
		t.Fatalf("%d frames just before expiry, want 2", len(frames))
	}
	for _, f := range frames {
		if s := relParseSent(t, f); len(s.ip) > 1300 {
			t.Errorf("a %d-byte fragment under a 1300-byte path MTU", len(s.ip))
		}
	}
	clock.Advance(2 * time.Second)
	if mtu, ok := e.s.PathMTU(relPeerIP6); ok {
		t.Fatalf("PathMTU = %d after 10 minutes, want none", mtu)
	}
	if frames := e.sendBig6(ep, data); len(frames) != 1 {
		t.Fatalf("%d frames after expiry, want the datagram whole", len(frames))
	}
}
