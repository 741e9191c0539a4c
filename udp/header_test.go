package udp

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/tapnet/tapnet/internal/checksum"
)

var (
	hdrSrc = netip.MustParseAddr("192.0.2.2")
	hdrDst = netip.MustParseAddr("198.51.100.7")
)

// hdrRefSum is the textbook one's-complement sum of the UDP pseudo-header
// and datagram, independent of the checksum package.
func hdrRefSum(src, dst netip.Addr, d []byte) uint16 {
	s4, d4 := src.As4(), dst.As4()
	var s uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			s += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			s += uint32(b[len(b)-1]) << 8
		}
	}
	add(s4[:])
	add(d4[:])
	s += ProtocolNumber + uint32(len(d))
	add(d)
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// hdrDatagram builds a datagram by hand with a correct checksum.
func hdrDatagram(sport, dport uint16, payload []byte) []byte {
	b := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(len(b)))
	copy(b[8:], payload)
	c := ^hdrRefSum(hdrSrc, hdrDst, b)
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(b[6:], c)
	return b
}

func TestParseHeader(t *testing.T) {
	good := hdrDatagram(5000, 53, []byte("query"))
	h, err := ParseHeader(good, len(good), 0, hdrSrc, hdrDst)
	if err != nil {
		t.Fatal(err)
	}
	if h.SrcPort() != 5000 || h.DstPort() != 53 || h.Length() != 13 || h.Checksum() == 0 || len(h) != HeaderLen {
		t.Fatalf("fields of %x parsed wrong", good)
	}
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrTooShort},
		{"7 bytes", good[:7], ErrTooShort},
		{"length 0", mut(func(b []byte) []byte { b[4], b[5] = 0, 0; return b }), ErrLength},
		{"length 7", mut(func(b []byte) []byte { b[4], b[5] = 0, 7; return b }), ErrLength},
		{"length past the payload", mut(func(b []byte) []byte { b[5]++; return b }), ErrLength},
		{"length 65535", mut(func(b []byte) []byte { b[4], b[5] = 0xff, 0xff; return b }), ErrLength},
		{"bad checksum", mut(func(b []byte) []byte { b[7] ^= 1; return b }), ErrChecksum},
		{"payload changed", mut(func(b []byte) []byte { b[9] ^= 0x20; return b }), ErrChecksum},
		{"port changed", mut(func(b []byte) []byte { b[1]++; return b }), ErrChecksum},
		{"checksum of a trimmed length", mut(func(b []byte) []byte { b[5]--; return b }), ErrChecksum},
		{"zero checksum", mut(func(b []byte) []byte { b[6], b[7] = 0, 0; b[9] ^= 0x20; return b }), nil},
		{"trailing bytes beyond the length", append(bytes.Clone(good), "trailer"...), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseHeader(c.b, len(c.b), 0, hdrSrc, hdrDst)
			if err != c.want {
				t.Fatalf("ParseHeader: %v, want %v", err, c.want)
			}
		})
	}
	// The checksum covers the pseudo-header: another address fails.
	if _, err := ParseHeader(good, len(good), 0, hdrSrc, netip.MustParseAddr("198.51.100.8")); err != ErrChecksum {
		t.Fatalf("wrong destination: %v, want ErrChecksum", err)
	}
}

// TestParseHeaderChain checks the reassembled-datagram form: a first part
// plus the checksum accumulator of the others gives the same verdict as
// the contiguous datagram.
func TestParseHeaderChain(t *testing.T) {
	payload := make([]byte, 3001) // odd total
	for i := range payload {
		payload[i] = byte(i*31 + 7)
	}
	d := hdrDatagram(4000, 7, payload)
	for _, split := range []int{8, 16, 1480, 2960} {
		rest := checksum.Sum(d[split:], 0)
		if _, err := ParseHeader(d[:split], len(d), rest, hdrSrc, hdrDst); err != nil {
			t.Fatalf("split at %d: %v", split, err)
		}
		bad := bytes.Clone(d)
		bad[len(bad)-1] ^= 0x40
		if _, err := ParseHeader(bad[:split], len(bad), checksum.Sum(bad[split:], 0), hdrSrc, hdrDst); err != ErrChecksum {
			t.Fatalf("split at %d, corrupted tail: %v, want ErrChecksum", split, err)
		}
	}
	if _, err := ParseHeader(d[:4], len(d), checksum.Sum(d[4:], 0), hdrSrc, hdrDst); err != ErrTooShort {
		t.Fatalf("first part shorter than the header: %v", err)
	}
}

func TestPutHeader(t *testing.T) {
	for _, n := range []int{0, 1, 2, 7, 1472, MaxPayload} {
		payload := make([]byte, n)
		for i := range payload {
			payload[i] = byte(i)
		}
		b := make([]byte, HeaderLen+n)
		copy(b[HeaderLen:], payload)
		PutHeader(b, 40000, 7, hdrSrc, hdrDst)
		if !bytes.Equal(b, hdrDatagram(40000, 7, payload)) {
			t.Fatalf("payload %d: PutHeader %x differs from the reference", n, b[:8])
		}
		if _, err := ParseHeader(b, len(b), 0, hdrSrc, hdrDst); err != nil {
			t.Fatalf("payload %d: %v", n, err)
		}
	}
	// A datagram whose checksum computes to zero is sent with 0xffff
	// (RFC 768): make the sum of everything else 0xffff with two payload
	// bytes.
	b := make([]byte, HeaderLen+2)
	binary.BigEndian.PutUint16(b[0:], 1)
	binary.BigEndian.PutUint16(b[2:], 2)
	binary.BigEndian.PutUint16(b[4:], uint16(len(b)))
	s := hdrRefSum(hdrSrc, hdrDst, b)
	binary.BigEndian.PutUint16(b[8:], 0xffff-s)
	PutHeader(b, 1, 2, hdrSrc, hdrDst)
	if c := binary.BigEndian.Uint16(b[6:]); c != 0xffff {
		t.Fatalf("checksum %#04x for a zero sum, want 0xffff", c)
	}
	if _, err := ParseHeader(b, len(b), 0, hdrSrc, hdrDst); err != nil {
		t.Fatalf("0xffff checksum rejected: %v", err)
	}
}

func FuzzUDP(f *testing.F) {
	f.Add(hdrDatagram(5000, 53, []byte("query")), uint16(8))
	f.Add(hdrDatagram(1, 2, nil), uint16(0))
	f.Add(append(hdrDatagram(1, 2, []byte("x")), "trailer"...), uint16(8))
	f.Add([]byte{0, 1, 0, 2, 0, 8, 0, 0}, uint16(0))
	f.Fuzz(func(t *testing.T, b []byte, split uint16) {
		h, err := ParseHeader(b, len(b), 0, hdrSrc, hdrDst)
		var want error
		switch l := 0; {
		case len(b) < HeaderLen:
			want = ErrTooShort
		case func() bool { l = int(binary.BigEndian.Uint16(b[4:])); return l < HeaderLen || l > len(b) }():
			want = ErrLength
		case binary.BigEndian.Uint16(b[6:]) != 0 && hdrRefSum(hdrSrc, hdrDst, b[:l]) != 0xffff:
			want = ErrChecksum
		}
		if err != want {
			t.Fatalf("ParseHeader(%x) = %v, want %v", b, err, want)
		}
		if err != nil {
			return
		}
		if h.Length() > len(b) || len(h) != HeaderLen {
			t.Fatal("bad view")
		}
		// Split at an even offset after the header, as a reassembled
		// datagram is: the verdict is the same when the datagram fills
		// the payload.
		if h.Length() == len(b) {
			k := HeaderLen + int(split)&^1
			if k <= len(b) {
				if _, err := ParseHeader(b[:k], len(b), checksum.Sum(b[k:], 0), hdrSrc, hdrDst); err != nil {
					t.Fatalf("split at %d: %v", k, err)
				}
			}
		}
		// Rebuilding the header verifies and keeps the ports and length.
		out := bytes.Clone(b[:h.Length()])
		PutHeader(out, h.SrcPort(), h.DstPort(), hdrSrc, hdrDst)
		if o, err := ParseHeader(out, len(out), 0, hdrSrc, hdrDst); err != nil || o.Checksum() == 0 ||
			o.SrcPort() != h.SrcPort() || o.DstPort() != h.DstPort() || !bytes.Equal(out[8:], b[8:h.Length()]) {
			t.Fatalf("PutHeader of %x: %x, %v", b, out, err)
		}
	})
}

func TestChecksum(t *testing.T) {
	src, dst := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	pkt := make([]byte, HeaderLen+5)
	copy(pkt[HeaderLen:], "hello")
	PutHeader(pkt, 1234, 53, src, dst)
	h, err := ParseHeader(pkt, len(pkt), 0, src, dst)
	if err != nil || h.SrcPort() != 1234 || h.DstPort() != 53 || h.Length() != len(pkt) {
		t.Fatalf("round trip: %v %v", h, err)
	}
	pkt[HeaderLen] ^= 1
	if _, err := ParseHeader(pkt, len(pkt), 0, src, dst); err != ErrChecksum {
		t.Fatalf("corrupted payload: %v, want ErrChecksum", err)
	}
	pkt[6], pkt[7] = 0, 0 // zero checksum: not computed, accepted
	if _, err := ParseHeader(pkt, len(pkt), 0, src, dst); err != nil {
		t.Fatalf("zero checksum: %v", err)
	}
	if _, err := ParseHeader(pkt, len(pkt)-1, 0, src, dst); err != ErrLength {
		t.Fatalf("length beyond payload: %v", err)
	}
	if !bytes.Equal(pkt[HeaderLen+1:], []byte("ello")) {
		t.Fatal("parse must not modify the packet")
	}
}
