package ipv6

import (
	"encoding/binary"
	"errors"
	"iter"
	"net/netip"
	"time"
)

// MLD lengths (RFC 2710 3, RFC 3810 5).
const (
	MLDv1Len            = 24 // v1 queries, reports and dones
	MLDv2QueryMinLen    = 28 // a v2 query without sources
	MLDv2ReportMinLen   = 8  // a v2 report without records
	MLDRecordMinLen     = 20 // a multicast address record without sources
	mldv2QuerySourcesOf = 28
	// MLDHopLimit is the hop limit MLD is sent with; receivers drop other
	// values along with non-link-local sources (RFC 3810 5).
	MLDHopLimit = 1
)

// MLDv2 multicast address record types (RFC 3810 5.2.12), the same as
// IGMPv3's group record types.
const (
	ModeIsInclude       = 1
	ModeIsExclude       = 2
	ChangeToIncludeMode = 3
	ChangeToExcludeMode = 4
	AllowNewSources     = 5
	BlockOldSources     = 6
)

// Errors returned by ParseMLD.
var (
	ErrMLDType      = errors.New("mld: not a multicast listener message")
	ErrMLDTooShort  = errors.New("mld: message shorter than 24 bytes")
	ErrMLDLength    = errors.New("mld: query length is neither 24 nor at least 28 bytes")
	ErrMLDTruncated = errors.New("mld: sources or records run past the message")
)

// MLD is a view of a validated MLD message: an ICMPv6 query, v1 report, v1
// done or v2 report.
type MLD ICMP

// ParseMLD validates m, an ICMPv6 message that ParseICMP accepted, as an
// MLD message: a known type, its length, and for v2 queries and reports
// that the counted sources and records fit. A query's version is told by
// its length as RFC 3810 8.1 says: 24 bytes is MLDv1, 28 or more MLDv2.
// The IP-level checks (hop limit 1, a link-local source, the Router Alert
// option) are the caller's, which has the header and the walk.
func ParseMLD(m ICMP) (MLD, error) {
	if len(m) < 1 {
		return nil, ErrMLDTooShort
	}
	switch m.Type() {
	case ICMPMLDQuery, ICMPMLDv1Report, ICMPMLDv1Done:
		if len(m) < MLDv1Len {
			return nil, ErrMLDTooShort
		}
	case ICMPMLDv2Report:
		if len(m) < MLDv2ReportMinLen {
			return nil, ErrMLDTooShort
		}
	default:
		return nil, ErrMLDType
	}
	mm := MLD(m)
	switch mm.Type() {
	case ICMPMLDQuery:
		switch {
		case len(m) == MLDv1Len:
		case len(m) < MLDv2QueryMinLen:
			return nil, ErrMLDLength
		case MLDv2QueryMinLen+16*mm.NumSources() > len(m):
			return nil, ErrMLDTruncated
		}
	case ICMPMLDv2Report:
		off := MLDv2ReportMinLen
		for i := 0; i < mm.NumRecords(); i++ {
			if len(m)-off < MLDRecordMinLen {
				return nil, ErrMLDTruncated
			}
			rl := MLDRecord(m[off:]).Len()
			if rl > len(m)-off {
				return nil, ErrMLDTruncated
			}
			off += rl
		}
	}
	return mm, nil
}

// Type returns the message type.
func (m MLD) Type() uint8 { return m[0] }

// QueryVersion returns 1 or 2 for a query by its length, and 0 for other
// messages.
func (m MLD) QueryVersion() int {
	switch {
	case m.Type() != ICMPMLDQuery:
		return 0
	case len(m) >= MLDv2QueryMinLen:
		return 2
	}
	return 1
}

// MaxRespCode returns a query's maximum response code (a v1 query's
// delay in milliseconds).
func (m MLD) MaxRespCode() uint16 { return binary.BigEndian.Uint16(m[4:6]) }

// MaxRespDelay returns how long a query allows before answering: the
// field in milliseconds for v1, its floating-point form for v2 (RFC 3810
// 5.1.3).
func (m MLD) MaxRespDelay() time.Duration {
	if m.QueryVersion() == 2 {
		return time.Duration(DecodeMLDCode(m.MaxRespCode())) * time.Millisecond
	}
	return time.Duration(m.MaxRespCode()) * time.Millisecond
}

// Group returns the multicast address of a query (unspecified in a general
// query) or of a v1 report or done.
func (m MLD) Group() netip.Addr { return netip.AddrFrom16([16]byte(m[8:24])) }

// SuppressRouterProcessing returns the S flag of a v2 query.
func (m MLD) SuppressRouterProcessing() bool { return m[24]&0x08 != 0 }

// QRV returns a v2 query's robustness variable (0: unset).
func (m MLD) QRV() int { return int(m[24] & 0x07) }

// QQIC returns a v2 query's interval code.
func (m MLD) QQIC() uint8 { return m[25] }

// QueryInterval returns a v2 query's interval (RFC 3810 5.1.9).
func (m MLD) QueryInterval() time.Duration {
	return time.Duration(DecodeQQIC(m.QQIC())) * time.Second
}

// NumSources returns a v2 query's source count.
func (m MLD) NumSources() int { return int(binary.BigEndian.Uint16(m[26:28])) }

// Source returns the i-th source of a v2 query.
func (m MLD) Source(i int) netip.Addr {
	o := mldv2QuerySourcesOf + 16*i
	return netip.AddrFrom16([16]byte(m[o : o+16]))
}

// NumRecords returns a v2 report's record count.
func (m MLD) NumRecords() int { return int(binary.BigEndian.Uint16(m[6:8])) }

// Records iterates over a v2 report's records (validated by ParseMLD).
func (m MLD) Records() iter.Seq[MLDRecord] {
	return func(yield func(MLDRecord) bool) {
		off := MLDv2ReportMinLen
		for i := 0; i < m.NumRecords(); i++ {
			r := MLDRecord(m[off:])
			r = r[:r.Len()]
			if !yield(r) {
				return
			}
			off += len(r)
		}
	}
}

// MLDRecord is a view of one multicast address record of a v2 report.
type MLDRecord []byte

// Type returns the record type (ModeIsInclude…BlockOldSources).
func (r MLDRecord) Type() uint8 { return r[0] }

// AuxDataLen returns the auxiliary data length in bytes.
func (r MLDRecord) AuxDataLen() int { return int(r[1]) * 4 }

// NumSources returns the number of sources.
func (r MLDRecord) NumSources() int { return int(binary.BigEndian.Uint16(r[2:4])) }

// Group returns the multicast address.
func (r MLDRecord) Group() netip.Addr { return netip.AddrFrom16([16]byte(r[4:20])) }

// Source returns the i-th source.
func (r MLDRecord) Source(i int) netip.Addr {
	o := MLDRecordMinLen + 16*i
	return netip.AddrFrom16([16]byte(r[o : o+16]))
}

// Len returns the record's length, sources and auxiliary data included.
func (r MLDRecord) Len() int { return MLDRecordMinLen + 16*r.NumSources() + r.AuxDataLen() }

// DecodeMLDCode expands an MLDv2 Maximum Response Code (RFC 3810 5.1.3)
// to milliseconds: values below 32768 are literal, others are
// (mant | 0x1000) << (exp + 3).
func DecodeMLDCode(c uint16) int {
	if c < 0x8000 {
		return int(c)
	}
	return int(c&0x0fff|0x1000) << (int(c>>12&0x07) + 3)
}

// EncodeMLDCode is the inverse of DecodeMLDCode, rounding down to a
// representable value and saturating at 8387584 ms.
func EncodeMLDCode(ms int) uint16 {
	if ms < 0x8000 {
		return uint16(max(ms, 0))
	}
	for exp := 0; exp < 8; exp++ {
		if mant := ms>>(exp+3) - 0x1000; mant < 0x1000 {
			return 0x8000 | uint16(exp)<<12 | uint16(mant)
		}
	}
	return 0xffff
}

// DecodeQQIC expands a Querier's Query Interval Code (RFC 3810 5.1.9) to
// seconds: values below 128 are literal, others are
// (mant | 0x10) << (exp + 3).
func DecodeQQIC(c uint8) int {
	if c < 128 {
		return int(c)
	}
	return int(c&0x0f|0x10) << (int(c>>4&0x07) + 3)
}

// EncodeQQIC is the inverse of DecodeQQIC, rounding down to a
// representable value and saturating at 31744 s.
func EncodeQQIC(s int) uint8 {
	if s < 128 {
		return uint8(max(s, 0))
	}
	for exp := 0; exp < 8; exp++ {
		if mant := s>>(exp+3) - 0x10; mant < 0x10 {
			return 0x80 | uint8(exp)<<4 | uint8(mant)
		}
	}
	return 0xff
}

// PutMLDv1 writes a 24-byte MLDv1 message (a query, report or done of
// type typ) into b and returns its length; PutChecksum completes it.
func PutMLDv1(b []byte, typ uint8, maxDelay uint16, group netip.Addr) int {
	_ = b[MLDv1Len-1]
	PutICMPHeader(b, typ, 0, uint32(maxDelay)<<16)
	g := group.As16()
	copy(b[8:24], g[:])
	return MLDv1Len
}

// MLDv2Query describes a v2 query to build. Queries are what routers
// send; tapnet builds them to test its host side.
type MLDv2Query struct {
	MaxRespCode uint16
	Group       netip.Addr // unspecified or invalid for a general query
	S           bool
	QRV         int
	QQIC        uint8
	Sources     []netip.Addr
}

// Len returns the query's length.
func (q *MLDv2Query) Len() int { return MLDv2QueryMinLen + 16*len(q.Sources) }

// Put writes the query into b, which must hold Len bytes, and returns its
// length; PutChecksum completes it.
func (q *MLDv2Query) Put(b []byte) int {
	n := q.Len()
	_ = b[n-1]
	PutICMPHeader(b, ICMPMLDQuery, 0, uint32(q.MaxRespCode)<<16)
	var g [16]byte
	if q.Group.IsValid() {
		g = q.Group.As16()
	}
	copy(b[8:24], g[:])
	b[24] = uint8(q.QRV) & 0x07
	if q.S {
		b[24] |= 0x08
	}
	b[25] = q.QQIC
	binary.BigEndian.PutUint16(b[26:28], uint16(len(q.Sources)))
	for i, s := range q.Sources {
		a := s.As16()
		copy(b[mldv2QuerySourcesOf+16*i:], a[:])
	}
	return n
}

// MLDRecordFields describe a v2 multicast address record to build.
type MLDRecordFields struct {
	Type    uint8
	Group   netip.Addr
	Sources []netip.Addr
}

// Len returns the record's length (no auxiliary data).
func (r *MLDRecordFields) Len() int { return MLDRecordMinLen + 16*len(r.Sources) }

// MLDv2ReportLen returns the length of a report carrying recs.
func MLDv2ReportLen(recs []MLDRecordFields) int {
	n := MLDv2ReportMinLen
	for i := range recs {
		n += recs[i].Len()
	}
	return n
}

// PutMLDv2Report writes a v2 report carrying recs into b, which must hold
// MLDv2ReportLen(recs) bytes, and returns its length; PutChecksum
// completes it.
func PutMLDv2Report(b []byte, recs []MLDRecordFields) int {
	n := MLDv2ReportLen(recs)
	_ = b[n-1]
	PutICMPHeader(b, ICMPMLDv2Report, 0, uint32(len(recs)))
	off := MLDv2ReportMinLen
	for i := range recs {
		r := &recs[i]
		b[off], b[off+1] = r.Type, 0
		binary.BigEndian.PutUint16(b[off+2:], uint16(len(r.Sources)))
		g := r.Group.As16()
		copy(b[off+4:off+20], g[:])
		off += MLDRecordMinLen
		for _, s := range r.Sources {
			a := s.As16()
			copy(b[off:off+16], a[:])
			off += 16
		}
	}
	return n
}
