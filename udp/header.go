// Package udp is UDP's wire format (RFC 768): a header view, parsing with
// checksum verification and header construction, as plain functions over
// []byte that keep no state and allocate nothing.
//
// The stack parses and builds UDP with these functions; the socket behind
// gonet's conns is internal to the module.
package udp

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/tapnet/tapnet/internal/checksum"
)

// HeaderLen is the UDP header length.
const HeaderLen = 8

// ProtocolNumber is UDP's IP protocol number.
const ProtocolNumber = 17

// MaxPayload is the largest UDP payload an IPv4 datagram can carry.
const MaxPayload = 65535 - 20 - HeaderLen

// MaxPayload6 is the largest UDP payload an IPv6 packet without
// extension headers can carry (jumbograms aside).
const MaxPayload6 = 65535 - HeaderLen

// Errors returned by ParseHeader, one per drop reason.
var (
	ErrTooShort = errors.New("udp: datagram shorter than its header")
	ErrLength   = errors.New("udp: length field disagrees with the IP payload")
	ErrChecksum = errors.New("udp: bad checksum")
	// ErrZeroChecksum: a datagram over IPv6 without a checksum, which
	// IPv6 makes mandatory (RFC 8200 8.1).
	ErrZeroChecksum = errors.New("udp: zero checksum over IPv6")
)

// Header is a view of a UDP header.
type Header []byte

// SrcPort returns the source port.
func (h Header) SrcPort() uint16 { return binary.BigEndian.Uint16(h[0:2]) }

// DstPort returns the destination port.
func (h Header) DstPort() uint16 { return binary.BigEndian.Uint16(h[2:4]) }

// Length returns the length field (header plus payload).
func (h Header) Length() int { return int(binary.BigEndian.Uint16(h[4:6])) }

// Checksum returns the checksum field; zero means none was computed.
func (h Header) Checksum() uint16 { return binary.BigEndian.Uint16(h[6:8]) }

// ParseHeader validates a UDP datagram that is the whole IP payload b, or
// its first part when the payload is spread over several (a reassembled
// datagram): total is then the IP payload length and rest the plain sum of
// the big-endian 16-bit words of the datagram's bytes after b (up to its
// length field), carries unfolded; b must hold an even number of bytes.
// For a contiguous datagram, total is len(b) and rest 0.
// The length field must not exceed the IP payload (a shorter one trims it,
// as Linux does), and a non-zero checksum must verify. Over IPv6 (src and
// dst IPv6 addresses) the checksum covers IPv6's pseudo-header and zero is
// refused.
func ParseHeader(b []byte, total int, rest uint64, src, dst netip.Addr) (Header, error) {
	if len(b) < HeaderLen || total < HeaderLen {
		return nil, ErrTooShort
	}
	h := Header(b[:HeaderLen])
	l := h.Length()
	if l < HeaderLen || l > total {
		return nil, ErrLength
	}
	if h.Checksum() == 0 && src.Is6() {
		return nil, ErrZeroChecksum
	}
	if h.Checksum() != 0 {
		sum := pseudoHeader(src, dst, l)
		if l <= len(b) {
			sum = checksum.Sum(b[:l], sum)
		} else {
			sum = checksum.Sum(b, sum) + rest
		}
		if checksum.Fold(sum) != 0xffff {
			return nil, ErrChecksum
		}
	}
	return h, nil
}

// PutHeader writes a header into b[:8] for a datagram whose payload follows
// it in b, and computes the checksum over the pseudo-header and b. A
// computed checksum of zero is sent as 0xffff (RFC 768).
func PutHeader(b []byte, srcPort, dstPort uint16, src, dst netip.Addr) {
	binary.BigEndian.PutUint16(b[0:2], srcPort)
	binary.BigEndian.PutUint16(b[2:4], dstPort)
	binary.BigEndian.PutUint16(b[4:6], uint16(len(b)))
	b[6], b[7] = 0, 0
	sum := pseudoHeader(src, dst, len(b))
	c := ^checksum.Fold(checksum.Sum(b, sum))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(b[6:8], c)
}

// pseudoHeader returns the checksum accumulator of the pseudo-header of
// IPv4 (RFC 768) or, for IPv6 addresses, IPv6 (RFC 8200 8.1).
func pseudoHeader(src, dst netip.Addr, length int) uint64 {
	if src.Is4() {
		return checksum.PseudoHeader(src.As4(), dst.As4(), ProtocolNumber, length)
	}
	s, d := src.As16(), dst.As16()
	return checksum.Sum(d[:], checksum.Sum(s[:], 0)) + uint64(uint32(length)) + ProtocolNumber
}

// ParseHeaderVerified is ParseHeader for a datagram whose checksum a link
// already verified (or that never left the host's memory): it checks the
// lengths only.
func ParseHeaderVerified(b []byte, total int) (Header, error) {
	if len(b) < HeaderLen || total < HeaderLen {
		return nil, ErrTooShort
	}
	h := Header(b[:HeaderLen])
	if l := h.Length(); l < HeaderLen || l > total {
		return nil, ErrLength
	}
	return h, nil
}

// PutHeaderPartial writes a header into b[:8] for a datagram whose payload
// follows it in b, with only the pseudo-header sum (not complemented) in
// the checksum field, for a link that completes the checksum by summing the
// datagram from its header on (checksum offload), over IPv4 or IPv6. For a UDP super-frame,
// whose payload a link cuts into datagrams, the length is that of the whole.
func PutHeaderPartial(b []byte, srcPort, dstPort uint16, src, dst netip.Addr) {
	binary.BigEndian.PutUint16(b[0:2], srcPort)
	binary.BigEndian.PutUint16(b[2:4], dstPort)
	binary.BigEndian.PutUint16(b[4:6], uint16(len(b)))
	sum := pseudoHeader(src, dst, len(b))
	binary.BigEndian.PutUint16(b[6:8], checksum.Fold(sum))
}
