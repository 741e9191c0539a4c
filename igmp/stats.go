package igmp

import "sync/atomic"

// Stats count IGMP traffic. Every field is a live atomic counter. Several
// hosts may add to one Stats: a stack's NICs share theirs.
type Stats struct {
	Received      atomic.Uint64 // messages that parsed
	Malformed     atomic.Uint64 // short, bad length or truncated
	BadChecksum   atomic.Uint64
	Queries       atomic.Uint64 // queries of any version
	OthersReports atomic.Uint64 // v1/v2 reports of other hosts (suppress ours)
	ReportsSent   atomic.Uint64 // v1, v2 and v3 reports
	LeavesSent    atomic.Uint64
	// Sources of group-and-source-specific queries not recorded:
	// ignored ones our answer would not list (not in our INCLUDE list,
	// in our EXCLUDE list, or covered by a pending whole-group answer),
	// dropped ones over the caps, whose answer became the whole group's.
	QuerySourcesIgnored atomic.Uint64
	QuerySourcesDropped atomic.Uint64
}
