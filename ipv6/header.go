package ipv6

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/tapnet/tapnet/internal/checksum"
)

// Header field constants.
const (
	HeaderLen = 40
	// MaxPayloadLen is the largest payload a header can describe
	// (jumbograms are not supported).
	MaxPayloadLen = 65535
	// MinMTU is the link MTU every IPv6 link provides (RFC 8200 5).
	MinMTU = 1280
	// DefaultHopLimit is Linux's default unicast hop limit.
	DefaultHopLimit = 64
)

// Next header values (IANA protocol numbers) the walker and the stack use.
const (
	ProtocolHopByHop     = 0
	ProtocolTCP          = 6
	ProtocolUDP          = 17
	ProtocolRouting      = 43
	ProtocolFragment     = 44
	ProtocolICMPv6       = 58
	ProtocolNoNextHeader = 59
	ProtocolDestOptions  = 60
)

// Errors returned by Parse.
var (
	ErrTooShort   = errors.New("ipv6: packet shorter than its header")
	ErrVersion    = errors.New("ipv6: version is not 6")
	ErrPayloadLen = errors.New("ipv6: payload length runs past the frame")
	ErrJumbogram  = errors.New("ipv6: jumbogram (zero payload length with hop-by-hop options)")
)

// Header is a view of the 40-byte IPv6 header at the front of a packet.
// Accessors do no bounds checks beyond Go's; use Parse to validate first.
type Header []byte

// Parse validates the IPv6 header at the front of b: its version and a
// payload length that fits in b. A zero payload length followed by a
// hop-by-hop header announces a jumbogram (RFC 2675), which is refused.
// The packet is b[:HeaderLen+h.PayloadLen()]; the rest is link padding.
func Parse(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return nil, ErrTooShort
	}
	if b[0]>>4 != 6 {
		return nil, ErrVersion
	}
	h := Header(b[:HeaderLen])
	if h.PayloadLen() == 0 && h.NextHeader() == ProtocolHopByHop {
		return nil, ErrJumbogram
	}
	if h.PayloadLen() > len(b)-HeaderLen {
		return nil, ErrPayloadLen
	}
	return h, nil
}

// TrafficClass returns the traffic class (DSCP and ECN).
func (h Header) TrafficClass() uint8 { return uint8(binary.BigEndian.Uint16(h[0:2]) >> 4) }

// FlowLabel returns the 20-bit flow label.
func (h Header) FlowLabel() uint32 { return binary.BigEndian.Uint32(h[0:4]) & 0xfffff }

// PayloadLen returns the payload length: everything after the fixed
// header, extension headers included.
func (h Header) PayloadLen() int { return int(binary.BigEndian.Uint16(h[4:6])) }

// NextHeader returns the type of the header that follows.
func (h Header) NextHeader() uint8 { return h[6] }

// HopLimit returns the hop limit.
func (h Header) HopLimit() uint8 { return h[7] }

// Src returns the source address.
func (h Header) Src() netip.Addr { return netip.AddrFrom16([16]byte(h[8:24])) }

// Dst returns the destination address.
func (h Header) Dst() netip.Addr { return netip.AddrFrom16([16]byte(h[24:40])) }

// Fields describe a header to build.
type Fields struct {
	TrafficClass uint8
	FlowLabel    uint32 // low 20 bits
	PayloadLen   int
	NextHeader   uint8
	HopLimit     uint8
	Src, Dst     netip.Addr // IPv6 (an IPv4 address is written mapped)
}

// Put writes a 40-byte header into b.
func Put(b []byte, f Fields) {
	_ = b[HeaderLen-1]
	binary.BigEndian.PutUint32(b[0:4], 6<<28|uint32(f.TrafficClass)<<20|f.FlowLabel&0xfffff)
	binary.BigEndian.PutUint16(b[4:6], uint16(f.PayloadLen))
	b[6] = f.NextHeader
	b[7] = f.HopLimit
	src, dst := f.Src.As16(), f.Dst.As16()
	copy(b[8:24], src[:])
	copy(b[24:40], dst[:])
}

// PseudoHeaderSum returns the unfolded checksum accumulator of the IPv6
// pseudo-header (RFC 8200 8.1) that UDP and ICMPv6 checksums cover: the
// addresses, the upper-layer length and the next header value.
func PseudoHeaderSum(src, dst netip.Addr, protocol uint8, length int) uint64 {
	s, d := src.As16(), dst.As16()
	acc := checksum.Sum(s[:], 0)
	acc = checksum.Sum(d[:], acc)
	return acc + uint64(uint32(length)) + uint64(protocol)
}
