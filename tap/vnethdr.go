package tap

import (
	"encoding/binary"
	"errors"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/checksum"
)

// This file is the wire format of the virtio-net header (struct
// virtio_net_hdr, virtio spec 5.1.6) that a TAP opened with IFF_VNET_HDR puts
// in front of every frame, and the splitting of UDP super-frames into
// datagrams. It has no OS dependency, so it is fuzzed everywhere.

// vnetHdrLen is the size of struct virtio_net_hdr (no num_buffers: we never
// set TUNSETVNETHDRSZ above it).
const vnetHdrLen = 10

// virtio_net_hdr flags and gso_type values.
const (
	vnetNeedsCsum = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM
	vnetDataValid = 2 // VIRTIO_NET_HDR_F_DATA_VALID

	vnetGSONone  = 0 // VIRTIO_NET_HDR_GSO_NONE
	vnetGSOUDPL4 = 5 // VIRTIO_NET_HDR_GSO_UDP_L4
	vnetGSOECN   = 0x80
)

// vnetHdr is a decoded virtio_net_hdr. A TAP's header is in the host's
// byte order unless TUNSETVNETLE/BE says otherwise, which tapnet never
// sets.
type vnetHdr struct {
	flags      uint8
	gsoType    uint8
	hdrLen     uint16
	gsoSize    uint16
	csumStart  uint16
	csumOffset uint16
}

func decodeVnetHdr(b []byte) vnetHdr {
	return vnetHdr{
		flags:      b[0],
		gsoType:    b[1],
		hdrLen:     binary.NativeEndian.Uint16(b[2:]),
		gsoSize:    binary.NativeEndian.Uint16(b[4:]),
		csumStart:  binary.NativeEndian.Uint16(b[6:]),
		csumOffset: binary.NativeEndian.Uint16(b[8:]),
	}
}

func (h vnetHdr) encode(b []byte) {
	b[0], b[1] = h.flags, h.gsoType
	binary.NativeEndian.PutUint16(b[2:], h.hdrLen)
	binary.NativeEndian.PutUint16(b[4:], h.gsoSize)
	binary.NativeEndian.PutUint16(b[6:], h.csumStart)
	binary.NativeEndian.PutUint16(b[8:], h.csumOffset)
}

// Reasons a received header is refused; each is a counted drop.
var (
	errVnetCsum     = errors.New("tap: virtio-net checksum offsets outside the frame")
	errVnetGSO      = errors.New("tap: unsupported or inconsistent virtio-net GSO header")
	errVnetGSOSize  = errors.New("tap: virtio-net gso_size 0 or larger than the MTU allows")
	errVnetGSOFrame = errors.New("tap: virtio-net super-frame is not IPv4/UDP")
)

// udpSuper locates the parts of a UDP super-frame: a frame (Ethernet on a
// TAP, bare IP on a TUN) carrying one IPv4 or IPv6 packet whose UDP payload
// is to be cut into segments.
type udpSuper struct {
	ipOff, udpOff, payOff int  // offsets of the IP and UDP headers and payload
	end                   int  // offset just past the IP packet
	segSize               int  // payload bytes per segment (the last may be shorter)
	segs                  int  // number of segments
	v6                    bool // an IPv6 packet
}

// checkRxFrame validates a received frame (without its virtio-net header)
// against header h for a link of the given MTU whose frames start with l2
// bytes of link header (14 on a TAP, 0 on a TUN). For a super-frame it
// returns where its parts are; for any other frame, segs is 0.
func checkRxFrame(h vnetHdr, frame []byte, mtu, l2 int) (udpSuper, error) {
	if h.flags&vnetNeedsCsum != 0 {
		if int(h.csumStart)+int(h.csumOffset)+2 > len(frame) {
			return udpSuper{}, errVnetCsum
		}
	}
	switch h.gsoType &^ vnetGSOECN {
	case vnetGSONone:
		return udpSuper{}, nil
	case vnetGSOUDPL4:
		return locateUDPSuper(h, frame, mtu, l2)
	}
	return udpSuper{}, errVnetGSO
}

// locateUDPSuper checks a UDP_L4 super-frame's own headers rather than
// trusting hdr_len, so that a lying header cannot make a segment reach
// outside the frame or past the MTU.
func locateUDPSuper(h vnetHdr, frame []byte, mtu, l2 int) (udpSuper, error) {
	if h.gsoSize == 0 {
		return udpSuper{}, errVnetGSOSize
	}
	var s udpSuper
	var ok bool
	switch ipVersion(frame, l2) {
	case 4:
		s, ok = locateIPv4(frame, l2)
	case 6:
		s, ok = locateIPv6(frame, l2)
	}
	if !ok {
		return udpSuper{}, errVnetGSOFrame
	}
	s.payOff = s.udpOff + 8
	s.segSize = int(h.gsoSize)
	if s.payOff-s.ipOff+s.segSize > mtu {
		return udpSuper{}, errVnetGSOSize
	}
	// The IP length bounds the payload: Ethernet may pad, and the kernel
	// fills it in for the whole super-frame.
	if s.end > len(frame) || s.end <= s.payOff {
		return udpSuper{}, errVnetGSOFrame
	}
	s.segs = (s.end - s.payOff + s.segSize - 1) / s.segSize
	return s, nil
}

// locateIPv4 finds the UDP header and end of an unfragmented IPv4 packet
// behind l2 bytes of link header.
func locateIPv4(frame []byte, l2 int) (udpSuper, bool) {
	ip := frame[l2:]
	if len(ip) < 20+8 {
		return udpSuper{}, false
	}
	ihl := int(ip[0]&0x0f) * 4
	frag := binary.BigEndian.Uint16(ip[6:8])
	if ihl < 20 || len(ip) < ihl+8 || ip[9] != 17 || frag&0x3fff != 0 {
		return udpSuper{}, false // not UDP, or a fragment, which cannot be segmented
	}
	return udpSuper{ipOff: l2, udpOff: l2 + ihl, end: l2 + int(binary.BigEndian.Uint16(ip[2:4]))}, true
}

// locateIPv6 finds the UDP header and end of an IPv6 packet behind l2
// bytes of link header whose UDP header follows the fixed header (Linux
// segments no other shape).
func locateIPv6(frame []byte, l2 int) (udpSuper, bool) {
	ip := frame[l2:]
	if len(ip) < 40+8 || ip[6] != 17 {
		return udpSuper{}, false
	}
	return udpSuper{ipOff: l2, udpOff: l2 + 40, end: l2 + 40 + int(binary.BigEndian.Uint16(ip[4:6])), v6: true}, true
}

// payloadEnd returns the offset just past segment i's payload in the
// super-frame.
func (s *udpSuper) payloadEnd(i int) int {
	return min(s.payOff+(i+1)*s.segSize, s.end)
}

// segmentLen returns the frame length of segment i.
func (s *udpSuper) segmentLen(i int) int {
	return s.payOff + s.payloadEnd(i) - (s.payOff + i*s.segSize)
}

// putSegment writes segment i of the super-frame into dst (which must hold
// segmentLen bytes) as a plain datagram: the super-frame's link, IP and UDP
// headers with the lengths fixed, and on IPv4 the ID (incremented per
// segment, as Linux's segmentation does) and header checksum. The UDP
// checksum is zeroed (none on IPv4; on IPv6 a value no wire would carry):
// the device hands segments up checksum-valid, since they come from the
// kernel's memory, not from a wire, and nothing reads the field. It
// returns the length written.
func (s *udpSuper) putSegment(dst, frame []byte, i int) int {
	start, end := s.payOff+i*s.segSize, s.payloadEnd(i)
	n := copy(dst, frame[:s.payOff])
	n += copy(dst[n:], frame[start:end])
	fixSegmentHeaders(dst[:n], s, uint16(i))
	return n
}

// fixSegmentHeaders rewrites the IP and UDP headers of a segment whose
// headers were copied from its super-frame.
func fixSegmentHeaders(seg []byte, s *udpSuper, i uint16) {
	ip := seg[s.ipOff:s.udpOff]
	if s.v6 {
		binary.BigEndian.PutUint16(ip[4:], uint16(len(seg)-s.udpOff))
	} else {
		binary.BigEndian.PutUint16(ip[2:], uint16(len(seg)-s.ipOff))
		binary.BigEndian.PutUint16(ip[4:], binary.BigEndian.Uint16(ip[4:])+i)
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:], checksum.Checksum(ip))
	}
	udp := seg[s.udpOff:]
	binary.BigEndian.PutUint16(udp[4:], uint16(len(seg)-s.udpOff))
	udp[6], udp[7] = 0, 0
}

// clearPartialChecksum zeroes the UDP checksum of a received frame whose
// header says NEEDS_CSUM, where the field holds only the pseudo-header sum:
// zero (no checksum) is honest on IPv4, and the device hands the frame up
// as checksum-valid anyway. Frames of other protocols are left alone.
func clearPartialChecksum(h vnetHdr, frame []byte, l2 int) {
	at := int(h.csumStart) + int(h.csumOffset)
	if h.csumOffset != 6 || at+2 > len(frame) || len(frame) < l2+20 ||
		ipVersion(frame, l2) != 4 || frame[l2+9] != 17 {
		return // IPv6 keeps the partial sum: zero is no checksum there
	}
	frame[at], frame[at+1] = 0, 0
}

// ipVersion returns 4 or 6 for a frame that carries IPv4 or IPv6 behind l2
// bytes of link header (an Ethernet header or none), or 0.
func ipVersion(frame []byte, l2 int) int {
	if len(frame) <= l2 {
		return 0
	}
	if l2 == ethernet.HeaderLen {
		switch binary.BigEndian.Uint16(frame[12:14]) {
		case ethernet.TypeIPv4:
			return 4
		case ethernet.TypeIPv6:
			return 6
		}
		return 0
	}
	if v := int(frame[l2] >> 4); v == 4 || v == 6 {
		return v
	}
	return 0
}
