package ipv4

import (
	"encoding/binary"
	"errors"

	"github.com/tapnet/tapnet/internal/checksum"
)

// ICMP types and codes the stack uses (RFC 792).
const (
	ICMPEchoReply       = 0
	ICMPDestUnreachable = 3
	ICMPSourceQuench    = 4
	ICMPRedirect        = 5
	ICMPEcho            = 8
	ICMPTimeExceeded    = 11
	ICMPParamProblem    = 12

	CodeNetUnreachable      = 0
	CodeHostUnreachable     = 1
	CodeProtocolUnreachable = 2
	CodePortUnreachable     = 3
	CodeFragNeeded          = 4
	CodeReassemblyTimeout   = 1 // with ICMPTimeExceeded

	ICMPHeaderLen = 8
	// MaxErrorLen bounds an ICMP error message (IP header included) to the
	// 576 bytes every host accepts, as RFC 1812 and Linux do.
	MaxErrorLen = 576
)

// Errors returned by ParseICMP.
var (
	ErrICMPTooShort = errors.New("icmp: message shorter than its header")
	ErrICMPChecksum = errors.New("icmp: bad checksum")
)

// ICMP is a view of an ICMP message.
type ICMP []byte

// ParseICMP validates length and checksum.
func ParseICMP(b []byte) (ICMP, error) {
	if len(b) < ICMPHeaderLen {
		return nil, ErrICMPTooShort
	}
	if checksum.Checksum(b) != 0 {
		return nil, ErrICMPChecksum
	}
	return ICMP(b), nil
}

// Type returns the message type.
func (m ICMP) Type() uint8 { return m[0] }

// Code returns the message code.
func (m ICMP) Code() uint8 { return m[1] }

// RestOfHeader returns bytes 4–7 (echo identifier and sequence, next-hop MTU).
func (m ICMP) RestOfHeader() uint32 { return binary.BigEndian.Uint32(m[4:8]) }

// Body returns what follows the 8-byte header.
func (m ICMP) Body() []byte { return m[ICMPHeaderLen:] }

// IsError reports whether the type is an error message (which must never be
// answered with another error, RFC 1122 3.2.2).
func (m ICMP) IsError() bool {
	switch m.Type() {
	case ICMPDestUnreachable, ICMPSourceQuench, ICMPRedirect, ICMPTimeExceeded, ICMPParamProblem:
		return true
	}
	return false
}

// PutICMPHeader writes type, code and rest-of-header into b[:8] and computes
// the checksum over b, which must hold the whole message.
func PutICMPHeader(b []byte, typ, code uint8, rest uint32) {
	b[0], b[1], b[2], b[3] = typ, code, 0, 0
	binary.BigEndian.PutUint32(b[4:8], rest)
	binary.BigEndian.PutUint16(b[2:4], checksum.Checksum(b))
}
