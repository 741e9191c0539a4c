package tap

import (
	"testing"

	"github.com/tapnet/tapnet/link"
)

// TestVnetHeaderForIPv6SuperFrame: the header written for an IPv6 UDP
// super-frame (as the stack builds one: checksum start behind the IPv6
// header) is UDP_L4 with hdr_len covering the IPv6 and UDP headers, and it
// is one a reader holding Linux's rules accepts and splits the same way; on
// a TUN, the offsets lose the Ethernet header.
func TestVnetHeaderForIPv6SuperFrame(t *testing.T) {
	for _, c := range []struct {
		layer link.Layer
		l2    int
	}{{link.LayerEthernet, 14}, {link.LayerIP, 0}} {
		want, f := superFrame6(make([]byte, 3500), 1400)
		f = f[14-c.l2:]
		want.csumStart, want.hdrLen = uint16(c.l2+40), uint16(c.l2+48)
		d := &Device{mtu: 1500, layer: c.layer, off: offloads{vnet: true, csum: true, uso: true}}
		fr := link.Frame{Buf: f, Len: len(f), Flags: link.FlagChecksumPartial,
			CsumStart: uint16(c.l2 + 40), CsumOffset: 6, GSOSize: 1400}
		var cnt counters
		h, err := d.vnetHeaderFor(&fr, &cnt)
		if err != nil || h != want {
			t.Fatalf("layer %v: header %+v, %v; want %+v", c.layer, h, err, want)
		}
		s, err := checkRxFrame(h, f, 1500, c.l2)
		if err != nil || s.segs != 3 || !s.v6 || s.udpOff != c.l2+40 {
			t.Fatalf("layer %v: the header written reads back as %+v, %v", c.layer, s, err)
		}
		if cnt.txSuperFrames.Load() != 1 {
			t.Errorf("layer %v: super-frame not counted", c.layer)
		}
	}
}
