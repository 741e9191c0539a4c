package main

import (
	"bytes"
	"encoding/binary"
	"testing"
)

var (
	testMAC   = []byte{2, 0, 0, 0, 0, 2}
	peerMAC   = []byte{2, 0, 0, 0, 0, 1}
	testIP6   = []byte{0x20, 0x01, 0x0d, 0xb8, 15: 2}
	peerIP6   = []byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
	solicited = []byte{0xff, 0x02, 11: 1, 12: 0xff, 15: 2}
)

// ip6Frame builds an Ethernet/IPv6 frame from peer to dst carrying payload
// under next header nh, in a buffer with spare capacity like floor's.
func ip6Frame(dstMAC, dst []byte, nh, hops byte, payload []byte) []byte {
	f := make([]byte, ethHdrLen+ip6HdrLen+len(payload), 2048)
	copy(f[0:6], dstMAC)
	copy(f[6:12], peerMAC)
	binary.BigEndian.PutUint16(f[12:14], etherTypeIP6)
	h := f[ethHdrLen:]
	h[0] = 6 << 4
	binary.BigEndian.PutUint16(h[4:6], uint16(len(payload)))
	h[6], h[7] = nh, hops
	copy(h[8:24], peerIP6)
	copy(h[24:40], dst)
	copy(h[ip6HdrLen:], payload)
	return f
}

func TestNAReplyAnswersSolicitation(t *testing.T) {
	ns := make([]byte, nsLen+8)
	ns[0] = 135
	copy(ns[8:24], testIP6)
	ns[24], ns[25] = 1, 1 // source link-layer address
	copy(ns[26:32], peerMAC)
	binary.BigEndian.PutUint16(ns[2:4], icmp6Checksum(peerIP6, solicited, ns))
	f := ip6Frame([]byte{0x33, 0x33, 0xff, 0, 0, 2}, solicited, protoICMP6, 255, ns)

	if !naReply(f, testMAC, testIP6) {
		t.Fatal("solicitation for our address not answered")
	}
	f = f[:ethHdrLen+ip6HdrLen+naLen]
	h := f[ethHdrLen:]
	m := h[ip6HdrLen:]
	switch {
	case !bytes.Equal(f[0:6], peerMAC) || !bytes.Equal(f[6:12], testMAC):
		t.Errorf("ethernet %x -> %x, want %x -> %x", f[6:12], f[0:6], testMAC, peerMAC)
	case !bytes.Equal(h[8:24], testIP6) || !bytes.Equal(h[24:40], peerIP6):
		t.Errorf("ip %x -> %x, want %x -> %x", h[8:24], h[24:40], testIP6, peerIP6)
	case binary.BigEndian.Uint16(h[4:6]) != naLen || h[7] != 255:
		t.Errorf("payload length %d hop limit %d", binary.BigEndian.Uint16(h[4:6]), h[7])
	case m[0] != 136 || m[4] != 0x60 || !bytes.Equal(m[8:24], testIP6):
		t.Errorf("advertisement type %d flags %#x target %x", m[0], m[4], m[8:24])
	case m[24] != 2 || m[25] != 1 || !bytes.Equal(m[26:32], testMAC):
		t.Errorf("target link-layer option %x", m[24:32])
	}
	// A correct checksum makes the sum over pseudo-header and message 0.
	if c := icmp6Checksum(h[8:24], h[24:40], m); c != 0 {
		t.Errorf("advertisement checksum does not verify (residue %#04x)", c)
	}
}

func TestNAReplyIgnoresOthers(t *testing.T) {
	other := append([]byte(nil), testIP6...)
	other[15] = 9
	for name, tc := range map[string]struct {
		target, src []byte
		hops        byte
	}{
		"other target":    {other, peerIP6, 255},
		"DAD probe":       {testIP6, make([]byte, 16), 255},
		"hop limit < 255": {testIP6, peerIP6, 64},
	} {
		ns := make([]byte, nsLen)
		ns[0] = 135
		copy(ns[8:24], tc.target)
		f := ip6Frame([]byte{0x33, 0x33, 0xff, 0, 0, 2}, solicited, protoICMP6, tc.hops, ns)
		copy(f[ethHdrLen+8:ethHdrLen+24], tc.src)
		if naReply(f, testMAC, testIP6) {
			t.Errorf("%s: answered", name)
		}
	}
}

func TestUDP6BounceSwapsEnds(t *testing.T) {
	u := []byte{0x9c, 0x40, 0, 7, 0, 12, 0xab, 0xcd, 'p', 'i', 'n', 'g'}
	f := ip6Frame(testMAC, testIP6, protoUDP, 63, u)
	if !udp6Bounce(f, testMAC, testIP6, 7) {
		t.Fatal("udp to our address and port not bounced")
	}
	h := f[ethHdrLen:]
	r := h[ip6HdrLen:]
	switch {
	case !bytes.Equal(f[0:6], peerMAC) || !bytes.Equal(f[6:12], testMAC):
		t.Errorf("ethernet %x -> %x", f[6:12], f[0:6])
	case !bytes.Equal(h[8:24], testIP6) || !bytes.Equal(h[24:40], peerIP6) || h[7] != replyTTL:
		t.Errorf("ip %x -> %x hop limit %d", h[8:24], h[24:40], h[7])
	case !bytes.Equal(r[:4], []byte{0, 7, 0x9c, 0x40}) || !bytes.Equal(r[4:], u[4:]):
		t.Errorf("udp %x", r)
	}
	if udp6Bounce(ip6Frame(testMAC, peerIP6, protoUDP, 64, u), testMAC, testIP6, 7) {
		t.Error("udp to another address bounced")
	}
}
