package ethernet_test

import (
	"bytes"
	"net"
	"testing"

	"github.com/tapnet/tapnet/ethernet"
)

func TestEthernetHeader(t *testing.T) {
	frame := []byte{
		0x01, 0x00, 0x5e, 0x01, 0x02, 0x03, // dst
		0x02, 0x11, 0x22, 0x33, 0x44, 0x55, // src
		0x08, 0x00, // IPv4
		0x45, 0x00,
	}
	h := ethernet.Header(frame)
	if h.Dst() != (ethernet.MAC{0x01, 0x00, 0x5e, 0x01, 0x02, 0x03}) || h.Src() != (ethernet.MAC{0x02, 0x11, 0x22, 0x33, 0x44, 0x55}) ||
		h.Type() != ethernet.TypeIPv4 {
		t.Fatalf("parsed %v %v %#04x", h.Dst(), h.Src(), h.Type())
	}
	out := make([]byte, ethernet.HeaderLen)
	ethernet.PutHeader(out, h.Dst(), h.Src(), h.Type())
	if !bytes.Equal(out, frame[:14]) {
		t.Fatalf("PutEthernetHeader = %x, want %x", out, frame[:14])
	}
	if ethernet.HeaderLen != 14 || ethernet.TypeARP != 0x0806 || ethernet.TypeIPv6 != 0x86dd {
		t.Fatal("framing constants changed")
	}
}

func TestMAC(t *testing.T) {
	for _, c := range []struct {
		mac   ethernet.MAC
		mcast bool
		str   string
	}{
		{ethernet.Broadcast, true, "ff:ff:ff:ff:ff:ff"},
		{ethernet.MAC{0x01, 0x00, 0x5e, 0, 0, 1}, true, "01:00:5e:00:00:01"},
		{ethernet.MAC{0x33, 0x33, 0, 0, 0, 1}, true, "33:33:00:00:00:01"},
		{ethernet.MAC{0x02, 0, 0, 0, 0, 1}, false, "02:00:00:00:00:01"},
		{ethernet.MAC{}, false, "00:00:00:00:00:00"},
	} {
		if c.mac.IsMulticast() != c.mcast || c.mac.String() != c.str {
			t.Errorf("%v: multicast %v string %q", c.mac, c.mac.IsMulticast(), c.mac.String())
		}
		hw := c.mac.HardwareAddr()
		if back, ok := ethernet.MACFrom(hw); !ok || back != c.mac {
			t.Errorf("%v: MACFrom(HardwareAddr) = %v %v", c.mac, back, ok)
		}
		hw[0] ^= 0xff // a fresh copy each time
		if c.mac.HardwareAddr()[0] == hw[0] {
			t.Errorf("%v: HardwareAddr shares memory", c.mac)
		}
	}
	for _, n := range []int{0, 5, 7, 8, 20} {
		if m, ok := ethernet.MACFrom(make(net.HardwareAddr, n)); ok || m != (ethernet.MAC{}) {
			t.Errorf("MACFrom of %d bytes accepted", n)
		}
	}
}

func TestRandomMAC(t *testing.T) {
	seen := map[ethernet.MAC]bool{}
	for range 16 {
		m := ethernet.RandomMAC()
		if m.IsMulticast() || m[0]&0x02 == 0 {
			t.Fatalf("RandomMAC() = %v: want a locally administered unicast address", m)
		}
		seen[m] = true
	}
	if len(seen) < 2 {
		t.Fatal("RandomMAC returned the same address 16 times")
	}
}

func TestMulticastIPv4(t *testing.T) {
	for _, c := range []struct {
		group [4]byte
		want  ethernet.MAC
	}{
		{[4]byte{224, 0, 0, 1}, ethernet.MAC{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}},
		{[4]byte{239, 1, 2, 3}, ethernet.MAC{0x01, 0x00, 0x5e, 0x01, 0x02, 0x03}},
		// Only the low 23 bits map (RFC 1112): 239.129.2.3 shares
		// 239.1.2.3's address.
		{[4]byte{239, 129, 2, 3}, ethernet.MAC{0x01, 0x00, 0x5e, 0x01, 0x02, 0x03}},
		{[4]byte{239, 255, 255, 255}, ethernet.MAC{0x01, 0x00, 0x5e, 0x7f, 0xff, 0xff}},
	} {
		if got := ethernet.MulticastIPv4(c.group); got != c.want || !got.IsMulticast() {
			t.Errorf("MulticastIPv4(%v) = %v, want %v", c.group, got, c.want)
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
		if len(b) < ethernet.HeaderLen {
			return // the stack counts these as runts before looking
		}
		h := ethernet.Header(b)
		dst, src, typ := h.Dst(), h.Src(), h.Type()
		if dst.IsMulticast() != (b[0]&1 == 1) || typ != uint16(b[12])<<8|uint16(b[13]) {
			t.Fatalf("header %x: dst %v type %#04x", b[:14], dst, typ)
		}
		out := make([]byte, ethernet.HeaderLen)
		ethernet.PutHeader(out, dst, src, typ)
		if !bytes.Equal(out, b[:14]) {
			t.Fatalf("rebuilt %x from %x", out, b[:14])
		}
		if m, ok := ethernet.MACFrom(net.HardwareAddr(b[6:12])); !ok || m != src {
			t.Fatalf("MACFrom(%x) = %v", b[6:12], m)
		}
		if len(b) >= 18 {
			g := ethernet.MulticastIPv4([4]byte(b[14:18]))
			if g[0] != 0x01 || g[1] != 0x00 || g[2] != 0x5e || g[3]&0x80 != 0 {
				t.Fatalf("MulticastIPv4(%x) = %v", b[14:18], g)
			}
		}
	})
}
