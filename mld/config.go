package mld

import (
	"time"

	"github.com/tapnet/tapnet/internal/mcast"
	"github.com/tapnet/tapnet/multicast"
)

// Config tunes a Host. The zero value gives the RFC and Linux defaults;
// tests shorten the intervals.
type Config struct {
	// Version is the highest version spoken: 2 (the default) or 1, like
	// Linux's force_mld_version.
	Version int
	// Robustness is how many times an unsolicited report is sent (default
	// 2). An MLDv2 querier's QRV overrides it.
	Robustness int
	// UnsolicitedReportInterval bounds the random delay before an
	// unsolicited report is repeated: by default 1 s in MLDv2 mode and
	// 10 s in MLDv1 mode (RFC 3810 9.11, RFC 2710 7.10).
	UnsolicitedReportInterval time.Duration
	// OlderQuerierTimeout is how long an MLDv1 query keeps the host in
	// MLDv1 mode: by default robustness × query interval + query response
	// interval (260 s, RFC 3810 9.12).
	OlderQuerierTimeout time.Duration
	// Now is the clock; default time.Now. Tests use a manual one.
	Now func() time.Time
}

// Hooks connect a Host to the interface it serves (multicast.Hooks
// describes both). Send's msg is an MLD message whose checksum is left
// zero. The caller picks the source address (the interface's link-local
// address, or :: while it has none, RFC 3810 5.2.13), completes the
// checksum with ipv6.PutChecksum — in place is fine — and sends it to dst
// in an IPv6 packet with hop limit 1 and the Router Alert hop-by-hop
// header (ipv6.PutRouterAlertHopByHop with ipv6.RouterAlertMLD).
type Hooks = multicast.Hooks

// MinQueryResponse is the shortest delay a query may ask for: a Maximum
// Response Code of 0 (or a few milliseconds) still spreads answers out,
// and a flood of such queries is answered once per pending delay, not
// once per query. IGMP has the same floor.
const MinQueryResponse = 100 * time.Millisecond

// Bounds on the sources multicast-address-and-source-specific queries make
// a Host remember until the answer is due (RFC 3810 6.2). Only sources the
// answer would list are kept; past these caps the pending answer falls
// back to the group's whole state, the answer to a multicast address
// specific query, which is always truthful.
const (
	MaxQuerySourcesPerGroup = 64
	MaxQuerySourcesPerHost  = 1024
)

// coreConfig is cfg in the shared core's terms, where MLDv1 is V2 and
// MLDv2 is V3.
func (cfg Config) coreConfig() mcast.Config {
	v := mcast.V3
	if cfg.Version == 1 {
		v = mcast.V2
	}
	return mcast.Config{MaxVersion: v, Robustness: cfg.Robustness,
		UnsolicitedReportInterval: cfg.UnsolicitedReportInterval,
		OlderQuerierTimeout:       cfg.OlderQuerierTimeout, Now: cfg.Now}
}
