package ipv4

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

// hdrRefChecksum is the textbook RFC 1071 checksum, independent of the
// checksum package.
func hdrRefChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// hdrPacket returns a 20-byte header (plus opts and payload) built by hand.
func hdrPacket(opts, payload []byte) []byte {
	hl := 20 + len(opts)
	b := make([]byte, hl+len(payload))
	b[0] = 0x40 | byte(hl/4)
	b[1] = 0xb8 // DSCP EF
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	binary.BigEndian.PutUint16(b[4:], 0xbeef)
	binary.BigEndian.PutUint16(b[6:], 0x4000) // DF
	b[8], b[9] = 17, ProtocolUDP
	copy(b[12:], []byte{192, 0, 2, 1})
	copy(b[16:], []byte{198, 51, 100, 7})
	copy(b[20:], opts)
	copy(b[hl:], payload)
	binary.BigEndian.PutUint16(b[10:], hdrRefChecksum(b[:hl]))
	return b
}

func TestParseFields(t *testing.T) {
	b := hdrPacket(nil, []byte("payload!"))
	b = append(b, 0, 0, 0, 0) // link padding
	h, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.HeaderLen() != 20 || h.TOS() != 0xb8 || h.TotalLen() != 28 || h.ID() != 0xbeef || !h.DontFragment() ||
		h.MoreFragments() || h.FragmentOffset() != 0 || h.IsFragment() || h.TTL() != 17 || h.Protocol() != ProtocolUDP ||
		h.Src() != netip.MustParseAddr("192.0.2.1") || h.Dst() != netip.MustParseAddr("198.51.100.7") {
		t.Fatalf("fields of %x parsed wrong", b)
	}
	if len(h) != 20 {
		t.Fatalf("header view is %d bytes", len(h))
	}

	withOpts := hdrPacket([]byte{0x94, 0x04, 0, 0, 1, 1, 1, 0}, []byte("x"))
	h, err = Parse(withOpts)
	if err != nil || h.HeaderLen() != 28 || h.TotalLen() != 29 {
		t.Fatalf("header with options: %v, IHL %d", err, h.HeaderLen())
	}
}

func TestParseErrors(t *testing.T) {
	good := hdrPacket(nil, []byte("12345678"))
	mut := func(f func(b []byte) []byte, fix bool) []byte {
		b := f(bytes.Clone(good))
		if fix && len(b) >= 20 {
			hl := min(max(int(b[0]&0xf)*4, 20), len(b))
			b[10], b[11] = 0, 0
			binary.BigEndian.PutUint16(b[10:], hdrRefChecksum(b[:hl]))
		}
		return b
	}
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrTooShort},
		{"19 bytes", good[:19], ErrTooShort},
		{"version 6", mut(func(b []byte) []byte { b[0] = 0x65; return b }, true), ErrVersion},
		{"version 15", mut(func(b []byte) []byte { b[0] = 0xf5; return b }, true), ErrVersion},
		{"IHL 4", mut(func(b []byte) []byte { b[0] = 0x44; return b }, false), ErrHeaderLen},
		{"IHL 0", mut(func(b []byte) []byte { b[0] = 0x40; return b }, false), ErrHeaderLen},
		{"IHL past the data", mut(func(b []byte) []byte { b[0] = 0x48; return b }, false), ErrTooShort},
		{"IHL 15, 28 bytes", mut(func(b []byte) []byte { b[0] = 0x4f; return b }, false), ErrTooShort},
		{"total length past the data", mut(func(b []byte) []byte { b[3]++; return b }, true), ErrTotalLen},
		{"total length 65535", mut(func(b []byte) []byte { b[2], b[3] = 0xff, 0xff; return b }, true), ErrTotalLen},
		{"total length below the header", mut(func(b []byte) []byte { b[2], b[3] = 0, 19; return b }, true), ErrTotalLen},
		{"total length 0", mut(func(b []byte) []byte { b[2], b[3] = 0, 0; return b }, true), ErrTotalLen},
		{"bad checksum", mut(func(b []byte) []byte { b[11] ^= 1; return b }, false), ErrChecksum},
		{"checksum of a changed TTL", mut(func(b []byte) []byte { b[8]--; return b }, false), ErrChecksum},
		{"fragment past 65535", mut(func(b []byte) []byte { b[6], b[7] = 0x1f, 0xff; return b }, true), ErrBadFragment},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, err := Parse(c.b)
			if err != c.want {
				t.Fatalf("Parse: %v, want %v", err, c.want)
			}
			if h != nil {
				t.Fatal("non-nil header with an error")
			}
		})
	}
	// The largest fragment that fits is accepted.
	last := mut(func(b []byte) []byte { b[6], b[7] = 0x1f, 0xfe; return b }, true) // offset 65520 + 8 bytes
	if _, err := Parse(last); err != nil {
		t.Fatalf("fragment ending at 65528: %v", err)
	}
}

func TestPutRoundTrip(t *testing.T) {
	for _, f := range []Fields{
		{TOS: 0, TotalLen: 20, ID: 0, TTL: 1, Protocol: ProtocolICMP, Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("192.0.2.255")},
		{TOS: 0xfc, TotalLen: 1500, ID: 0xffff, DF: true, TTL: 255, Protocol: ProtocolUDP, Src: netip.MustParseAddr("198.51.100.1"), Dst: netip.MustParseAddr("239.1.2.3")},
		{TotalLen: 1500, ID: 7, MF: true, Offset: 65528 - 1480, TTL: 64, Protocol: ProtocolUDP, Src: netip.MustParseAddr("192.0.2.9"), Dst: netip.MustParseAddr("192.0.2.1")},
	} {
		b := make([]byte, f.TotalLen)
		Put(b, f)
		if hdrRefChecksum(b[:20]) != 0 {
			t.Fatalf("Put checksum does not verify: %x", b[:20])
		}
		h, err := Parse(b)
		if err != nil {
			t.Fatalf("Parse(Put(%+v)): %v", f, err)
		}
		got := Fields{TOS: h.TOS(), TotalLen: h.TotalLen(), ID: h.ID(), DF: h.DontFragment(), MF: h.MoreFragments(),
			Offset: h.FragmentOffset(), TTL: h.TTL(), Protocol: h.Protocol(), Src: h.Src(), Dst: h.Dst()}
		if got != f {
			t.Fatalf("round trip: got %+v, want %+v", got, f)
		}
	}
}

func TestAddressClasses(t *testing.T) {
	for _, c := range []struct {
		addr           string
		martian, mcast bool
	}{
		{"192.0.2.1", false, false},
		{"198.51.100.255", false, false},
		{"0.0.0.0", true, false},
		{"0.1.2.3", true, false},
		{"127.0.0.1", true, false},
		{"127.255.255.254", true, false},
		{"224.0.0.1", true, true},
		{"239.255.255.255", true, true},
		{"240.0.0.1", true, false},
		{"255.255.255.255", true, false},
	} {
		a := netip.MustParseAddr(c.addr)
		if IsMartianSource(a) != c.martian || IsMulticast(a) != c.mcast {
			t.Errorf("%s: martian %v multicast %v, want %v %v", c.addr, IsMartianSource(a), IsMulticast(a), c.martian, c.mcast)
		}
	}
}

// hdrRefParse is an independent reading of RFC 791's rules that Parse must
// agree with.
func hdrRefParse(b []byte) error {
	if len(b) < 20 {
		return ErrTooShort
	}
	if b[0]>>4 != 4 {
		return ErrVersion
	}
	ihl := int(b[0] & 0xf)
	if ihl < 5 {
		return ErrHeaderLen
	}
	if len(b) < ihl*4 {
		return ErrTooShort
	}
	tl := int(b[2])<<8 | int(b[3])
	if tl < ihl*4 || tl > len(b) {
		return ErrTotalLen
	}
	if hdrRefChecksum(b[:ihl*4]) != 0 {
		return ErrChecksum
	}
	off := int(b[6]&0x1f)<<8 | int(b[7])
	if off*8+tl-ihl*4 > 65535 {
		return ErrBadFragment
	}
	return nil
}

func FuzzIPv4Header(f *testing.F) {
	f.Add(hdrPacket(nil, []byte("payload")))
	f.Add(hdrPacket([]byte{0x94, 0x04, 0, 0}, nil))
	f.Add(hdrPacket([]byte{0x83, 0x07, 0x04, 192, 0, 2, 1, 0}, []byte{1, 2, 3}))
	f.Add([]byte{0x45, 0, 0, 20})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Parse(b)
		if want := hdrRefParse(b); err != want {
			t.Fatalf("Parse(%x) = %v, reference says %v", b, err, want)
		}
		if err != nil {
			return
		}
		hl := h.HeaderLen()
		if hl < 20 || hl > MaxHeaderLen || len(h) != hl || h.TotalLen() < hl || h.TotalLen() > len(b) {
			t.Fatalf("accepted header: IHL %d, view %d, total %d, data %d", hl, len(h), h.TotalLen(), len(b))
		}
		if h.FragmentOffset()+h.TotalLen()-hl > MaxTotalLen || h.FragmentOffset()%8 != 0 {
			t.Fatalf("fragment offset %d", h.FragmentOffset())
		}
		if h.IsFragment() != (h.MoreFragments() || h.FragmentOffset() != 0) {
			t.Fatal("IsFragment inconsistent")
		}
		_, _, _, _, _ = h.TOS(), h.ID(), h.DontFragment(), h.TTL(), h.Protocol()
		// Put rebuilds an option-less header bit for bit (the reserved
		// flag aside, which Put never sets).
		if hl == HeaderLen {
			f := Fields{TOS: h.TOS(), TotalLen: h.TotalLen(), ID: h.ID(), DF: h.DontFragment(), MF: h.MoreFragments(),
				Offset: h.FragmentOffset(), TTL: h.TTL(), Protocol: h.Protocol(), Src: h.Src(), Dst: h.Dst()}
			out := make([]byte, HeaderLen)
			Put(out, f)
			want := bytes.Clone(b[:HeaderLen])
			if want[6]&0x80 != 0 {
				want[6] &^= 0x80
				want[10], want[11] = 0, 0
				binary.BigEndian.PutUint16(want[10:], hdrRefChecksum(want))
			}
			if !bytes.Equal(out, want) && !hdrSameButChecksumZero(out, want) {
				t.Fatalf("Put(%+v) = %x, parsed from %x", f, out, want)
			}
		}
	})
}

// hdrSameButChecksumZero accepts 0x0000 and 0xffff as the same checksum:
// both verify in one's complement.
func hdrSameButChecksumZero(a, b []byte) bool {
	ca, cb := binary.BigEndian.Uint16(a[10:]), binary.BigEndian.Uint16(b[10:])
	if !(ca == 0 && cb == 0xffff || ca == 0xffff && cb == 0) {
		return false
	}
	return bytes.Equal(a[:10], b[:10]) && bytes.Equal(a[12:], b[12:])
}
