// Package ipv4 holds the IPv4 wire formats: the header and its options,
// ICMP messages and IGMP (v1, v2 and v3) messages. Views over []byte parse
// and validate without allocating and return one sentinel error per reason,
// so every drop can be counted; Put functions write into buffers the caller
// owns. It keeps no state and knows nothing of NICs, sockets or buffers:
// reassembly, the ICMP error rate limit and the errno a socket reports for
// an ICMP error live in the stack package, which wires this one between the
// links below and the transports above.
package ipv4

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/tapnet/tapnet/internal/checksum"
)

// Header field constants.
const (
	HeaderLen    = 20 // without options
	MaxHeaderLen = 60
	MaxTotalLen  = 65535
	DefaultTTL   = 64

	flagDF = 0x4000
	flagMF = 0x2000

	ProtocolICMP = 1
	ProtocolIGMP = 2
	ProtocolUDP  = 17
)

// Errors returned by Parse, one per reason so that each drop is counted.
var (
	ErrTooShort    = errors.New("ipv4: packet shorter than its header")
	ErrVersion     = errors.New("ipv4: version is not 4")
	ErrHeaderLen   = errors.New("ipv4: header length below 20 bytes")
	ErrTotalLen    = errors.New("ipv4: total length outside the frame")
	ErrChecksum    = errors.New("ipv4: bad header checksum")
	ErrBadFragment = errors.New("ipv4: fragment offset past 65535")
)

// Header is a view of an IPv4 header at the front of a packet. Accessors do
// no bounds checks beyond Go's; use Parse to validate first.
type Header []byte

// Parse validates the IPv4 header at the front of b: version, IHL ≥ 5,
// total length within b and not below the header, and the header checksum.
// Options are not interpreted (they are skipped by HeaderLen). It returns the
// header view; the packet is b[:h.TotalLen()] (the rest is link padding).
func Parse(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return nil, ErrTooShort
	}
	if b[0]>>4 != 4 {
		return nil, ErrVersion
	}
	hl := int(b[0]&0x0f) * 4
	if hl < HeaderLen {
		return nil, ErrHeaderLen
	}
	if len(b) < hl {
		return nil, ErrTooShort
	}
	tl := int(binary.BigEndian.Uint16(b[2:4]))
	if tl < hl || tl > len(b) {
		return nil, ErrTotalLen
	}
	if checksum.Checksum(b[:hl]) != 0 {
		return nil, ErrChecksum
	}
	h := Header(b[:hl])
	if h.FragmentOffset()+tl-hl > MaxTotalLen {
		return nil, ErrBadFragment
	}
	return h, nil
}

// HeaderLen returns the header length in bytes, options included.
func (h Header) HeaderLen() int { return int(h[0]&0x0f) * 4 }

// TOS returns the type-of-service byte.
func (h Header) TOS() uint8 { return h[1] }

// TotalLen returns the total length field.
func (h Header) TotalLen() int { return int(binary.BigEndian.Uint16(h[2:4])) }

// ID returns the identification field.
func (h Header) ID() uint16 { return binary.BigEndian.Uint16(h[4:6]) }

// DontFragment reports the DF flag.
func (h Header) DontFragment() bool { return binary.BigEndian.Uint16(h[6:8])&flagDF != 0 }

// MoreFragments reports the MF flag.
func (h Header) MoreFragments() bool { return binary.BigEndian.Uint16(h[6:8])&flagMF != 0 }

// FragmentOffset returns the fragment offset in bytes.
func (h Header) FragmentOffset() int { return int(binary.BigEndian.Uint16(h[6:8])&0x1fff) * 8 }

// IsFragment reports whether the packet is part of a fragmented datagram.
func (h Header) IsFragment() bool { return h.MoreFragments() || h.FragmentOffset() != 0 }

// TTL returns the time-to-live.
func (h Header) TTL() uint8 { return h[8] }

// Protocol returns the transport protocol number.
func (h Header) Protocol() uint8 { return h[9] }

// Src returns the source address.
func (h Header) Src() netip.Addr { return netip.AddrFrom4([4]byte(h[12:16])) }

// Dst returns the destination address.
func (h Header) Dst() netip.Addr { return netip.AddrFrom4([4]byte(h[16:20])) }

// Fields describe a header to build.
type Fields struct {
	TOS      uint8
	TotalLen int
	ID       uint16
	DF, MF   bool
	Offset   int // fragment offset in bytes, a multiple of 8
	TTL      uint8
	Protocol uint8
	Src, Dst netip.Addr
}

// Put writes a 20-byte header without options into b and computes its
// checksum.
func Put(b []byte, f Fields) {
	_ = b[HeaderLen-1]
	b[0] = 0x45
	b[1] = f.TOS
	binary.BigEndian.PutUint16(b[2:4], uint16(f.TotalLen))
	binary.BigEndian.PutUint16(b[4:6], f.ID)
	ff := uint16(f.Offset/8) & 0x1fff
	if f.DF {
		ff |= flagDF
	}
	if f.MF {
		ff |= flagMF
	}
	binary.BigEndian.PutUint16(b[6:8], ff)
	b[8] = f.TTL
	b[9] = f.Protocol
	b[10], b[11] = 0, 0
	src, dst := f.Src.As4(), f.Dst.As4()
	copy(b[12:16], src[:])
	copy(b[16:20], dst[:])
	binary.BigEndian.PutUint16(b[10:12], checksum.Checksum(b[:HeaderLen]))
}

// Errors returned by CheckOptions.
var (
	ErrBadOptions  = errors.New("ipv4: malformed options")
	ErrSourceRoute = errors.New("ipv4: source-routed packet")
)

// IP option types that matter on input.
const (
	optEnd  = 0
	optNOP  = 1
	optLSRR = 131
	optSSRR = 137
)

// CheckOptions validates the options of a parsed header the way a host
// must before trusting them: every option's length fits, and source-routed
// packets are refused (Linux's accept_source_route=0 default).
func (h Header) CheckOptions() error {
	opts := h[HeaderLen:h.HeaderLen()]
	for len(opts) > 0 {
		switch opts[0] {
		case optEnd:
			return nil
		case optNOP:
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || opts[1] < 2 || int(opts[1]) > len(opts) {
			return ErrBadOptions
		}
		if opts[0] == optLSRR || opts[0] == optSSRR {
			return ErrSourceRoute
		}
		opts = opts[opts[1]:]
	}
	return nil
}

// IsMartianSource reports whether a packet from addr must be dropped on
// input, as Linux does: unspecified, loopback, multicast, limited broadcast
// and reserved (class E) sources. Subnet broadcasts are checked by the stack,
// which knows its prefixes.
func IsMartianSource(addr netip.Addr) bool {
	a := addr.As4()
	switch {
	case a[0] == 0, a[0] == 127, a[0] >= 224:
		return true
	}
	return false
}

// IsMulticast reports whether addr is in 224.0.0.0/4.
func IsMulticast(addr netip.Addr) bool { a := addr.As4(); return a[0]&0xf0 == 0xe0 }

// Broadcast is the limited broadcast address 255.255.255.255.
var Broadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})
