package igmp

import (
	"time"

	"github.com/tapnet/tapnet/internal/mcast"
	"github.com/tapnet/tapnet/multicast"
)

// Config tunes a Host. The zero value gives the RFC and Linux defaults;
// tests shorten the intervals.
type Config struct {
	// Version is the highest version spoken: 3 (the default), 2 or 1,
	// like Linux's force_igmp_version.
	Version int
	// Robustness is how many times an unsolicited report is sent (default
	// 2). A v3 querier's QRV overrides it.
	Robustness int
	// UnsolicitedReportInterval bounds the random delay before an
	// unsolicited report is repeated: by default 1 s in v3 mode and 10 s
	// in v1/v2 mode.
	UnsolicitedReportInterval time.Duration
	// OlderQuerierTimeout is how long a v1 or v2 query keeps the host in
	// compatibility mode: by default robustness × query interval + query
	// response interval (260 s).
	OlderQuerierTimeout time.Duration
	// Now is the clock; default time.Now. Tests use a manual one.
	Now func() time.Time
}

// Hooks connect a Host to the interface it serves (multicast.Hooks
// describes both). Send's msg is a complete IGMP message with its
// checksum, which the caller sends to dst in an IPv4 datagram with TTL 1,
// TOS ipv4.IGMPTOS and the Router Alert option
// (ipv4.PutRouterAlertHeader).
type Hooks = multicast.Hooks

// MinQueryResponse is the shortest delay a query may ask for. Linux
// treats a Max Resp Code of 0 as 1 so that answers stay spread out and a
// flood of such queries is answered once per pending delay, not once per
// query.
const MinQueryResponse = 100 * time.Millisecond

// Bounds on the sources group-and-source-specific queries make a Host
// remember until the answer is due (RFC 3376 5.2). Only sources the answer
// would list are kept; past these caps the pending answer falls back to
// the group's whole state, the answer to a group-specific query, which is
// always truthful (Linux does the same when it cannot keep the list).
const (
	MaxQuerySourcesPerGroup = 64
	MaxQuerySourcesPerHost  = 1024
)

// coreConfig is cfg in the shared core's terms.
func (cfg Config) coreConfig() mcast.Config {
	v := mcast.V3
	if cfg.Version == 1 || cfg.Version == 2 {
		v = mcast.Version(cfg.Version)
	}
	return mcast.Config{MaxVersion: v, Robustness: cfg.Robustness,
		UnsolicitedReportInterval: cfg.UnsolicitedReportInterval,
		OlderQuerierTimeout:       cfg.OlderQuerierTimeout, Now: cfg.Now}
}
