package ipv4

import (
	"encoding/binary"
	"errors"
	"iter"
	"net/netip"
	"time"

	"github.com/tapnet/tapnet/internal/checksum"
)

// IGMP message types (RFC 1112, RFC 2236, RFC 3376).
const (
	IGMPMembershipQuery    = 0x11
	IGMPv1MembershipReport = 0x12
	IGMPv2MembershipReport = 0x16
	IGMPv2LeaveGroup       = 0x17
	IGMPv3MembershipReport = 0x22
)

// IGMPv3 group record types (RFC 3376 4.2.12): current-state records
// answer queries, the others report a change of interface state.
const (
	ModeIsInclude         = 1
	ModeIsExclude         = 2
	ChangeToIncludeMode   = 3
	ChangeToExcludeMode   = 4
	AllowNewSources       = 5
	BlockOldSources       = 6
	IGMPLen               = 8  // v1/v2 messages and v1/v2 queries
	IGMPv3QueryMinLen     = 12 // a v3 query without sources
	IGMPv3ReportMinLen    = 8  // a v3 report without records
	IGMPGroupRecordMinLen = 8  // a group record without sources
	// RouterAlertHeaderLen is the IPv4 header IGMP is sent with: 20 bytes
	// and the 4-byte Router Alert option (RFC 2113), as RFC 3376 requires.
	RouterAlertHeaderLen = HeaderLen + 4
	// IGMPTOS is the type of service Linux sends IGMP with (internetwork
	// control, RFC 3376 4).
	IGMPTOS = 0xc0
)

// Well-known groups.
var (
	AllHostsGroup         = netip.AddrFrom4([4]byte{224, 0, 0, 1})
	AllRoutersGroup       = netip.AddrFrom4([4]byte{224, 0, 0, 2})
	AllIGMPv3RoutersGroup = netip.AddrFrom4([4]byte{224, 0, 0, 22})
)

// Errors returned by ParseIGMP.
var (
	ErrIGMPTooShort  = errors.New("igmp: message shorter than 8 bytes")
	ErrIGMPChecksum  = errors.New("igmp: bad checksum")
	ErrIGMPLength    = errors.New("igmp: query length is neither 8 nor at least 12 bytes")
	ErrIGMPTruncated = errors.New("igmp: sources or records run past the message")
)

// IGMP is a view of an IGMP message (the whole IP payload).
type IGMP []byte

// ParseIGMP validates an IGMP message: its length, its checksum over the
// whole message and, for v3 queries and reports, that the counted sources
// and records fit. Version is told apart as RFC 3376 7.1 says: a query of
// 8 bytes is v1 (max response code 0) or v2, one of 12 or more is v3.
func ParseIGMP(b []byte) (IGMP, error) {
	if len(b) < IGMPLen {
		return nil, ErrIGMPTooShort
	}
	if checksum.Checksum(b) != 0 {
		return nil, ErrIGMPChecksum
	}
	m := IGMP(b)
	switch m.Type() {
	case IGMPMembershipQuery:
		switch {
		case len(b) == IGMPLen:
		case len(b) < IGMPv3QueryMinLen:
			return nil, ErrIGMPLength
		case IGMPv3QueryMinLen+4*m.NumSources() > len(b):
			return nil, ErrIGMPTruncated
		}
	case IGMPv3MembershipReport:
		off := IGMPv3ReportMinLen
		for i := 0; i < m.NumRecords(); i++ {
			if len(b)-off < IGMPGroupRecordMinLen {
				return nil, ErrIGMPTruncated
			}
			rl := GroupRecord(b[off:]).Len()
			if rl > len(b)-off {
				return nil, ErrIGMPTruncated
			}
			off += rl
		}
	}
	return m, nil
}

// Type returns the message type.
func (m IGMP) Type() uint8 { return m[0] }

// MaxRespCode returns the second byte: a query's maximum response code
// (unused, zero, in reports).
func (m IGMP) MaxRespCode() uint8 { return m[1] }

// Checksum returns the checksum field.
func (m IGMP) Checksum() uint16 { return binary.BigEndian.Uint16(m[2:4]) }

// Group returns the group address of a query or of a v1/v2 report or
// leave (the unspecified address in a general query).
func (m IGMP) Group() netip.Addr { return netip.AddrFrom4([4]byte(m[4:8])) }

// QueryVersion returns 1, 2 or 3 for a query by its length and code, and 0
// for other messages.
func (m IGMP) QueryVersion() int {
	switch {
	case m.Type() != IGMPMembershipQuery:
		return 0
	case len(m) >= IGMPv3QueryMinLen:
		return 3
	case m.MaxRespCode() == 0:
		return 1
	}
	return 2
}

// MaxRespTime returns how long a query allows before answering: the code
// in tenths of a second for v2, its floating-point form for v3 (RFC 3376
// 4.1.1) and 10 s for v1, which has no field.
func (m IGMP) MaxRespTime() time.Duration {
	switch m.QueryVersion() {
	case 1:
		return 10 * time.Second
	case 3:
		return time.Duration(DecodeIGMPCode(m.MaxRespCode())) * 100 * time.Millisecond
	}
	return time.Duration(m.MaxRespCode()) * 100 * time.Millisecond
}

// SuppressRouterProcessing returns the S flag of a v3 query.
func (m IGMP) SuppressRouterProcessing() bool { return m[8]&0x08 != 0 }

// QRV returns a v3 query's robustness variable (0: unset).
func (m IGMP) QRV() int { return int(m[8] & 0x07) }

// QueryInterval returns a v3 query's interval (QQIC, RFC 3376 4.1.7).
func (m IGMP) QueryInterval() time.Duration {
	return time.Duration(DecodeIGMPCode(m[9])) * time.Second
}

// NumSources returns a v3 query's source count.
func (m IGMP) NumSources() int { return int(binary.BigEndian.Uint16(m[10:12])) }

// Source returns the i-th source of a v3 query.
func (m IGMP) Source(i int) netip.Addr {
	o := IGMPv3QueryMinLen + 4*i
	return netip.AddrFrom4([4]byte(m[o : o+4]))
}

// NumRecords returns a v3 report's group record count.
func (m IGMP) NumRecords() int { return int(binary.BigEndian.Uint16(m[6:8])) }

// Records iterates over a v3 report's group records (validated by
// ParseIGMP).
func (m IGMP) Records() iter.Seq[GroupRecord] {
	return func(yield func(GroupRecord) bool) {
		off := IGMPv3ReportMinLen
		for i := 0; i < m.NumRecords(); i++ {
			r := GroupRecord(m[off:])
			r = r[:r.Len()]
			if !yield(r) {
				return
			}
			off += len(r)
		}
	}
}

// GroupRecord is a view of one group record of a v3 report.
type GroupRecord []byte

// Type returns the record type (ModeIsInclude…BlockOldSources).
func (r GroupRecord) Type() uint8 { return r[0] }

// AuxDataLen returns the auxiliary data length in bytes.
func (r GroupRecord) AuxDataLen() int { return int(r[1]) * 4 }

// NumSources returns the number of sources.
func (r GroupRecord) NumSources() int { return int(binary.BigEndian.Uint16(r[2:4])) }

// Group returns the multicast address.
func (r GroupRecord) Group() netip.Addr { return netip.AddrFrom4([4]byte(r[4:8])) }

// Source returns the i-th source.
func (r GroupRecord) Source(i int) netip.Addr {
	o := IGMPGroupRecordMinLen + 4*i
	return netip.AddrFrom4([4]byte(r[o : o+4]))
}

// Len returns the record's length, sources and auxiliary data included.
func (r GroupRecord) Len() int {
	return IGMPGroupRecordMinLen + 4*r.NumSources() + r.AuxDataLen()
}

// DecodeIGMPCode expands RFC 3376's 8-bit floating-point encoding, used by
// the Max Resp Code (in tenths of a second) and QQIC (in seconds): values
// below 128 are literal, others are (mant | 0x10) << (exp + 3).
func DecodeIGMPCode(c uint8) int {
	if c < 128 {
		return int(c)
	}
	return int(c&0x0f|0x10) << (int(c>>4&0x07) + 3)
}

// EncodeIGMPCode is the inverse of DecodeIGMPCode, rounding down to a
// representable value and saturating at 31744.
func EncodeIGMPCode(v int) uint8 {
	if v < 128 {
		return uint8(max(v, 0))
	}
	for exp := 0; exp < 8; exp++ {
		mant := v>>(exp+3) - 0x10
		if mant < 0x10 {
			return 0x80 | uint8(exp)<<4 | uint8(mant)
		}
	}
	return 0xff
}

// PutIGMP writes an 8-byte IGMP message into b (a v1/v2 report, a leave or
// a v1/v2 query) and its checksum.
func PutIGMP(b []byte, typ, code uint8, group netip.Addr) {
	_ = b[IGMPLen-1]
	b[0], b[1], b[2], b[3] = typ, code, 0, 0
	g := group.As4()
	copy(b[4:8], g[:])
	binary.BigEndian.PutUint16(b[2:4], checksum.Checksum(b[:IGMPLen]))
}

// IGMPv3Query describes a v3 query to build. Queries are what routers send;
// tapnet builds them to test its host side.
type IGMPv3Query struct {
	MaxRespCode uint8
	Group       netip.Addr // unspecified or invalid for a general query
	S           bool
	QRV         int
	QQIC        uint8
	Sources     []netip.Addr
}

// Len returns the query's length.
func (q *IGMPv3Query) Len() int { return IGMPv3QueryMinLen + 4*len(q.Sources) }

// Put writes the query into b, which must hold Len bytes, with its
// checksum.
func (q *IGMPv3Query) Put(b []byte) {
	n := q.Len()
	_ = b[n-1]
	b[0], b[1], b[2], b[3] = IGMPMembershipQuery, q.MaxRespCode, 0, 0
	var g [4]byte
	if q.Group.IsValid() {
		g = q.Group.As4()
	}
	copy(b[4:8], g[:])
	b[8] = uint8(q.QRV) & 0x07
	if q.S {
		b[8] |= 0x08
	}
	b[9] = q.QQIC
	binary.BigEndian.PutUint16(b[10:12], uint16(len(q.Sources)))
	for i, s := range q.Sources {
		a := s.As4()
		copy(b[IGMPv3QueryMinLen+4*i:], a[:])
	}
	binary.BigEndian.PutUint16(b[2:4], checksum.Checksum(b[:n]))
}

// GroupRecordFields describe a v3 group record to build.
type GroupRecordFields struct {
	Type    uint8
	Group   netip.Addr
	Sources []netip.Addr
}

// Len returns the record's length (no auxiliary data).
func (r *GroupRecordFields) Len() int { return IGMPGroupRecordMinLen + 4*len(r.Sources) }

// IGMPv3ReportLen returns the length of a report carrying recs.
func IGMPv3ReportLen(recs []GroupRecordFields) int {
	n := IGMPv3ReportMinLen
	for i := range recs {
		n += recs[i].Len()
	}
	return n
}

// PutIGMPv3Report writes a v3 report carrying recs into b, which must hold
// IGMPv3ReportLen(recs) bytes, with its checksum, and returns its length.
func PutIGMPv3Report(b []byte, recs []GroupRecordFields) int {
	n := IGMPv3ReportLen(recs)
	_ = b[n-1]
	b[0], b[1], b[2], b[3], b[4], b[5] = IGMPv3MembershipReport, 0, 0, 0, 0, 0
	binary.BigEndian.PutUint16(b[6:8], uint16(len(recs)))
	off := IGMPv3ReportMinLen
	for i := range recs {
		r := &recs[i]
		b[off], b[off+1] = r.Type, 0
		binary.BigEndian.PutUint16(b[off+2:], uint16(len(r.Sources)))
		g := r.Group.As4()
		copy(b[off+4:], g[:])
		off += IGMPGroupRecordMinLen
		for _, s := range r.Sources {
			a := s.As4()
			copy(b[off:], a[:])
			off += 4
		}
	}
	binary.BigEndian.PutUint16(b[2:4], checksum.Checksum(b[:n]))
	return n
}

// PutRouterAlertHeader writes a 24-byte IPv4 header carrying the Router
// Alert option into b, as IGMP messages are sent; f.TotalLen counts the
// whole packet.
func PutRouterAlertHeader(b []byte, f Fields) {
	_ = b[RouterAlertHeaderLen-1]
	Put(b, f)
	b[0] = 0x46
	b[10], b[11] = 0, 0
	b[20], b[21], b[22], b[23] = 0x94, 0x04, 0, 0 // copied flag, option 20, length 4, value 0
	binary.BigEndian.PutUint16(b[10:12], checksum.Checksum(b[:RouterAlertHeaderLen]))
}
