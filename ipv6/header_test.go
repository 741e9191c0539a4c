package ipv6

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"github.com/tapnet/tapnet/internal/checksum"
	xipv6 "golang.org/x/net/ipv6"
)

func TestParseHeader(t *testing.T) {
	b := make([]byte, HeaderLen+12)
	f := Fields{TrafficClass: 0xb8, FlowLabel: 0xfedcb, PayloadLen: 10, NextHeader: ProtocolUDP, HopLimit: 255, Src: tLL1, Dst: tGroup}
	Put(b, f)
	h, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.TrafficClass() != 0xb8 || h.FlowLabel() != 0xfedcb || h.PayloadLen() != 10 || h.NextHeader() != ProtocolUDP ||
		h.HopLimit() != 255 || h.Src() != tLL1 || h.Dst() != tGroup || len(h) != HeaderLen {
		t.Fatalf("parsed %x wrong", b[:HeaderLen])
	}
	// x/net/ipv6 reads the same fields.
	x, err := xipv6.ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if x.Version != 6 || x.TrafficClass != 0xb8 || x.FlowLabel != 0xfedcb || x.PayloadLen != 10 || x.NextHeader != ProtocolUDP ||
		x.HopLimit != 255 || !x.Src.Equal(net.IP(tLL1.AsSlice())) || !x.Dst.Equal(net.IP(tGroup.AsSlice())) {
		t.Fatalf("x/net/ipv6 reads %v", x)
	}
	// A flow label wider than 20 bits does not spill into the class.
	Put(b, Fields{FlowLabel: 0xfffffff, PayloadLen: 0, NextHeader: ProtocolNoNextHeader, Src: tHost1, Dst: tHost2})
	if h, _ := Parse(b); h.TrafficClass() != 0 || h.FlowLabel() != 0xfffff || b[0] != 0x60 {
		t.Fatalf("wide flow label: %x", b[:4])
	}
}

func TestParseHeaderErrors(t *testing.T) {
	good := make([]byte, HeaderLen+8)
	Put(good, Fields{PayloadLen: 8, NextHeader: ProtocolUDP, HopLimit: 64, Src: tHost1, Dst: tHost2})
	set := func(f func(b []byte)) []byte { b := bytes.Clone(good); f(b); return b }
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrTooShort},
		{"39 bytes", good[:39], ErrTooShort},
		{"version 4", set(func(b []byte) { b[0] = 0x45 }), ErrVersion},
		{"version 0", set(func(b []byte) { b[0] = 0x06 }), ErrVersion},
		{"payload past frame", good[:HeaderLen+7], ErrPayloadLen},
		{"payload 65535", set(func(b []byte) { b[4], b[5] = 0xff, 0xff }), ErrPayloadLen},
		{"jumbogram", set(func(b []byte) { b[4], b[5], b[6] = 0, 0, ProtocolHopByHop }), ErrJumbogram},
		{"zero payload, no next header", set(func(b []byte) { b[4], b[5], b[6] = 0, 0, ProtocolNoNextHeader }), nil},
		{"link padding", append(bytes.Clone(good), 0, 0, 0, 0), nil},
	} {
		if _, err := Parse(c.b); err != c.want {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

// The pseudo-header sum equals the checksum over RFC 8200 8.1's layout.
func TestPseudoHeaderSum(t *testing.T) {
	for _, n := range []int{0, 8, 1232, 65535, 70000} {
		var ph [40]byte
		s, d := tLL1.As16(), tGroup.As16()
		copy(ph[0:], s[:])
		copy(ph[16:], d[:])
		binary.BigEndian.PutUint32(ph[32:], uint32(n))
		ph[39] = ProtocolUDP
		if got, want := checksum.Fold(PseudoHeaderSum(tLL1, tGroup, ProtocolUDP, n)), checksum.Fold(checksum.Sum(ph[:], 0)); got != want {
			t.Errorf("length %d: %#x, want %#x", n, got, want)
		}
	}
}

// FuzzIPv6Header checks that Parse never panics, accepts exactly the
// headers its rules allow, and that Put gives back the parsed header.
func FuzzIPv6Header(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Parse(b)
		switch {
		case len(b) < HeaderLen:
			if err != ErrTooShort {
				t.Fatalf("%d bytes: %v", len(b), err)
			}
			return
		case b[0]>>4 != 6:
			if err != ErrVersion {
				t.Fatalf("version %d: %v", b[0]>>4, err)
			}
			return
		case err != nil:
			return
		}
		if HeaderLen+h.PayloadLen() > len(b) || h.PayloadLen() == 0 && h.NextHeader() == ProtocolHopByHop {
			t.Fatalf("accepted %x", b[:HeaderLen])
		}
		out := make([]byte, HeaderLen)
		Put(out, Fields{TrafficClass: h.TrafficClass(), FlowLabel: h.FlowLabel(), PayloadLen: h.PayloadLen(),
			NextHeader: h.NextHeader(), HopLimit: h.HopLimit(), Src: h.Src(), Dst: h.Dst()})
		if !bytes.Equal(out, b[:HeaderLen]) {
			t.Fatalf("rebuilt %x from %x", out, b[:HeaderLen])
		}
	})
}
