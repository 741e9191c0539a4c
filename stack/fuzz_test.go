package stack_test

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/checksum"
	"github.com/tapnet/tapnet/stack"
)

// Fuzz input: a sequence of records, each a control byte, a 2-byte big-endian
// length and that many bytes (cut short by the end of the input):
//
//	ctl bits 0-1: 0 raw Ethernet frame; 1 IPv4 packet as given, to our MAC;
//	              2 IPv4 packet repaired (see below); 3 ARP payload
//	ctl bit 2:    Ethernet destination broadcast instead of our MAC (1-3)
//	ctl bits 3-4: mode 2 addresses: keep, peer->us, peer->subnet broadcast,
//	              peer->224.0.0.1
//	ctl bit 5:    mode 2: also fix the UDP length; mode 3: force a valid
//	              Ethernet/IPv4 ARP preamble
//	ctl bit 6:    inject the frame twice
//	ctl bit 7:    FuzzStack6 only: an IPv6 record (relFuzzFrame6)
//
// Repairing (mode 2) sets version 4, a usable IHL, the total length, the
// header checksum and, for unfragmented UDP and ICMP, the transport checksum,
// so that mutations reach past the checks that would reject them.
const (
	relFuzzMaxFrames = 64
	relFuzzMaxLen    = 4096
)

// relFuzzDecode turns an input into frames; v6 makes records with bit 7
// set IPv6 ones.
func relFuzzDecode(data []byte, v6 bool) [][]byte {
	var frames [][]byte
	for len(data) >= 3 && len(frames) < relFuzzMaxFrames {
		ctl := data[0]
		n := int(binary.BigEndian.Uint16(data[1:3]))
		data = data[3:]
		n = min(n, len(data), relFuzzMaxLen)
		body := bytes.Clone(data[:n])
		data = data[n:]
		ethDst := relOurMAC
		if ctl&4 != 0 {
			ethDst = ethernet.Broadcast
		}
		var f []byte
		switch {
		case v6 && ctl&0x80 != 0:
			f = relFuzzFrame6(ctl, body)
		case ctl&3 == 0:
			f = body
		case ctl&3 == 1:
			f = relEther(ethDst, relPeerMAC, ethernet.TypeIPv4, body)
		case ctl&3 == 2:
			f = relEther(ethDst, relPeerMAC, ethernet.TypeIPv4, relFuzzRepair(body, ctl))
		default:
			if ctl&32 != 0 && len(body) >= 6 {
				copy(body, []byte{0, 1, 8, 0, 6, 4})
			}
			f = relEther(ethDst, relPeerMAC, ethernet.TypeARP, body)
		}
		frames = append(frames, f)
		if ctl&64 != 0 && len(frames) < relFuzzMaxFrames {
			frames = append(frames, f)
		}
	}
	return frames
}

func relFuzzRepair(p []byte, ctl byte) []byte {
	if len(p) < 20 {
		return p
	}
	hl := int(p[0]&0xf) * 4
	if hl < 20 || hl > len(p) {
		hl = 20
	}
	p[0] = 0x40 | byte(hl/4)
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	var src, dst netip.Addr
	switch ctl >> 3 & 3 {
	case 1:
		src, dst = relPeerIP, relOurIP
	case 2:
		src, dst = relPeerIP, relBcastIP
	case 3:
		src, dst = relPeerIP, relAllHost
	}
	if src.IsValid() {
		s, d := src.As4(), dst.As4()
		copy(p[12:], s[:])
		copy(p[16:], d[:])
	}
	relFixIPChecksum(p)
	frag := binary.BigEndian.Uint16(p[6:])&0x3fff != 0
	l4 := p[hl:]
	if frag {
		return p
	}
	switch p[9] {
	case 17:
		if len(l4) >= 8 {
			if ctl&32 != 0 {
				binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
			}
			if l := int(binary.BigEndian.Uint16(l4[4:])); l >= 8 && l <= len(l4) {
				relFixUDPChecksum(l4[:l], netip.AddrFrom4([4]byte(p[12:16])), netip.AddrFrom4([4]byte(p[16:20])))
			}
		}
	case 1:
		if len(l4) >= 8 {
			l4[2], l4[3] = 0, 0
			binary.BigEndian.PutUint16(l4[2:], checksum.Checksum(l4))
		}
	}
	return p
}

// relFuzzRecord encodes one record.
func relFuzzRecord(ctl byte, b []byte) []byte {
	r := []byte{ctl, byte(len(b) >> 8), byte(len(b))}
	return append(r, b...)
}

// relFuzzSeeds are inputs that reach every layer.
func relFuzzSeeds() [][]byte {
	raw := func(frames ...[]byte) []byte {
		var in []byte
		for _, f := range frames {
			in = append(in, relFuzzRecord(0, f)...)
		}
		return in
	}
	big := relUDP(relPeerIP, relOurIP, 5000, 7, bytes.Repeat([]byte("fragmented"), 300))
	frags := func(proto uint8, payload []byte) [][]byte {
		var fs [][]byte
		for off := 0; off < len(payload); off += 1480 {
			end := min(off+1480, len(payload))
			fs = append(fs, relFrag(relPeerIP, relOurIP, proto, 77, off, end < len(payload), payload[off:end], relOurMAC))
		}
		return fs
	}
	quoted := relIPv4(relIP{ttl: 64, proto: 17, src: relOurIP, dst: relPeerIP, payload: relUDP(relOurIP, relPeerIP, 5353, 53, nil)})
	ping := relIPv4(relIP{ttl: 64, proto: 1, src: relPeerIP, dst: relOurIP, payload: relICMP(8, 0, 1, []byte("ping"))})
	return [][]byte{
		raw(relUDPFrame(relPeerIP, relOurIP, 5000, 7, []byte("hello"))),
		raw(relUDPFrame(relPeerIP, relOurIP, 5000, 9, []byte("closed"))),
		raw(relUDPFrame(relPeerIP, relBcastIP, 5000, 67, []byte("broadcast"))),
		raw(relUDPFrame(relPeerIP, relAllHost, 5000, 7, []byte("group"))),
		raw(relEther(relOurMAC, relPeerMAC, ethernet.TypeIPv4, ping)),
		raw(relARP(1, relMAC(9), relHost(9), ethernet.MAC{}, relOurIP, ethernet.Broadcast)),
		raw(relARP(2, relMAC(9), relHost(9), relOurMAC, relOurIP, relOurMAC)),
		raw(frags(17, big)...),
		raw(frags(1, relICMP(8, 0, 2, bytes.Repeat([]byte("big ping "), 300)))...),
		raw(relICMPFrame(relICMP(3, 3, 0, quoted))),
		raw(relEther(relOurMAC, relPeerMAC, ethernet.TypeIPv4, relIPv4(relIP{ttl: 64, proto: 253, src: relPeerIP, dst: relOurIP, payload: []byte("?")}))),
		raw(relEther(relOurMAC, relPeerMAC, ethernet.TypeIPv4, relIPv4(relIP{ttl: 64, proto: 17, src: relPeerIP, dst: relOurIP,
			opts: []byte{0x94, 4, 0, 0}, payload: relUDP(relPeerIP, relOurIP, 5000, 7, []byte("options"))}))),
		raw(relFrag(relPeerIP, relOurIP, 17, 90, 0, true, big[:1480], relOurMAC)),
		append(relFuzzRecord(2|1<<3|32, relIPv4(relIP{ttl: 64, proto: 17, src: relPeerIP, dst: relOurIP,
			payload: relUDP(relPeerIP, relOurIP, 1, 7, []byte("repaired"))})),
			relFuzzRecord(3|32, relARP(1, relMAC(5), relHost(5), ethernet.MAC{}, relOurIP, ethernet.Broadcast)[14:])...),
		relFuzzRecord(2|2<<3, relIPv4(relIP{ttl: 64, proto: 1, src: relPeerIP, dst: relOurIP, payload: relICMP(8, 0, 3, nil)})),
		relFuzzRecord(1|64, ping),
	}
}

// FuzzStack injects arbitrary frames into a stack with live endpoints and
// checks: no panic; whatever the stack sends is well formed; the counters
// add up; memory stays within its limits; and the endpoints still echo.
func FuzzStack(f *testing.F) {
	for _, s := range relFuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const reasmHigh = 64 << 10
		e := newRelEnv(t, stack.Options{
			Reassembly:    stack.ReassemblyOptions{HighThresh: reasmHigh, LowThresh: reasmHigh / 2},
			ICMPRateLimit: stack.RateLimitOptions{Now: relTicking()},
		})
		echo := e.listen(netip.Addr{}, 7)
		e.listen(netip.Addr{}, 67)
		conn := e.listen(relOurIP, 5353)
		if err := conn.Connect(netip.AddrPortFrom(relPeerIP, 53)); err != nil {
			t.Fatal(err)
		}
		for _, fr := range relFuzzDecode(data, false) {
			e.link.inject(fr)
			for _, out := range e.link.take() {
				relParseSent(t, out)
			}
			if m := e.s.Stats().Reassembly.MemoryUsed.Load(); m > reasmHigh {
				t.Fatalf("reassembly holds %d bytes, limit %d", m, reasmHigh)
			}
		}
		relCheckBalance(t, e.s.Stats().Snapshot())

		// The endpoints still work: the peer (re-announced, in case the
		// input displaced it) sends a datagram to the echo port and gets
		// it back.
		e.link.inject(relARP(1, relPeerMAC, relPeerIP, ethernet.MAC{}, relOurIP, ethernet.Broadcast))
		relRead(echo)
		relRead(conn)
		e.link.take()
		e.link.inject(relUDPFrame(relPeerIP, relOurIP, 5000, 7, []byte("still alive")))
		got := relRead(echo)
		if len(got) != 1 || string(got[0].data) != "still alive" || got[0].src != netip.AddrPortFrom(relPeerIP, 5000) {
			t.Fatalf("echo endpoint read %v after the input", got)
		}
		if _, err := echo.Write(got[0].data, got[0].src, nil); err != nil {
			t.Fatalf("echo write: %v", err)
		}
		var echoed bool
		for _, out := range e.link.take() {
			s := relParseSent(t, out)
			if s.etherType == ethernet.TypeIPv4 && s.proto == 17 && s.dst == relPeerIP && s.ethDst == relPeerMAC &&
				len(s.l4) > 8 && string(s.l4[8:]) == "still alive" {
				echoed = true
			}
		}
		if !echoed {
			t.Fatal("echo reply not sent to the peer")
		}
		e.link.inject(relUDPFrame(relPeerIP, relOurIP, 53, 5353, []byte("conn")))
		if got := relRead(conn); len(got) != 1 || string(got[0].data) != "conn" {
			t.Fatalf("connected endpoint read %v", got)
		}
		relCheckBalance(t, e.s.Stats().Snapshot())
	})
}
