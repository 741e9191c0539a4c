package stack

import (
	"net/netip"
	"testing"

	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/ipv6"
	"github.com/tapnet/tapnet/udp"
)

// TestFragmentFinishesPartialChecksum: a datagram built with a partial
// checksum that must be fragmented after all (the MTU fell in between)
// gets its checksum completed first, on both families, since no link
// completes the checksum of fragments.
func TestFragmentFinishesPartialChecksum(t *testing.T) {
	for _, c := range []struct{ src, dst netip.Addr }{
		{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")},
		{netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")},
	} {
		for _, size := range []int{0, 1, 1999} {
			b := buffer.Get(udp.HeaderLen + size)
			b.SetLen(udp.HeaderLen + size)
			pkt := b.Bytes()
			for i := range pkt[udp.HeaderLen:] {
				pkt[udp.HeaderLen+i] = byte(i * 13)
			}
			udp.PutHeaderPartial(pkt, 4000, 7, c.src, c.dst)
			b.Offload.ChecksumPartial = true
			finishPartialChecksum(b)
			if _, err := udp.ParseHeader(pkt, len(pkt), 0, c.src, c.dst); err != nil || b.Offload.ChecksumPartial {
				t.Errorf("%v, %d bytes: %v, still partial %v", c.dst, size, err, b.Offload.ChecksumPartial)
			}
			b.Release()
		}
	}
}

func TestTransportOffset6(t *testing.T) {
	pkt := make([]byte, ipv6.HeaderLen+8+16+udp.HeaderLen)
	ipv6.Put(pkt, ipv6.Fields{NextHeader: ipv6.ProtocolHopByHop, PayloadLen: len(pkt) - ipv6.HeaderLen})
	pkt[40], pkt[41] = ipv6.ProtocolDestOptions, 0 // 8 bytes
	pkt[48], pkt[49] = udp.ProtocolNumber, 1       // 16 bytes
	if got := transportOffset(pkt); got != 64 {
		t.Errorf("behind two extension headers: %d, want 64", got)
	}
	if got := transportOffset6(pkt[:60]); got != -1 {
		t.Errorf("extension headers past the packet: %d, want -1", got)
	}
	pkt[6] = udp.ProtocolNumber
	if got := transportOffset(pkt); got != ipv6.HeaderLen {
		t.Errorf("no extension headers: %d", got)
	}
}
