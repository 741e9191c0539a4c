package tap

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/checksum"
)

// superFrame builds an Ethernet/IPv4/UDP frame carrying payload, with the
// header a kernel sends for a UDP_SEGMENT burst of seg-byte segments.
func superFrame(payload []byte, seg int) (vnetHdr, []byte) {
	f := make([]byte, ethernet.HeaderLen+28+len(payload))
	ethernet.PutHeader(f, ethernet.MAC{2, 0, 0, 0, 0, 1}, ethernet.MAC{2, 0, 0, 0, 0, 2}, ethernet.TypeIPv4)
	ip := f[ethernet.HeaderLen:]
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
	binary.BigEndian.PutUint16(ip[4:], 1000)
	binary.BigEndian.PutUint16(ip[6:], 0x4000) // DF
	copy(ip[12:], []byte{192, 0, 2, 1, 192, 0, 2, 2})
	binary.BigEndian.PutUint16(ip[10:], checksum.Checksum(ip[:20]))
	u := ip[20:]
	binary.BigEndian.PutUint16(u[0:], 5000)
	binary.BigEndian.PutUint16(u[2:], 7)
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	copy(u[8:], payload)
	h := vnetHdr{flags: vnetNeedsCsum, gsoType: vnetGSOUDPL4, hdrLen: 42, gsoSize: uint16(seg),
		csumStart: 34, csumOffset: 6}
	return h, f
}

func TestVnetHdrRoundTrip(t *testing.T) {
	h := vnetHdr{flags: 1, gsoType: 5, hdrLen: 42, gsoSize: 1400, csumStart: 34, csumOffset: 6}
	var b [vnetHdrLen]byte
	h.encode(b[:])
	if got := decodeVnetHdr(b[:]); got != h {
		t.Fatalf("decoded %+v, want %+v", got, h)
	}
}

func TestSplitUDPSuperFrame(t *testing.T) {
	payload := make([]byte, 3500)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	h, f := superFrame(payload, 1400)
	s, err := checkRxFrame(h, f, 1500, ethernet.HeaderLen)
	if err != nil || s.segs != 3 {
		t.Fatalf("checkRxFrame: %+v, %v; want 3 segments", s, err)
	}
	var got []byte
	for i := range s.segs {
		seg := make([]byte, s.segmentLen(i))
		n := s.putSegment(seg, f, i)
		if n != len(seg) {
			t.Fatalf("segment %d: wrote %d of %d", i, n, len(seg))
		}
		ip := seg[ethernet.HeaderLen:]
		if checksum.Checksum(ip[:20]) != 0 {
			t.Errorf("segment %d: bad IP checksum", i)
		}
		if tl := int(binary.BigEndian.Uint16(ip[2:])); tl != len(ip) {
			t.Errorf("segment %d: IP total length %d, want %d", i, tl, len(ip))
		}
		if id := binary.BigEndian.Uint16(ip[4:]); id != 1000+uint16(i) {
			t.Errorf("segment %d: IP ID %d", i, id)
		}
		if ul := int(binary.BigEndian.Uint16(ip[24:])); ul != len(ip)-20 {
			t.Errorf("segment %d: UDP length %d, want %d", i, ul, len(ip)-20)
		}
		want := min(1400, len(payload)-i*1400)
		if len(ip)-28 != want {
			t.Errorf("segment %d: %d payload bytes, want %d", i, len(ip)-28, want)
		}
		got = append(got, ip[28:]...)
	}
	if !bytes.Equal(got, payload) {
		t.Error("segments do not add up to the payload")
	}
}

// lyingHeaders edit a valid super-frame (3000 payload bytes in 1400-byte
// segments, MTU 1500) into one whose header lies, and say how
// checkRxFrame refuses it.
var lyingHeaders = []struct {
	name string
	edit func(h *vnetHdr, f []byte) []byte
	want error
}{
	{"gso_size 0", func(h *vnetHdr, f []byte) []byte { h.gsoSize = 0; return f }, errVnetGSOSize},
	{"gso_size beyond MTU", func(h *vnetHdr, f []byte) []byte { h.gsoSize = 1500; return f }, errVnetGSOSize},
	{"csum offset outside", func(h *vnetHdr, f []byte) []byte { h.csumOffset = 60000; return f }, errVnetCsum},
	{"csum start outside", func(h *vnetHdr, f []byte) []byte { h.csumStart = uint16(len(f)); return f }, errVnetCsum},
	{"IP length beyond frame", func(h *vnetHdr, f []byte) []byte { return f[:len(f)-100] }, errVnetGSOFrame},
	{"not UDP", func(h *vnetHdr, f []byte) []byte { f[ethernet.HeaderLen+9] = 6; return f }, errVnetGSOFrame},
	{"fragment", func(h *vnetHdr, f []byte) []byte { f[ethernet.HeaderLen+6] = 0x20; return f }, errVnetGSOFrame},
	{"unknown gso type", func(h *vnetHdr, f []byte) []byte { h.gsoType = 3; return f }, errVnetGSO},
	{"truncated headers", func(h *vnetHdr, f []byte) []byte { h.flags = 0; return f[:30] }, errVnetGSOFrame},
}

func TestLyingVnetHeadersRefused(t *testing.T) {
	for _, tc := range lyingHeaders {
		h, f := superFrame(make([]byte, 3000), 1400)
		f = tc.edit(&h, f)
		if _, err := checkRxFrame(h, f, 1500, ethernet.HeaderLen); err != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// FuzzVirtioNetHdr feeds arbitrary headers and frames to the receive checks
// and the splitter: whatever passes must split into segments that stay
// inside the frame and the MTU, and nothing may panic.
func FuzzVirtioNetHdr(f *testing.F) {
	h, fr := superFrame(make([]byte, 3000), 1400)
	var hb [vnetHdrLen]byte
	h.encode(hb[:])
	f.Add(append(hb[:], fr...))
	f.Add(append(make([]byte, vnetHdrLen), fr[:100]...))
	h6, fr6 := superFrame6(make([]byte, 3000), 1400)
	h6.encode(hb[:])
	f.Add(append(hb[:], fr6...))
	const mtu = 1500
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < vnetHdrLen {
			return
		}
		h := decodeVnetHdr(b)
		frame := b[vnetHdrLen:]
		l2 := ethernet.HeaderLen // a TAP's frame, or a TUN's bare IPv4 packet
		if len(frame) > 0 && frame[0]>>4 == 4 {
			l2 = 0
		}
		s, err := checkRxFrame(h, frame, mtu, l2)
		if err != nil {
			return
		}
		if h.flags&vnetNeedsCsum != 0 {
			clearPartialChecksum(h, frame, l2)
		}
		if s.segs > 64*1024 {
			t.Fatalf("%d segments", s.segs)
		}
		var seg [mtu + ethernet.HeaderLen]byte
		total := 0
		for i := range s.segs {
			l := s.segmentLen(i)
			if l > len(seg) || l <= s.payOff {
				t.Fatalf("segment %d of %d bytes", i, l)
			}
			if n := s.putSegment(seg[:], frame, i); n != l {
				t.Fatalf("segment %d: wrote %d, want %d", i, n, l)
			}
			total += l - s.payOff
		}
		if s.segs > 0 && total != s.end-s.payOff {
			t.Fatalf("segments carry %d payload bytes", total)
		}
	})
}

// superFrame6 is superFrame over IPv6.
func superFrame6(payload []byte, seg int) (vnetHdr, []byte) {
	f := make([]byte, ethernet.HeaderLen+48+len(payload))
	ethernet.PutHeader(f, ethernet.MAC{2, 0, 0, 0, 0, 1}, ethernet.MAC{2, 0, 0, 0, 0, 2}, ethernet.TypeIPv6)
	ip := f[ethernet.HeaderLen:]
	ip[0], ip[6], ip[7] = 0x60, 17, 64
	binary.BigEndian.PutUint16(ip[4:], uint16(8+len(payload)))
	ip[8], ip[9], ip[39] = 0x20, 0x01, 1 // 2001:...::1 → 2001:...::2
	ip[24], ip[25], ip[23] = 0x20, 0x01, 2
	u := ip[40:]
	binary.BigEndian.PutUint16(u[0:], 5000)
	binary.BigEndian.PutUint16(u[2:], 7)
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	copy(u[8:], payload)
	return vnetHdr{flags: vnetNeedsCsum, gsoType: vnetGSOUDPL4, hdrLen: 62, gsoSize: uint16(seg),
		csumStart: 54, csumOffset: 6}, f
}

func TestSplitUDPSuperFrameIPv6(t *testing.T) {
	payload := make([]byte, 2900)
	for i := range payload {
		payload[i] = byte(i / 1400)
	}
	h, f := superFrame6(payload, 1400)
	s, err := checkRxFrame(h, f, 1500, ethernet.HeaderLen)
	if err != nil || s.segs != 3 || !s.v6 {
		t.Fatalf("checkRxFrame: %+v, %v; want 3 IPv6 segments", s, err)
	}
	for i := range s.segs {
		seg := make([]byte, s.segmentLen(i))
		s.putSegment(seg, f, i)
		ip := seg[ethernet.HeaderLen:]
		want := min(1400, len(payload)-i*1400)
		if pl := int(binary.BigEndian.Uint16(ip[4:])); pl != 8+want || len(ip) != 48+want {
			t.Errorf("segment %d: payload length %d, %d bytes; want %d", i, pl, len(ip), 8+want)
		}
		if ul := int(binary.BigEndian.Uint16(ip[44:])); ul != 8+want || ip[48] != byte(i) {
			t.Errorf("segment %d: UDP length %d, first byte %d", i, ul, ip[48])
		}
	}
	f[ethernet.HeaderLen+6] = 0 // a hop-by-hop header before UDP: not segmented here
	if _, err := checkRxFrame(h, f, 1500, ethernet.HeaderLen); err != errVnetGSOFrame {
		t.Errorf("extension header: %v", err)
	}
}
