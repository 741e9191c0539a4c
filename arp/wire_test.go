package arp

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/tapnet/tapnet/ethernet"
)

var (
	wireMAC1 = ethernet.MAC{0x02, 0x00, 0x5e, 0x10, 0x20, 0x30}
	wireMAC2 = ethernet.MAC{0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee}
	wireIP1  = netip.MustParseAddr("192.0.2.1")
	wireIP2  = netip.MustParseAddr("192.0.2.2")
)

// wireRequest is a request from 192.0.2.1 for 192.0.2.2, written by hand.
var wireRequest = []byte{
	0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,
	0x02, 0x00, 0x5e, 0x10, 0x20, 0x30, 192, 0, 2, 1,
	0, 0, 0, 0, 0, 0, 192, 0, 2, 2,
}

func TestParse(t *testing.T) {
	p, err := Parse(wireRequest)
	if err != nil {
		t.Fatal(err)
	}
	if p.Op() != OpRequest || p.SenderMAC() != wireMAC1 || p.SenderIP() != wireIP1 ||
		p.TargetMAC() != (ethernet.MAC{}) || p.TargetIP() != wireIP2 || len(p) != PacketLen {
		t.Fatalf("fields of %x parsed wrong", wireRequest)
	}
	// Ethernet pads ARP to 46 bytes: the padding is ignored.
	padded := append(bytes.Clone(wireRequest), make([]byte, 18)...)
	if p, err := Parse(padded); err != nil || len(p) != PacketLen {
		t.Fatalf("padded request: %v, %d bytes", err, len(p))
	}
	mut := func(i int, v byte) []byte { b := bytes.Clone(wireRequest); b[i] = v; return b }
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrTooShort},
		{"27 bytes", wireRequest[:27], ErrTooShort},
		{"hardware type 6", mut(1, 6), ErrFormat},
		{"hardware type 0x0101", mut(0, 1), ErrFormat},
		{"protocol IPv6", func() []byte { b := mut(2, 0x86); b[3] = 0xdd; return b }(), ErrFormat},
		{"hardware length 8", mut(4, 8), ErrFormat},
		{"hardware length 0", mut(4, 0), ErrFormat},
		{"protocol length 16", mut(5, 16), ErrFormat},
		{"operation 0", mut(7, 0), ErrOp},
		{"operation 3 (RARP)", mut(7, 3), ErrOp},
		{"operation 0x0101", mut(6, 1), ErrOp},
	} {
		if _, err := Parse(c.b); err != c.want {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func TestPut(t *testing.T) {
	b := make([]byte, PacketLen)
	Put(b, OpRequest, wireMAC1, wireIP1, ethernet.MAC{}, wireIP2)
	if !bytes.Equal(b, wireRequest) {
		t.Fatalf("Put = %x, want %x", b, wireRequest)
	}
	Put(b, OpReply, wireMAC2, wireIP2, wireMAC1, wireIP1)
	p, err := Parse(b)
	if err != nil || p.Op() != OpReply || p.SenderMAC() != wireMAC2 || p.SenderIP() != wireIP2 || p.TargetMAC() != wireMAC1 || p.TargetIP() != wireIP1 {
		t.Fatalf("reply round trip: %v %x", err, b)
	}
}

func FuzzARP(f *testing.F) {
	f.Add(wireRequest)
	f.Add(append(bytes.Clone(wireRequest), make([]byte, 18)...))
	reply := make([]byte, PacketLen)
	Put(reply, OpReply, wireMAC2, wireIP2, wireMAC1, wireIP1)
	f.Add(reply)
	f.Add(wireRequest[:27])
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		var want error
		switch {
		case len(b) < PacketLen:
			want = ErrTooShort
		case !bytes.Equal(b[:6], []byte{0, 1, 8, 0, 6, 4}):
			want = ErrFormat
		case b[6] != 0 || (b[7] != 1 && b[7] != 2):
			want = ErrOp
		}
		if err != want {
			t.Fatalf("Parse(%x) = %v, want %v", b, err, want)
		}
		if err != nil {
			return
		}
		if len(p) != PacketLen {
			t.Fatalf("view of %d bytes", len(p))
		}
		out := make([]byte, PacketLen)
		Put(out, p.Op(), p.SenderMAC(), p.SenderIP(), p.TargetMAC(), p.TargetIP())
		if !bytes.Equal(out, b[:PacketLen]) {
			t.Fatalf("Put of the parsed fields = %x, want %x", out, b[:PacketLen])
		}
	})
}
