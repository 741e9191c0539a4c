package ipv6

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/tapnet/tapnet/internal/checksum"
)

// ICMPv6 message types (RFC 4443, RFC 4861, RFC 2710, RFC 3810).
const (
	ICMPDestUnreachable = 1
	ICMPPacketTooBig    = 2
	ICMPTimeExceeded    = 3
	ICMPParamProblem    = 4
	ICMPEchoRequest     = 128
	ICMPEchoReply       = 129
	ICMPMLDQuery        = 130
	ICMPMLDv1Report     = 131
	ICMPMLDv1Done       = 132
	ICMPRouterSolicit   = 133
	ICMPRouterAdvert    = 134
	ICMPNeighborSolicit = 135
	ICMPNeighborAdvert  = 136
	ICMPRedirect        = 137
	ICMPMLDv2Report     = 143
)

// Destination Unreachable codes (RFC 4443 3.1).
const (
	CodeNoRoute           = 0
	CodeAdminProhibited   = 1
	CodeBeyondScope       = 2
	CodeAddrUnreachable   = 3
	CodePortUnreachable   = 4
	CodeSourcePolicy      = 5
	CodeRejectRoute       = 6
	CodeHopLimitExceeded  = 0 // with ICMPTimeExceeded
	CodeReassemblyTimeout = 1 // with ICMPTimeExceeded
)

// ICMPv6 sizes.
const (
	// ICMPHeaderLen is the type, code and checksum and the four bytes
	// every message defined here has after them.
	ICMPHeaderLen = 8
	// MaxErrorLen bounds an ICMPv6 error, IPv6 header included, to the
	// minimum MTU (RFC 4443 2.4 (c)).
	MaxErrorLen = MinMTU
)

// Errors returned by ParseICMP.
var (
	ErrICMPTooShort = errors.New("icmpv6: message shorter than its header")
	ErrICMPChecksum = errors.New("icmpv6: bad checksum")
)

// ICMP is a view of an ICMPv6 message (the whole upper-layer payload).
type ICMP []byte

// ParseICMP validates an ICMPv6 message received from src to dst: its
// length and its checksum over the pseudo-header (RFC 4443 2.3).
func ParseICMP(b []byte, src, dst netip.Addr) (ICMP, error) {
	if len(b) < ICMPHeaderLen {
		return nil, ErrICMPTooShort
	}
	if ^checksum.Fold(checksum.Sum(b, PseudoHeaderSum(src, dst, ProtocolICMPv6, len(b)))) != 0 {
		return nil, ErrICMPChecksum
	}
	return ICMP(b), nil
}

// Type returns the message type.
func (m ICMP) Type() uint8 { return m[0] }

// Code returns the message code.
func (m ICMP) Code() uint8 { return m[1] }

// Checksum returns the checksum field.
func (m ICMP) Checksum() uint16 { return binary.BigEndian.Uint16(m[2:4]) }

// RestOfHeader returns bytes 4–7: the echo identifier and sequence, the
// MTU of a Packet Too Big, the pointer of a Parameter Problem.
func (m ICMP) RestOfHeader() uint32 { return binary.BigEndian.Uint32(m[4:8]) }

// EchoID returns an echo message's identifier.
func (m ICMP) EchoID() uint16 { return binary.BigEndian.Uint16(m[4:6]) }

// EchoSeq returns an echo message's sequence number.
func (m ICMP) EchoSeq() uint16 { return binary.BigEndian.Uint16(m[6:8]) }

// MTU returns the MTU of a Packet Too Big.
func (m ICMP) MTU() uint32 { return m.RestOfHeader() }

// Pointer returns the pointer of a Parameter Problem.
func (m ICMP) Pointer() uint32 { return m.RestOfHeader() }

// Body returns what follows the 8-byte header: echo data, or as much of
// the invoking packet as an error carries.
func (m ICMP) Body() []byte { return m[ICMPHeaderLen:] }

// IsError reports whether the message is an error (types below 128),
// which is never answered with another error (RFC 4443 2.4 (e)).
func (m ICMP) IsError() bool { return m.Type() < 128 }

// PutICMPHeader writes type, code and rest-of-header into b[:8] and clears
// the checksum; PutChecksum completes the message.
func PutICMPHeader(b []byte, typ, code uint8, rest uint32) {
	_ = b[ICMPHeaderLen-1]
	b[0], b[1], b[2], b[3] = typ, code, 0, 0
	binary.BigEndian.PutUint32(b[4:8], rest)
}

// PutChecksum computes the checksum of the whole ICMPv6 message b, sent
// from src to dst, and writes it into b[2:4].
func PutChecksum(b []byte, src, dst netip.Addr) {
	b[2], b[3] = 0, 0
	c := ^checksum.Fold(checksum.Sum(b, PseudoHeaderSum(src, dst, ProtocolICMPv6, len(b))))
	binary.BigEndian.PutUint16(b[2:4], c)
}
