package stack_test

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/stack"
)

// relInjectFragmented sends the peer's UDP datagram to port 7 carrying data
// in IP fragments of size bytes (a multiple of 8).
func (e *relEnv) injectFragmented(id uint16, data []byte, size int) {
	u := relUDP(relPeerIP, relOurIP, 5000, 7, data)
	for off := 0; off < len(u); off += size {
		end := min(off+size, len(u))
		e.link.inject(relEther(relOurMAC, relPeerMAC, ethernet.TypeIPv4,
			relIPv4(relIP{ttl: 64, proto: 17, id: id, mf: end < len(u), offset: off, src: relPeerIP, dst: relOurIP, payload: u[off:end]})))
	}
}

// TestTinyFragmentsBoundedByReceiveBuffer sends datagrams of 1,900 fragments
// of 8 bytes to a socket that does not read. Each pins 1,900 link buffers;
// the receive buffer must count them, so that (like Linux) one such
// datagram is queued, the rest are dropped and counted, and the heap does
// not grow by tens of megabytes.
func TestTinyFragmentsBoundedByReceiveBuffer(t *testing.T) {
	for _, rcvbuf := range []int{0, 4 << 20} {
		e := newRelEnv(t, stack.Options{})
		ep := e.listen(netip.Addr{}, 7)
		if rcvbuf > 0 {
			ep.SetReceiveBufferSize(rcvbuf)
		}
		const sent = 12
		data := bytes.Repeat([]byte{0x3c}, 1900*8-8)
		heap := relHeap()
		before := e.s.Stats().Snapshot()
		for i := 0; i < sent; i++ {
			e.injectFragmented(uint16(100+i), data, 8)
		}
		grown := int64(relHeap()) - int64(heap)
		d := relDelta(before, e.s.Stats().Snapshot())
		t.Logf("rcvbuf %d: %d datagrams of 1900 fragments: %s; heap %+d bytes", ep.ReceiveBufferSize(), sent, relFormat(d), grown)
		relCheckBalance(t, e.s.Stats().Snapshot())
		queued, dropped := d["UDP.Delivered"], d["UDP.BufferErrors"]
		if d["IP.Reassembled"] != sent || queued+dropped != sent || ep.Drops() != dropped {
			t.Fatalf("counters %s, endpoint drops %d", relFormat(d), ep.Drops())
		}
		// A datagram pins about 1900 * 2 KiB = 4 MB: one more than fits.
		if most := uint64(ep.ReceiveBufferSize()/(4<<20) + 1); queued < 1 || queued > most {
			t.Errorf("rcvbuf %d: %d datagrams queued, want 1..%d", ep.ReceiveBufferSize(), queued, most)
		}
		// The queue may hold the buffer's worth plus one datagram; the
		// slack is a second datagram's worth.
		if limit := int64(ep.ReceiveBufferSize()) + 2*1900*2200; grown > limit {
			t.Errorf("heap grew by %d bytes for a %d-byte receive buffer", grown, ep.ReceiveBufferSize())
		}
		got := relRead(ep)
		if uint64(len(got)) != queued || !bytes.Equal(got[0].data, data) {
			t.Fatalf("read %d datagrams, %d queued", len(got), queued)
		}
	}
}

// TestMulticastLoopSharesIPID sends multicast datagrams, small and
// fragmented, with IP_MULTICAST_LOOP: the copy looped to our own sockets
// and the one on the wire are one datagram, with one IP ID.
func TestMulticastLoopSharesIPID(t *testing.T) {
	e := newRelEnv(t, stack.Options{})
	var mu sync.Mutex
	var looped []uint16
	stack.HookUDPInput(e.s, func(ip []byte) {
		mu.Lock()
		looped = append(looped, binary.BigEndian.Uint16(ip[4:]))
		mu.Unlock()
	})
	rx := e.listen(netip.Addr{}, 4000)
	if err := rx.JoinGroup(e.nic, relGroup); err != nil {
		t.Fatal(err)
	}
	tx := e.listen(netip.Addr{}, 0)
	for _, size := range []int{100, 3000} {
		e.link.take()
		mu.Lock()
		looped = nil
		mu.Unlock()
		if _, err := tx.Write(make([]byte, size), netip.AddrPortFrom(relGroup, 4000), nil); err != nil {
			t.Fatal(err)
		}
		var wire []uint16
		for _, f := range e.link.take() {
			if s := relParseSent(t, f); s.proto == 17 {
				wire = append(wire, binary.BigEndian.Uint16(s.ip[4:]))
			}
		}
		mu.Lock()
		got := slices.Clone(looped)
		mu.Unlock()
		if len(got) != 1 || len(wire) == 0 {
			t.Fatalf("%d bytes: %d looped copies, %d wire frames", size, len(got), len(wire))
		}
		for _, id := range wire {
			if id != got[0] {
				t.Errorf("%d bytes: looped copy has IP ID %#04x, wire %#04x", size, got[0], id)
			}
		}
		if d := relRead(rx); len(d) != 1 || len(d[0].data) != size {
			t.Errorf("%d bytes: looped copy not read back: %d datagrams", size, len(d))
		}
	}
}

// TestZeroSourceToBroadcast: a host without an address (a DHCP client,
// 0.0.0.0:68) broadcasts to 255.255.255.255:67 and a server bound to :67
// must get it, as on Linux. 0.0.0.0 to any other destination but
// link-local groups (or in IGMP) stays a martian, and nothing, not even an
// ICMP error, is ever sent back to 0.0.0.0.
func TestZeroSourceToBroadcast(t *testing.T) {
	e := newRelEnv(t, stack.Options{})
	dhcp := e.listen(netip.Addr{}, 67)
	zero := netip.IPv4Unspecified()
	mdns := netip.MustParseAddr("224.0.0.251")
	for _, tc := range []struct {
		name    string
		dst     netip.Addr
		dport   uint16
		deliver bool
		delta   string
	}{
		{"to the limited broadcast", relLimited, 67, true, "UDP.Delivered"},
		{"to the limited broadcast, closed port", relLimited, 68, false, "UDP.NoPort"},
		{"to a link-local group", mdns, 67, true, "UDP.Delivered"},
		{"to a routable group", relGroup, 67, false, "IP.MartianSource"},
		{"to our address", relOurIP, 67, false, "IP.MartianSource"},
		{"to our subnet broadcast", relBcastIP, 67, false, "IP.MartianSource"},
	} {
		if tc.dst == mdns {
			if err := dhcp.JoinGroup(e.nic, mdns); err != nil {
				t.Fatal(err)
			}
		}
		e.link.take()
		before := e.s.Stats().Snapshot()
		e.link.inject(relUDPFrame(zero, tc.dst, 68, tc.dport, []byte("DHCPDISCOVER")))
		d := relDelta(before, e.s.Stats().Snapshot())
		got := relRead(dhcp)
		if tc.deliver != (len(got) == 1) || d[tc.delta] != 1 {
			t.Errorf("%s: read %d datagrams, counters %s, want %s", tc.name, len(got), relFormat(d), tc.delta)
		}
		if len(got) == 1 && (got[0].src != netip.AddrPortFrom(zero, 68) || got[0].dst != tc.dst || string(got[0].data) != "DHCPDISCOVER") {
			t.Errorf("%s: read %+v", tc.name, got[0])
		}
		// Only the group join's IGMP reports, on their own timer, may go out.
		for _, f := range e.link.take() {
			if s := relParseSent(t, f); s.etherType != ethernet.TypeIPv4 || s.proto != 2 {
				t.Errorf("%s: the stack answered with EtherType %#04x protocol %d to %v", tc.name, s.etherType, s.proto, s.dst)
			}
		}
	}
	relCheckBalance(t, e.s.Stats().Snapshot())
}

// relReassemble puts the IP fragments the stack sent back together: it
// returns the first packet's header and the whole payload, checking that
// all share one ID and that the offsets leave no gap.
func relReassemble(t *testing.T, frames [][]byte) (hdr, payload []byte) {
	t.Helper()
	for i, f := range frames {
		s := relParseSent(t, f)
		ff := binary.BigEndian.Uint16(s.ip[6:])
		off, mf := int(ff&0x1fff)*8, ff&0x2000 != 0
		if i == 0 {
			hdr = s.ip[:len(s.ip)-len(s.l4)]
		} else if binary.BigEndian.Uint16(s.ip[4:]) != binary.BigEndian.Uint16(hdr[4:]) {
			t.Fatalf("fragment %d has another IP ID", i)
		}
		if off != len(payload) || mf != (i < len(frames)-1) {
			t.Fatalf("fragment %d at offset %d (MF %v) after %d bytes of %d fragments", i, off, mf, len(payload), len(frames))
		}
		payload = append(payload, s.l4...)
	}
	return hdr, payload
}

// TestLargePingAnsweredInFragments pings with 2,000 and 8,000 bytes of data
// (ping -s), as fragments: the reply is larger than the MTU too, and must
// go out fragmented rather than be dropped while counted as sent.
func TestLargePingAnsweredInFragments(t *testing.T) {
	e := newRelEnv(t, stack.Options{})
	for i, size := range []int{2000, 8000} {
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(j*7 + i)
		}
		const id, seq = 0x1234, 1
		req := relICMP(8, 0, id<<16|uint32(seq+i), data)
		before := e.s.Stats().Snapshot()
		for off := 0; off < len(req); off += 1480 {
			end := min(off+1480, len(req))
			e.link.inject(relEther(relOurMAC, relPeerMAC, ethernet.TypeIPv4,
				relIPv4(relIP{ttl: 64, proto: 1, id: uint16(700 + i), mf: end < len(req), offset: off, src: relPeerIP, dst: relOurIP, payload: req[off:end]})))
		}
		frames := e.link.take()
		d := relDelta(before, e.s.Stats().Snapshot())
		if len(frames) < 2 || d["ICMP.EchoReplies"] != 1 || d["IP.FragmentsOut"] != uint64(len(frames)) {
			t.Fatalf("ping -s %d: %d frames sent, counters %s", size, len(frames), relFormat(d))
		}
		hdr, reply := relReassemble(t, frames)
		want := relICMP(0, 0, id<<16|uint32(seq+i), data)
		if !bytes.Equal(reply, want) {
			t.Fatalf("ping -s %d: reassembled reply of %d bytes differs from the expected %d", size, len(reply), len(want))
		}
		if src, dst := netip.AddrFrom4([4]byte(hdr[12:16])), netip.AddrFrom4([4]byte(hdr[16:20])); src != relOurIP || dst != relPeerIP {
			t.Fatalf("ping -s %d: reply from %v to %v", size, src, dst)
		}
	}
	relCheckBalance(t, e.s.Stats().Snapshot())
}
