package tap_test

import (
	"bytes"
	"net"
	"testing"

	"github.com/tapnet/tapnet/tap"
)

func TestEthernetHeader(t *testing.T) {
	frame := []byte{
		0x01, 0x00, 0x5e, 0x01, 0x02, 0x03, // dst
		0x02, 0x11, 0x22, 0x33, 0x44, 0x55, // src
		0x08, 0x00, // IPv4
		0x45, 0x00,
	}
	h := tap.EthernetHeader(frame)
	if h.Dst() != (tap.MAC{0x01, 0x00, 0x5e, 0x01, 0x02, 0x03}) || h.Src() != (tap.MAC{0x02, 0x11, 0x22, 0x33, 0x44, 0x55}) ||
		h.EtherType() != tap.EtherTypeIPv4 {
		t.Fatalf("parsed %v %v %#04x", h.Dst(), h.Src(), h.EtherType())
	}
	out := make([]byte, tap.EthernetHeaderLen)
	tap.PutEthernetHeader(out, h.Dst(), h.Src(), h.EtherType())
	if !bytes.Equal(out, frame[:14]) {
		t.Fatalf("PutEthernetHeader = %x, want %x", out, frame[:14])
	}
	if tap.MinFrameLen != tap.EthernetHeaderLen || tap.EthernetHeaderLen != 14 || tap.EtherTypeARP != 0x0806 {
		t.Fatal("framing constants changed")
	}
}

func TestMAC(t *testing.T) {
	for _, c := range []struct {
		mac   tap.MAC
		mcast bool
		str   string
	}{
		{tap.BroadcastMAC, true, "ff:ff:ff:ff:ff:ff"},
		{tap.MAC{0x01, 0x00, 0x5e, 0, 0, 1}, true, "01:00:5e:00:00:01"},
		{tap.MAC{0x33, 0x33, 0, 0, 0, 1}, true, "33:33:00:00:00:01"},
		{tap.MAC{0x02, 0, 0, 0, 0, 1}, false, "02:00:00:00:00:01"},
		{tap.MAC{}, false, "00:00:00:00:00:00"},
	} {
		if c.mac.IsMulticast() != c.mcast || c.mac.String() != c.str {
			t.Errorf("%v: multicast %v string %q", c.mac, c.mac.IsMulticast(), c.mac.String())
		}
		hw := c.mac.HardwareAddr()
		if back, ok := tap.MACFrom(hw); !ok || back != c.mac {
			t.Errorf("%v: MACFrom(HardwareAddr) = %v %v", c.mac, back, ok)
		}
		hw[0] ^= 0xff // a fresh copy each time
		if c.mac.HardwareAddr()[0] == hw[0] {
			t.Errorf("%v: HardwareAddr shares memory", c.mac)
		}
	}
	for _, n := range []int{0, 5, 7, 8, 20} {
		if m, ok := tap.MACFrom(make(net.HardwareAddr, n)); ok || m != (tap.MAC{}) {
			t.Errorf("MACFrom of %d bytes accepted", n)
		}
	}
}

func TestMulticastMAC(t *testing.T) {
	for _, c := range []struct {
		group [4]byte
		want  tap.MAC
	}{
		{[4]byte{224, 0, 0, 1}, tap.MAC{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}},
		{[4]byte{239, 1, 2, 3}, tap.MAC{0x01, 0x00, 0x5e, 0x01, 0x02, 0x03}},
		// Only the low 23 bits map (RFC 1112): 239.129.2.3 shares
		// 239.1.2.3's address.
		{[4]byte{239, 129, 2, 3}, tap.MAC{0x01, 0x00, 0x5e, 0x01, 0x02, 0x03}},
		{[4]byte{239, 255, 255, 255}, tap.MAC{0x01, 0x00, 0x5e, 0x7f, 0xff, 0xff}},
	} {
		if got := tap.MulticastMAC(c.group); got != c.want || !got.IsMulticast() {
			t.Errorf("MulticastMAC(%v) = %v, want %v", c.group, got, c.want)
		}
	}
}

// FuzzEthernet reads arbitrary bytes as a frame: the accessors never read
// past the header, and the header rebuilds bit for bit.
func FuzzEthernet(f *testing.F) {
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x08, 0x06})
	f.Add([]byte{0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00, 0x45, 0, 0, 20})
	f.Add([]byte{0x01, 0x00, 0x5e, 0x01, 0x02, 0x03, 0x02, 0, 0, 0, 0, 2, 0x81, 0x00})
	f.Add([]byte{0x01, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < tap.EthernetHeaderLen {
			return // the stack counts these as runts before looking
		}
		h := tap.EthernetHeader(b)
		dst, src, typ := h.Dst(), h.Src(), h.EtherType()
		if dst.IsMulticast() != (b[0]&1 == 1) || typ != uint16(b[12])<<8|uint16(b[13]) {
			t.Fatalf("header %x: dst %v type %#04x", b[:14], dst, typ)
		}
		out := make([]byte, tap.EthernetHeaderLen)
		tap.PutEthernetHeader(out, dst, src, typ)
		if !bytes.Equal(out, b[:14]) {
			t.Fatalf("rebuilt %x from %x", out, b[:14])
		}
		if m, ok := tap.MACFrom(net.HardwareAddr(b[6:12])); !ok || m != src {
			t.Fatalf("MACFrom(%x) = %v", b[6:12], m)
		}
		if len(b) >= 18 {
			g := tap.MulticastMAC([4]byte(b[14:18]))
			if g[0] != 0x01 || g[1] != 0x00 || g[2] != 0x5e || g[3]&0x80 != 0 {
				t.Fatalf("MulticastMAC(%x) = %v", b[14:18], g)
			}
		}
	})
}
