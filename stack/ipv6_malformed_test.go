package stack_test

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/ipv6"
	"github.com/tapnet/tapnet/link"
	"github.com/tapnet/tapnet/tap"
)

// TestIPv6MalformedInput injects IPv6 packets a host must drop or answer
// and checks the counter each one moves.
func TestIPv6MalformedInput(t *testing.T) {
	la, lb := tap.Pipe(tap.PipeOptions{})
	h := newV6Host(t, la, v6A, fastDAD)
	h.bind(t, netip.Addr{}, 7)
	peer := netip.MustParseAddr("2001:db8::9")
	peerMAC := ethernet.MAC{0x02, 0, 0, 0, 0, 9}
	frame := func(src, dst netip.Addr, next uint8, payload []byte) []byte {
		b := make([]byte, ethernet.HeaderLen+ipv6.HeaderLen+len(payload))
		ethernet.PutHeader(b, h.nic.MAC(), peerMAC, ethernet.TypeIPv6)
		ipv6.Put(b[ethernet.HeaderLen:], ipv6.Fields{PayloadLen: len(payload), NextHeader: next, HopLimit: 64, Src: src, Dst: dst})
		copy(b[ethernet.HeaderLen+ipv6.HeaderLen:], payload)
		return b
	}
	udpZero := make([]byte, 12)
	binary.BigEndian.PutUint16(udpZero[0:], 5000)
	binary.BigEndian.PutUint16(udpZero[2:], 7)
	binary.BigEndian.PutUint16(udpZero[4:], 12)
	cases := []struct {
		name, counter string
		frame         []byte
	}{
		{"UDP with a zero checksum", "UDP.ZeroChecksum", frame(peer, v6A.Addr(), 17, udpZero)},
		{"unknown next header", "IPv6.UnknownProtocol", frame(peer, v6A.Addr(), 253, make([]byte, 8))},
		{"multicast source", "IPv6.MartianSource", frame(netip.MustParseAddr("ff02::1"), v6A.Addr(), 17, udpZero)},
		{"loopback destination", "IPv6.MartianDest", frame(peer, netip.IPv6Loopback(), 17, udpZero)},
		{"another host's address", "IPv6.NotForUs", frame(peer, netip.MustParseAddr("2001:db8::77"), 17, udpZero)},
		{"truncated header", "IPv6.TooShort", frame(peer, v6A.Addr(), 17, nil)[:ethernet.HeaderLen+20]},
		{"payload length past the frame", "IPv6.BadPayloadLen", func() []byte {
			f := frame(peer, v6A.Addr(), 17, udpZero)
			binary.BigEndian.PutUint16(f[ethernet.HeaderLen+4:], 500)
			return f
		}()},
		{"routing header with segments left", "IPv6.RoutingHeader", frame(peer, v6A.Addr(), ipv6.ProtocolRouting,
			[]byte{17, 0, 4, 1, 0, 0, 0, 0})},
	}
	for _, c := range cases {
		before := h.s.Stats().Snapshot()[c.counter]
		if _, err := lb.WriteFrames([]link.Frame{{Buf: c.frame, Len: len(c.frame)}}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for h.s.Stats().Snapshot()[c.counter] == before && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if got := h.s.Stats().Snapshot()[c.counter]; got != before+1 {
			t.Errorf("%s: %s moved by %d, want 1", c.name, c.counter, got-before)
		}
	}
	if h.s.Stats().ICMPv6.ErrorsSent.Load() == 0 {
		t.Error("no Parameter Problem sent for the unknown next header")
	}
}
