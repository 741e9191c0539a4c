package mcast

import (
	"net/netip"
	"time"
)

// Query is a query as a codec parsed it.
type Query struct {
	// Version is the querier's version, as the message tells it.
	Version Version
	// Group is the queried group: unspecified (or the zero Addr) in a
	// general query.
	Group netip.Addr
	// MaxResp is how long the query allows before answering, read the
	// query's own version's way.
	MaxResp time.Duration
	// CompatMaxResp, when not zero, replaces MaxResp for a V3 query a V2
	// host answers: MLDv1 hosts read the code as plain milliseconds, as
	// Linux does.
	CompatMaxResp time.Duration
	// QRV and QueryInterval are a V3 query's robustness and interval
	// (zero: unset).
	QRV           int
	QueryInterval time.Duration
	// Sources holds a V3 query's source addresses back to back, each
	// Wire.SourceLen bytes long; they are read in place, never retained.
	Sources []byte
}

// numSources returns how many sources the query lists.
func (q *Query) numSources(w *Wire) int { return len(q.Sources) / w.SourceLen }

// source returns the query's i-th source.
func (q *Query) source(w *Wire, i int) netip.Addr {
	b := q.Sources[i*w.SourceLen:]
	if w.SourceLen == 4 {
		return netip.AddrFrom4([4]byte(b))
	}
	return netip.AddrFrom16([16]byte(b))
}

// HeardQuery schedules the answer to a query (RFC 3376 5.2 and 7.2, RFC
// 2236 3, RFC 3810 6.2 and 8.2, RFC 2710 4). The codec has checked that
// the group is multicast or unspecified.
func (h *Host) HeardQuery(q *Query) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || h.silent() {
		return
	}
	now := h.cfg.Now()
	general := !q.Group.IsValid() || q.Group.IsUnspecified()
	maxResp := max(q.MaxResp, MinQueryResponse)
	switch q.Version {
	case V1:
		h.v1Until = now.Add(h.olderQuerierTimeoutLocked())
		h.enterCompatLocked()
		general, maxResp = true, V1QueryResponse
	case V2:
		h.v2Until = now.Add(h.olderQuerierTimeoutLocked())
		h.enterCompatLocked()
	default:
		switch h.versionLocked(now) {
		case V1:
			general, maxResp = true, V1QueryResponse
		case V2:
			if q.CompatMaxResp > 0 {
				maxResp = max(q.CompatMaxResp, MinQueryResponse)
			}
		case V3:
			h.qrv = q.QRV
			h.qi = q.QueryInterval
			h.heardV3QueryLocked(q, general, maxResp, now)
			return
		}
	}
	// V1/V2 answers: one report per group, each after its own delay.
	for a, g := range h.groups {
		if !g.member() || !h.wire.reported(a) || !general && a != q.Group {
			continue
		}
		armAnswer(&g.due, now, maxResp)
	}
	h.scheduleLocked(now)
}

// heardV3QueryLocked schedules the answer to a V3 query in V3 mode.
func (h *Host) heardV3QueryLocked(q *Query, general bool, maxResp time.Duration, now time.Time) {
	if general {
		if len(q.Sources) != 0 {
			return // a general query lists no sources
		}
		// One answer for the whole interface.
		armAnswer(&h.gqDue, now, maxResp)
		h.scheduleLocked(now)
		return
	}
	if !h.wire.reported(q.Group) {
		return // never reported (RFC 3376 5, RFC 3810 6)
	}
	g := h.groups[q.Group]
	if g == nil || !g.member() {
		return
	}
	if h.mergeQueryLocked(g, q) {
		armAnswer(&g.due, now, maxResp)
		h.scheduleLocked(now)
	}
}

// armAnswer schedules an answer within maxResp of now, as Linux's
// igmp_mod_timer does: an answer already due by then stands, so repeated
// queries neither add answers nor pull a pending one ever earlier; a later
// one is replaced by a fresh random delay.
func armAnswer(due *time.Time, now time.Time, maxResp time.Duration) {
	if !due.IsZero() && !due.After(now.Add(maxResp)) {
		return
	}
	*due = now.Add(randomDelay(maxResp))
}

// mergeQueryLocked folds a group-specific or group-and-source-specific
// query into the group's pending answer (RFC 3376 5.2, RFC 3810 6.2) and
// reports whether the query needs an answer. Only sources the answer
// would list are recorded: for INCLUDE mode those in our list, for
// EXCLUDE mode those not excluded. Past the caps the answer becomes the
// group's whole state.
func (h *Host) mergeQueryLocked(g *group, q *Query) bool {
	pending := !g.due.IsZero()
	nsrcs := q.numSources(&h.wire)
	switch {
	case nsrcs == 0:
		g.srcQuery = false
		h.forgetQuerySourcesLocked(g)
		return true
	case pending && !g.srcQuery:
		// A whole-group answer is pending: it covers these sources.
		h.count.QuerySourcesIgnored.Add(uint64(nsrcs))
		return true
	}
	// Count first, so that an oversized query allocates nothing. fresh
	// may count a source the query repeats: the caps err on the safe side.
	relevant, fresh := 0, 0
	for i := range nsrcs {
		if s := q.source(&h.wire, i); g.allows(s) {
			relevant++
			if _, ok := g.querySrcs[s]; !ok {
				fresh++
			}
		}
	}
	h.count.QuerySourcesIgnored.Add(uint64(nsrcs - relevant))
	switch {
	case relevant == 0:
		return false // nothing it asks about would be listed
	case fresh == 0:
		return true
	case len(g.querySrcs)+fresh > MaxQuerySourcesPerGroup || h.querySrcs+fresh > MaxQuerySourcesPerHost:
		h.count.QuerySourcesDropped.Add(uint64(relevant))
		g.srcQuery = false
		h.forgetQuerySourcesLocked(g)
		return true
	}
	g.srcQuery = true // new, or already a source query (cases above)
	if g.querySrcs == nil {
		g.querySrcs = make(map[netip.Addr]struct{}, fresh)
	}
	h.querySrcs -= len(g.querySrcs)
	for i := range nsrcs {
		if s := q.source(&h.wire, i); g.allows(s) {
			g.querySrcs[s] = struct{}{}
		}
	}
	h.querySrcs += len(g.querySrcs)
	return true
}

// forgetQuerySourcesLocked releases the sources recorded for the group's
// pending answer.
func (h *Host) forgetQuerySourcesLocked(g *group) {
	h.querySrcs -= len(g.querySrcs)
	g.querySrcs = nil
}

// enterCompatLocked drops pending V3 work when an older querier appears:
// it would not understand it (RFC 3376 7.2.1, RFC 3810 8.2.1).
func (h *Host) enterCompatLocked() {
	h.gqDue, h.changeDue = time.Time{}, time.Time{}
	for _, g := range h.groups {
		g.modeRetrans, g.srcRetrans, g.srcQuery = 0, nil, false
		h.forgetQuerySourcesLocked(g)
		h.dropIfIdleLocked(g)
	}
}

// HeardReport suppresses our pending V1/V2 report for a group another
// host just reported in a V1/V2 report (RFC 2236 3, RFC 2710 4); V3 hosts
// never suppress.
func (h *Host) HeardReport(addr netip.Addr) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.cfg.Now()
	if h.closed || h.versionLocked(now) == V3 {
		return
	}
	if g := h.groups[addr]; g != nil {
		g.due, g.unsolDue, g.unsolicited, g.reporter = time.Time{}, time.Time{}, 0, false
		h.scheduleLocked(now)
	}
}
