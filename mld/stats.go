package mld

import "sync/atomic"

// Stats count MLD traffic. Every field is a live atomic counter. Several
// hosts may add to one Stats, as a stack's NICs would share theirs.
type Stats struct {
	Received  atomic.Uint64 // messages that parsed
	Malformed atomic.Uint64 // not an MLD type, short, bad length or truncated
	// BadSource counts queries not from a link-local address and MLDv1
	// reports from neither a link-local nor the unspecified address,
	// dropped as RFC 3810 5 and Linux do.
	BadSource     atomic.Uint64
	Queries       atomic.Uint64 // queries of either version
	OthersReports atomic.Uint64 // MLDv1 reports of other hosts (suppress ours)
	ReportsSent   atomic.Uint64 // MLDv1 and MLDv2 reports
	DonesSent     atomic.Uint64
	// Sources of multicast-address-and-source-specific queries not
	// recorded: ignored ones our answer would not list (not in our
	// INCLUDE list, in our EXCLUDE list, or covered by a pending
	// whole-group answer), dropped ones over the caps, whose answer became
	// the whole group's.
	QuerySourcesIgnored atomic.Uint64
	QuerySourcesDropped atomic.Uint64
}
