package stack_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
	"net/netip"
	"syscall"
	"testing"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/udpsock"
	"github.com/tapnet/tapnet/stack"
)

// relGoodDelta is what one well-formed datagram to an open port changes.
var relGoodDelta = map[string]uint64{
	"Link.RxFrames": 1, "IP.Received": 1, "IP.Delivered": 1, "UDP.Received": 1, "UDP.Delivered": 1,
}

func relWith(base map[string]uint64, kv ...any) map[string]uint64 {
	m := maps.Clone(base)
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = uint64(kv[i+1].(int))
	}
	return m
}

// relBadIP returns the peer's UDP datagram to port 7 as an IP packet, passed
// through mutate and then, when fix is set, given a correct header checksum.
func relBadIP(fix bool, mutate func(p []byte) []byte) []byte {
	p := relIPv4(relIP{ttl: 64, proto: 17, id: 7, src: relPeerIP, dst: relOurIP,
		payload: relUDP(relPeerIP, relOurIP, 5000, 7, []byte("bad"))})
	p = mutate(p)
	if fix {
		relFixIPChecksum(p)
	}
	return relEther(relOurMAC, relPeerMAC, ethernet.TypeIPv4, p)
}

// relFrom returns the peer's datagram to port 7 rewritten with other
// addresses (checksums fixed), carried to our MAC.
func relFrom(src, dst netip.Addr, dport uint16, ttl uint8) []byte {
	p := relIPv4(relIP{ttl: ttl, proto: 17, id: 8, src: src, dst: dst,
		payload: relUDP(src, dst, 5000, dport, []byte("bad"))})
	return relEther(relOurMAC, relPeerMAC, ethernet.TypeIPv4, p)
}

// relUDPRaw carries a hand-made UDP header and payload from the peer.
func relUDPRaw(dst netip.Addr, u []byte) []byte {
	p := relIPv4(relIP{ttl: 64, proto: 17, id: 9, src: relPeerIP, dst: dst, payload: u})
	ethDst := relOurMAC
	if dst == relBcastIP {
		ethDst = ethernet.Broadcast
	}
	return relEther(ethDst, relPeerMAC, ethernet.TypeIPv4, p)
}

func relARPMut(mutate func(p []byte) []byte) []byte {
	f := relARP(1, relPeerMAC, relPeerIP, ethernet.MAC{}, relOurIP, ethernet.Broadcast)
	p := mutate(f[14:])
	return append(f[:14:14], p...)
}

func relICMPFrame(m []byte) []byte {
	return relEther(relOurMAC, relPeerMAC, ethernet.TypeIPv4,
		relIPv4(relIP{ttl: 64, proto: 1, id: 10, src: relPeerIP, dst: relOurIP, payload: m}))
}

// TestMalformedInput injects one bad frame per case and checks the exact
// counters it moves, that nothing reaches the socket, and that a good
// datagram right after is delivered.
func TestMalformedInput(t *testing.T) {
	e := newRelEnv(t, stack.Options{})
	ep := e.listen(netip.Addr{}, 7)
	lo := e.listen(netip.MustParseAddr("127.0.0.1"), 8)

	goodUDP := relUDP(relPeerIP, relOurIP, 5000, 7, []byte("hello"))
	unknownProto := relIPv4(relIP{ttl: 64, proto: 253, id: 11, src: relPeerIP, dst: relOurIP, payload: []byte("experimental")})
	closedPort := relIPv4(relIP{ttl: 64, proto: 17, id: 12, src: relPeerIP, dst: relOurIP,
		payload: relUDP(relPeerIP, relOurIP, 5000, 9, []byte("closed"))})

	type tcase struct {
		name  string
		frame []byte
		want  map[string]uint64 // the exact counter changes
		data  []byte            // delivered to port 7, if the frame is good
		// sent checks the frames the stack answered with (nil: none).
		sent func(t *testing.T, s relSent)
	}
	drop := func(kv ...any) map[string]uint64 { return relWith(map[string]uint64{"Link.RxFrames": 1}, kv...) }
	ipDrop := func(k string) map[string]uint64 { return drop("IP.Received", 1, k, 1) }
	udpDrop := func(k string) map[string]uint64 {
		return drop("IP.Received", 1, "IP.Delivered", 1, "UDP.Received", 1, k, 1)
	}
	icmpDrop := func(k string) map[string]uint64 {
		return drop("IP.Received", 1, "IP.Delivered", 1, "ICMP.Received", 1, k, 1)
	}
	arpDrop := func(k string) map[string]uint64 { return drop("ARP.Received", 1, k, 1) }
	icmpError := func(code uint8, quoted []byte) func(t *testing.T, s relSent) {
		return func(t *testing.T, s relSent) {
			if s.proto != 1 || s.dst != relPeerIP || s.src != relOurIP || s.ethDst != relPeerMAC {
				t.Fatalf("answer: proto %d %v -> %v (MAC %v), want ICMP from us to the peer", s.proto, s.src, s.dst, s.ethDst)
			}
			if s.l4[0] != 3 || s.l4[1] != code {
				t.Fatalf("ICMP %d/%d, want 3/%d", s.l4[0], s.l4[1], code)
			}
			if !bytes.Equal(s.l4[8:], quoted) {
				t.Fatalf("ICMP quotes %x, want the offending packet %x", s.l4[8:], quoted)
			}
		}
	}
	noICMP := relWith(udpDrop("UDP.NoPort"))

	cases := []tcase{
		// Ethernet.
		{name: "empty frame", frame: []byte{}, want: drop("Link.Runts", 1)},
		{name: "runt of 13 bytes", frame: relUDPFrame(relPeerIP, relOurIP, 5000, 7, nil)[:13], want: drop("Link.Runts", 1)},
		{name: "Ethernet header alone", frame: relEther(relOurMAC, relPeerMAC, ethernet.TypeIPv4, nil), want: ipDrop("IP.TooShort")},
		{name: "EtherType IPv6", frame: relEther(relOurMAC, relPeerMAC, 0x86dd, goodUDP), want: drop("Link.UnknownEtherType", 1)},
		{name: "EtherType VLAN", frame: relEther(relOurMAC, relPeerMAC, 0x8100, goodUDP), want: drop("Link.UnknownEtherType", 1)},
		{name: "802.3 length instead of type", frame: relEther(relOurMAC, relPeerMAC, 46, goodUDP), want: drop("Link.UnknownEtherType", 1)},
		{name: "unicast to another MAC", frame: relEther(ethernet.MAC{0x02, 0, 0, 0, 0, 0x99}, relPeerMAC, ethernet.TypeIPv4,
			relIPv4(relIP{ttl: 64, proto: 17, src: relPeerIP, dst: relOurIP, payload: goodUDP})), want: drop("Link.OtherHost", 1)},

		// IPv4 header.
		{name: "IP truncated to 19 bytes", frame: relBadIP(false, func(p []byte) []byte { return p[:19] }), want: ipDrop("IP.TooShort")},
		{name: "version 6", frame: relBadIP(true, func(p []byte) []byte { p[0] = 0x65; return p }), want: ipDrop("IP.BadVersion")},
		{name: "version 0", frame: relBadIP(true, func(p []byte) []byte { p[0] = 0x05; return p }), want: ipDrop("IP.BadVersion")},
		{name: "IHL 4", frame: relBadIP(false, func(p []byte) []byte { p[0] = 0x44; return p }), want: ipDrop("IP.BadHeaderLen")},
		{name: "IHL 0", frame: relBadIP(false, func(p []byte) []byte { p[0] = 0x40; return p }), want: ipDrop("IP.BadHeaderLen")},
		{name: "IHL beyond the packet", frame: relBadIP(false, func(p []byte) []byte { p[0] = 0x4f; return p }), want: ipDrop("IP.TooShort")},
		{name: "total length beyond the frame", frame: relBadIP(true, func(p []byte) []byte {
			binary.BigEndian.PutUint16(p[2:], uint16(len(p)+1))
			return p
		}), want: ipDrop("IP.BadTotalLen")},
		{name: "total length below the header", frame: relBadIP(true, func(p []byte) []byte {
			binary.BigEndian.PutUint16(p[2:], 19)
			return p
		}), want: ipDrop("IP.BadTotalLen")},
		{name: "total length zero", frame: relBadIP(true, func(p []byte) []byte {
			binary.BigEndian.PutUint16(p[2:], 0)
			return p
		}), want: ipDrop("IP.BadTotalLen")},
		{name: "total length below header with options", frame: relBadIP(false, func(p []byte) []byte {
			q := relIPv4(relIP{ttl: 64, proto: 17, src: relPeerIP, dst: relOurIP, opts: []byte{1, 1, 1, 0}, payload: p[20:]})
			binary.BigEndian.PutUint16(q[2:], 22)
			relFixIPChecksum(q)
			return q
		}), want: ipDrop("IP.BadTotalLen")},
		{name: "bad header checksum", frame: relBadIP(false, func(p []byte) []byte { p[10] ^= 0x40; return p }), want: ipDrop("IP.BadChecksum")},
		{name: "fragment reaching past 65535", frame: relBadIP(true, func(p []byte) []byte {
			binary.BigEndian.PutUint16(p[6:], 8191) // offset 65528, 11 bytes of payload
			return p
		}), want: ipDrop("IP.BadFragment")},
		{name: "source 0.0.0.0", frame: relFrom(netip.IPv4Unspecified(), relOurIP, 7, 64), want: ipDrop("IP.MartianSource")},
		{name: "source loopback", frame: relFrom(netip.MustParseAddr("127.0.0.1"), relOurIP, 7, 64), want: ipDrop("IP.MartianSource")},
		{name: "source multicast", frame: relFrom(relGroup, relOurIP, 7, 64), want: ipDrop("IP.MartianSource")},
		{name: "source limited broadcast", frame: relFrom(relLimited, relOurIP, 7, 64), want: ipDrop("IP.MartianSource")},
		{name: "source subnet broadcast", frame: relFrom(relBcastIP, relOurIP, 7, 64), want: ipDrop("IP.MartianSource")},
		{name: "source is our address", frame: relFrom(relOurIP, relOurIP, 7, 64), want: ipDrop("IP.MartianSource")},
		{name: "TTL 0", frame: relFrom(relPeerIP, relOurIP, 7, 0), want: ipDrop("IP.ZeroTTL")},
		{name: "destination another host", frame: relFrom(relPeerIP, netip.MustParseAddr("192.0.2.99"), 7, 64), want: ipDrop("IP.NotForUs")},
		{name: "destination off-link", frame: relFrom(relPeerIP, relOffLink, 7, 64), want: ipDrop("IP.NotForUs")},
		{name: "group not joined", frame: relFrom(relPeerIP, relGroup, 7, 64), want: ipDrop("IP.NotForUs")},
		{name: "unknown protocol", frame: relEther(relOurMAC, relPeerMAC, ethernet.TypeIPv4, unknownProto),
			want: drop("IP.Received", 1, "IP.Delivered", 1, "IP.UnknownProtocol", 1,
				"ICMP.ErrorsSent", 1, "IP.Sent", 1, "Link.TxFrames", 1),
			sent: icmpError(2, unknownProto)},
		{name: "unknown protocol to broadcast", frame: relEther(ethernet.Broadcast, relPeerMAC, ethernet.TypeIPv4,
			relIPv4(relIP{ttl: 64, proto: 253, src: relPeerIP, dst: relBcastIP, payload: []byte("x")})),
			want: drop("IP.Received", 1, "IP.Delivered", 1, "IP.UnknownProtocol", 1)},

		// UDP.
		{name: "UDP bad checksum", frame: relUDPRaw(relOurIP, func() []byte {
			u := relUDP(relPeerIP, relOurIP, 5000, 7, []byte("bad"))
			u[8] ^= 1
			return u
		}()), want: udpDrop("UDP.ChecksumErrors")},
		{name: "UDP checksum 0xffff for a zero sum is fine, a swapped one is not", frame: relUDPRaw(relOurIP, func() []byte {
			u := relUDP(relPeerIP, relOurIP, 5000, 7, []byte("bad"))
			u[6], u[7] = u[7], u[6]
			return u
		}()), want: udpDrop("UDP.ChecksumErrors")},
		{name: "UDP length beyond the IP payload", frame: relUDPRaw(relOurIP, func() []byte {
			u := relUDP(relPeerIP, relOurIP, 5000, 7, []byte("bad"))
			binary.BigEndian.PutUint16(u[4:], uint16(len(u)+1))
			return u
		}()), want: udpDrop("UDP.Malformed")},
		{name: "UDP length below 8", frame: relUDPRaw(relOurIP, func() []byte {
			u := relUDP(relPeerIP, relOurIP, 5000, 7, []byte("bad"))
			binary.BigEndian.PutUint16(u[4:], 7)
			return u
		}()), want: udpDrop("UDP.Malformed")},
		{name: "UDP length 0", frame: relUDPRaw(relOurIP, func() []byte {
			u := relUDP(relPeerIP, relOurIP, 5000, 7, []byte("bad"))
			binary.BigEndian.PutUint16(u[4:], 0)
			return u
		}()), want: udpDrop("UDP.Malformed")},
		{name: "UDP header truncated", frame: relUDPRaw(relOurIP, []byte{0x13, 0x88, 0, 7}), want: udpDrop("UDP.Malformed")},
		{name: "UDP empty IP payload", frame: relUDPRaw(relOurIP, nil), want: udpDrop("UDP.Malformed")},
		{name: "UDP to a closed port", frame: relEther(relOurMAC, relPeerMAC, ethernet.TypeIPv4, closedPort),
			want: relWith(udpDrop("UDP.NoPort"), "ICMP.ErrorsSent", 1, "IP.Sent", 1, "Link.TxFrames", 1),
			sent: icmpError(3, closedPort)},
		{name: "UDP to a closed port at the subnet broadcast", frame: relUDPFrame(relPeerIP, relBcastIP, 5000, 9, []byte("b")), want: noICMP},

		// ICMP.
		{name: "ICMP bad checksum", frame: relICMPFrame(func() []byte {
			m := relICMP(8, 0, 0x01020304, []byte("ping"))
			m[2] ^= 0x10
			return m
		}()), want: icmpDrop("ICMP.BadChecksum")},
		{name: "ICMP truncated", frame: relICMPFrame([]byte{8, 0, 0xf7, 0xff}), want: icmpDrop("ICMP.Malformed")},
		{name: "ICMP empty", frame: relICMPFrame(nil), want: icmpDrop("ICMP.Malformed")},

		// ARP.
		{name: "ARP truncated", frame: relARPMut(func(p []byte) []byte { return p[:27] }), want: arpDrop("ARP.Malformed")},
		{name: "ARP hardware length 8", frame: relARPMut(func(p []byte) []byte { p[4] = 8; return p }), want: arpDrop("ARP.Malformed")},
		{name: "ARP protocol length 16", frame: relARPMut(func(p []byte) []byte { p[5] = 16; return p }), want: arpDrop("ARP.Malformed")},
		{name: "ARP hardware type 6", frame: relARPMut(func(p []byte) []byte { p[1] = 6; return p }), want: arpDrop("ARP.Malformed")},
		{name: "ARP protocol IPv6", frame: relARPMut(func(p []byte) []byte { p[2], p[3] = 0x86, 0xdd; return p }), want: arpDrop("ARP.Malformed")},
		{name: "ARP operation 3", frame: relARPMut(func(p []byte) []byte { p[7] = 3; return p }), want: arpDrop("ARP.Malformed")},
		{name: "ARP operation 0", frame: relARPMut(func(p []byte) []byte { p[7] = 0; return p }), want: arpDrop("ARP.Malformed")},
		{name: "ARP request for another host", frame: relARP(1, relPeerMAC, relPeerIP, ethernet.MAC{}, netip.MustParseAddr("192.0.2.50"), ethernet.Broadcast),
			want: relWith(arpDrop("ARP.NotForUs"), "ARP.Updates", 1)}, // the known sender is refreshed
		{name: "ARP from a multicast MAC", frame: relARP(1, ethernet.MAC{0x01, 0, 0x5e, 0, 0, 1}, netip.MustParseAddr("192.0.2.60"), ethernet.MAC{}, relOurIP, ethernet.Broadcast),
			want: arpDrop("ARP.MartianSource")},
		{name: "ARP from the broadcast MAC", frame: relARP(1, ethernet.Broadcast, netip.MustParseAddr("192.0.2.60"), ethernet.MAC{}, relOurIP, ethernet.Broadcast),
			want: arpDrop("ARP.MartianSource")},
		{name: "ARP from a loopback address", frame: relARP(1, relPeerMAC, netip.MustParseAddr("127.0.0.1"), ethernet.MAC{}, relOurIP, ethernet.Broadcast),
			want: arpDrop("ARP.MartianSource")},
		{name: "ARP from a multicast address", frame: relARP(2, relPeerMAC, relGroup, ethernet.MAC{}, relOurIP, relOurMAC),
			want: arpDrop("ARP.MartianSource")},
		{name: "ARP claiming our address", frame: relARP(2, ethernet.MAC{0x02, 0, 0, 0, 0, 0x66}, relOurIP, ethernet.MAC{}, relOurIP, ethernet.Broadcast),
			want: arpDrop("ARP.Conflicts")},

		// Unusual but valid: delivered.
		{name: "Ethernet padding", frame: func() []byte {
			f := relUDPFrame(relPeerIP, relOurIP, 5000, 7, []byte("pad"))
			for len(f) < 60 {
				f = append(f, 0xee)
			}
			return f
		}(), want: relGoodDelta, data: []byte("pad")},
		{name: "IP options", frame: relEther(relOurMAC, relPeerMAC, ethernet.TypeIPv4, relIPv4(relIP{ttl: 64, proto: 17, src: relPeerIP, dst: relOurIP,
			opts: []byte{0x94, 0x04, 0, 0, 1, 1, 1, 0}, payload: relUDP(relPeerIP, relOurIP, 5000, 7, []byte("opts"))})),
			want: relWith(relGoodDelta, "IP.WithOptions", 1), data: []byte("opts")},
		{name: "UDP without checksum", frame: relUDPRaw(relOurIP, func() []byte {
			u := relUDP(relPeerIP, relOurIP, 5000, 7, []byte("nosum"))
			u[6], u[7] = 0, 0
			return u
		}()), want: relGoodDelta, data: []byte("nosum")},
		{name: "UDP length below the IP payload", frame: relUDPRaw(relOurIP, func() []byte {
			u := relUDP(relPeerIP, relOurIP, 5000, 7, []byte("trim"))
			return append(u, "trailer"...)
		}()), want: relGoodDelta, data: []byte("trim")},
		{name: "TTL 1", frame: relEther(relOurMAC, relPeerMAC, ethernet.TypeIPv4, relIPv4(relIP{ttl: 1, proto: 17, src: relPeerIP, dst: relOurIP,
			payload: relUDP(relPeerIP, relOurIP, 5000, 7, []byte("ttl1"))})), want: relGoodDelta, data: []byte("ttl1")},
		{name: "broadcast to an open port", frame: relUDPFrame(relPeerIP, relBcastIP, 5000, 7, []byte("bcast")), want: relGoodDelta, data: []byte("bcast")},
	}

	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.s.Stats().Snapshot()
			e.link.inject(c.frame)
			after := e.s.Stats().Snapshot()
			if d := relDelta(before, after); !maps.Equal(d, c.want) {
				t.Errorf("counters moved by %s, want %s", relFormat(d), relFormat(c.want))
			}
			relCheckBalance(t, after)
			sent := e.link.take()
			switch {
			case c.sent == nil && len(sent) > 0:
				t.Errorf("stack answered with %d frame(s), first %x", len(sent), sent[0])
			case c.sent != nil && len(sent) != 1:
				t.Errorf("stack answered with %d frames, want 1", len(sent))
			case c.sent != nil:
				c.sent(t, relParseSent(t, sent[0]))
			}
			got := relRead(ep)
			switch {
			case c.data == nil && len(got) > 0:
				t.Errorf("delivered %q", got[0].data)
			case c.data != nil && (len(got) != 1 || !bytes.Equal(got[0].data, c.data)):
				t.Errorf("delivered %d datagrams %v, want %q", len(got), got, c.data)
			}
			if got := relRead(lo); len(got) > 0 {
				t.Errorf("delivered to 127.0.0.1:8: %q", got[0].data)
			}

			// A good datagram right after is delivered.
			msg := []byte{'o', 'k', byte(i)}
			before = e.s.Stats().Snapshot()
			e.link.inject(relUDPFrame(relPeerIP, relOurIP, 5000, 7, msg))
			if d := relDelta(before, e.s.Stats().Snapshot()); !maps.Equal(d, relGoodDelta) {
				t.Errorf("good frame after: counters moved by %s, want %s", relFormat(d), relFormat(relGoodDelta))
			}
			if got := relRead(ep); len(got) != 1 || !bytes.Equal(got[0].data, msg) || got[0].src != netip.AddrPortFrom(relPeerIP, 5000) {
				t.Errorf("good frame after: delivered %v", got)
			}
		})
	}
}

// TestLoopbackDestinationFromWire checks that a datagram arriving from the
// link for 127.0.0.1 is dropped, as Linux drops martian destinations: a
// socket bound to the loopback address must not be reachable from the
// network, and the stack must not answer from a loopback source.
func TestLoopbackDestinationFromWire(t *testing.T) {
	e := newRelEnv(t, stack.Options{})
	lo := e.listen(netip.MustParseAddr("127.0.0.1"), 8)
	loop := netip.MustParseAddr("127.0.0.1")
	for _, c := range []struct {
		name  string
		frame []byte
	}{
		{"to a loopback socket", relFrom(relPeerIP, loop, 8, 64)},
		{"to a closed loopback port", relFrom(relPeerIP, loop, 9, 64)},
		{"ping to loopback", relEther(relOurMAC, relPeerMAC, ethernet.TypeIPv4,
			relIPv4(relIP{ttl: 64, proto: 1, src: relPeerIP, dst: loop, payload: relICMP(8, 0, 1, []byte("lo"))}))},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := e.s.Stats().Snapshot()
			e.link.inject(c.frame)
			after := e.s.Stats().Snapshot()
			d := relDelta(before, after)
			relCheckBalance(t, after)
			if d["IP.Delivered"] != 0 || d["IP.Received"] != 1 {
				t.Errorf("counters moved by %s: want IP.Received=1 and a drop counter, no delivery", relFormat(d))
			}
			if got := relRead(lo); len(got) > 0 {
				t.Errorf("datagram from the wire delivered to 127.0.0.1:8: %q", got[0].data)
			}
			for _, f := range e.link.take() {
				s := relParseSent(t, f)
				t.Errorf("stack answered a packet to 127.0.0.1: proto %d from %v to %v", s.proto, s.src, s.dst)
			}
		})
	}
}

// TestUDPLengthBelowReassembledPayload sends a fragmented datagram whose
// UDP length field is shorter than the reassembled IP payload, reaching
// past the first fragment: like Linux (and like the unfragmented case),
// the datagram is trimmed to its UDP length, its checksum verified over
// that length only, and delivered.
func TestUDPLengthBelowReassembledPayload(t *testing.T) {
	e := newRelEnv(t, stack.Options{})
	ep := e.listen(netip.Addr{}, 7)
	data := bytes.Repeat([]byte("0123456789"), 200)                        // 2000 bytes: the UDP datagram ends in the second fragment
	u := relUDP(relPeerIP, relOurIP, 5000, 7, data)                        // length field 2008, checksum over 2008 bytes
	payload := append(bytes.Clone(u), bytes.Repeat([]byte{0xee}, 1000)...) // 1000 bytes of IP payload beyond it
	for off := 0; off < len(payload); off += 1480 {
		end := min(off+1480, len(payload))
		e.link.inject(relFrag(relPeerIP, relOurIP, 17, 4242, off, end < len(payload), payload[off:end], relOurMAC))
	}
	st := e.s.Stats()
	if st.IP.Reassembled.Load() != 1 {
		t.Fatalf("reassembled %d datagrams, want 1", st.IP.Reassembled.Load())
	}
	if got := relRead(ep); len(got) != 1 || !bytes.Equal(got[0].data, data) {
		t.Fatalf("delivered %d datagrams (UDP checksum errors %d, malformed %d), want the 2000 bytes the length field covers",
			len(got), st.UDP.ChecksumErrors.Load(), st.UDP.Malformed.Load())
	}
}

// TestICMPErrorToBroadcastIgnored sends an ICMP port unreachable to the
// subnet broadcast address, quoting a connected socket's datagram. Like
// Linux (icmp_rcv, RFC 1122 3.2.2), ICMP errors addressed to a broadcast
// or multicast address are dropped: otherwise one forged frame would reset
// that socket on every host of the link.
func TestICMPErrorToBroadcastIgnored(t *testing.T) {
	e := newRelEnv(t, stack.Options{})
	ep := e.listen(relOurIP, 5353)
	if err := ep.Connect(netip.AddrPortFrom(relPeerIP, 53)); err != nil {
		t.Fatal(err)
	}
	quoted := relIPv4(relIP{ttl: 64, proto: 17, src: relOurIP, dst: relPeerIP, payload: relUDP(relOurIP, relPeerIP, 5353, 53, nil)})
	unreach := relICMP(3, 3, 0, quoted)
	for _, dst := range []netip.Addr{relBcastIP, relLimited, relAllHost} {
		ethDst := ethernet.Broadcast
		if dst == relAllHost {
			ethDst = ethernet.MulticastIPv4(dst.As4())
		}
		e.link.inject(relEther(ethDst, relPeerMAC, ethernet.TypeIPv4,
			relIPv4(relIP{ttl: 64, proto: 1, src: relPeerIP, dst: dst, payload: unreach})))
		if _, err := ep.Read(make([]byte, 10), false, relNow); !errors.Is(err, udpsock.ErrTimeout) {
			t.Errorf("ICMP error to %v: read returned %v, want nothing pending", dst, err)
		}
	}
	if got := e.s.Stats().ICMP.ErrorsDelivered.Load(); got != 0 {
		t.Errorf("%d ICMP errors to broadcast addresses delivered to sockets", got)
	}
	// The same error sent to our address is reported.
	e.link.inject(relICMPFrame(unreach))
	if _, err := ep.Read(make([]byte, 10), false, relNow); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("ICMP error to our address: read returned %v, want ECONNREFUSED", err)
	}
}
