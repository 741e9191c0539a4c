package mcast

import (
	"net/netip"
	"sync/atomic"
)

// Version is a protocol version in IGMP's numbering (see the package doc).
type Version int

// Versions.
const (
	V1 Version = 1 // IGMPv1
	V2 Version = 2 // IGMPv2, MLDv1
	V3 Version = 3 // IGMPv3, MLDv2
)

// Record types of IGMPv3 group records and MLDv2 multicast address
// records (RFC 3376 4.2.12, RFC 3810 5.2.12), which have the same values:
// current-state records answer queries, the others report a change.
const (
	ModeIsInclude       = 1
	ModeIsExclude       = 2
	ChangeToIncludeMode = 3
	ChangeToExcludeMode = 4
	AllowNewSources     = 5
	BlockOldSources     = 6
)

// Record is one record of a V3 report. Its fields are those of
// ipv4.GroupRecordFields and ipv6.MLDRecordFields, so a codec converts
// each record with a type conversion.
type Record struct {
	Type    uint8
	Group   netip.Addr
	Sources []netip.Addr
}

// MessageKind is a V1/V2 message the host sends.
type MessageKind uint8

// V1/V2 messages.
const (
	ReportV1 MessageKind = iota + 1 // IGMPv1 report
	ReportV2                        // IGMPv2 report, MLDv1 report
	Leave                           // IGMPv2 Leave Group, MLDv1 Done
)

// Wire describes a protocol's messages and well-known addresses to the
// Host, and builds the messages it sends.
type Wire struct {
	// MinMTU is the smallest MTU reports are packed for: the IP version's
	// minimum.
	MinMTU int
	// HeaderLen is the length of the IP header (options and extension
	// headers included) every message is sent behind.
	HeaderLen int
	// ReportHeaderLen, RecordHeaderLen and SourceLen size a V3 report: its
	// fixed header, a record without sources, and one source address.
	ReportHeaderLen, RecordHeaderLen, SourceLen int
	// MessageLen is the length of every V1/V2 message.
	MessageLen int
	// ReportsTo is where V3 reports go; LeavesTo where leaves go. V1/V2
	// reports go to their group.
	ReportsTo, LeavesTo netip.Addr
	// AllNodes is the group every host is always in and never reports
	// (224.0.0.1, ff02::1).
	AllNodes netip.Addr
	// Unreported, when set, names further groups that are never reported
	// although sockets join them (MLD's scopes below link-local).
	Unreported func(group netip.Addr) bool
	// PutMessage writes a V1/V2 message of MessageLen bytes into b.
	PutMessage func(b []byte, kind MessageKind, group netip.Addr)
	// PutReport writes a V3 report carrying recs into b, which is exactly
	// as long as the report. It is called under the Host's Fire lock, one
	// call at a time, so it may reuse a scratch buffer of its own.
	PutReport func(b []byte, recs []Record)
}

// reported reports whether a group is ever reported.
func (w *Wire) reported(group netip.Addr) bool {
	return group != w.AllNodes && (w.Unreported == nil || !w.Unreported(group))
}

// recordLen returns the length of a V3 record carrying r's sources.
func (w *Wire) recordLen(r *Record) int { return w.RecordHeaderLen + w.SourceLen*len(r.Sources) }

// Counters are the protocol's counters the Host adds to; the codec counts
// the rest (received, malformed, queries). Every field must be set.
type Counters struct {
	ReportsSent         *atomic.Uint64 // V1, V2 and V3 reports
	LeavesSent          *atomic.Uint64
	QuerySourcesIgnored *atomic.Uint64
	QuerySourcesDropped *atomic.Uint64
}
