package igmp

import (
	"net/netip"
	"time"

	"github.com/tapnet/tapnet/ipv4"
)

// Receive takes an IGMP message heard on the interface (the IPv4 payload):
// queries schedule answers, other hosts' v1/v2 reports suppress ours. A
// message that does not parse is counted and its error returned
// (ipv4.ErrIGMPChecksum, ipv4.ErrIGMPTooShort…). msg is not retained.
func (h *Host) Receive(msg []byte) error {
	m, err := ipv4.ParseIGMP(msg)
	switch err {
	case nil:
	case ipv4.ErrIGMPChecksum:
		h.stats.BadChecksum.Add(1)
		return err
	default:
		h.stats.Malformed.Add(1)
		return err
	}
	h.stats.Received.Add(1)
	switch m.Type() {
	case ipv4.IGMPMembershipQuery:
		h.stats.Queries.Add(1)
		h.heardQuery(m)
	case ipv4.IGMPv1MembershipReport, ipv4.IGMPv2MembershipReport:
		h.stats.OthersReports.Add(1)
		h.heardReport(m.Group())
	}
	return nil
}

// heardQuery schedules the answer to a query (RFC 3376 5.2 and 7.2,
// RFC 2236 3).
func (h *Host) heardQuery(m ipv4.IGMP) {
	addr := m.Group()
	if !addr.IsUnspecified() && !ipv4.IsMulticast(addr) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || h.silent() {
		return
	}
	now := h.cfg.Now()
	maxResp := max(m.MaxRespTime(), MinQueryResponse)
	switch m.QueryVersion() {
	case 1:
		h.v1Until = now.Add(h.olderQuerierTimeoutLocked())
		h.enterCompatLocked()
		addr, maxResp = netip.IPv4Unspecified(), v1QueryResponseTimeout
	case 2:
		h.v2Until = now.Add(h.olderQuerierTimeoutLocked())
		h.enterCompatLocked()
	default:
		switch h.versionLocked(now) {
		case 1:
			addr, maxResp = netip.IPv4Unspecified(), v1QueryResponseTimeout
		case 3:
			h.qrv = m.QRV()
			h.qi = m.QueryInterval()
			h.heardV3QueryLocked(m, addr, maxResp, now)
			return
		}
	}
	// v1/v2 answers: one report per group, each after its own delay.
	for a, g := range h.groups {
		if !g.member() || a == allHosts || !addr.IsUnspecified() && a != addr {
			continue
		}
		armAnswer(&g.due, now, maxResp)
	}
	h.scheduleLocked(now)
}

// heardV3QueryLocked schedules the answer to a v3 query in v3 mode.
func (h *Host) heardV3QueryLocked(m ipv4.IGMP, addr netip.Addr, maxResp time.Duration, now time.Time) {
	if addr.IsUnspecified() {
		if m.NumSources() != 0 {
			return // a general query lists no sources
		}
		// One answer for the whole interface.
		armAnswer(&h.gqDue, now, maxResp)
		h.scheduleLocked(now)
		return
	}
	if addr == allHosts {
		return // never reported (RFC 3376 5)
	}
	g := h.groups[addr]
	if g == nil || !g.member() {
		return
	}
	if h.mergeQueryLocked(g, m) {
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
// query into the group's pending answer (RFC 3376 5.2) and reports whether
// the query needs an answer. Only sources the answer would list are
// recorded: for INCLUDE mode those in our list, for EXCLUDE mode those not
// excluded. Past the caps the answer becomes the group's whole state.
func (h *Host) mergeQueryLocked(g *group, m ipv4.IGMP) bool {
	pending := !g.due.IsZero()
	nsrcs := m.NumSources()
	switch {
	case nsrcs == 0:
		g.srcQuery = false
		h.forgetQuerySourcesLocked(g)
		return true
	case pending && !g.srcQuery:
		// A whole-group answer is pending: it covers these sources.
		h.stats.QuerySourcesIgnored.Add(uint64(nsrcs))
		return true
	}
	// Count first, so that an oversized query allocates nothing. fresh
	// may count a source the query repeats: the caps err on the safe side.
	relevant, fresh := 0, 0
	for i := range nsrcs {
		if s := m.Source(i); g.allows(s) {
			relevant++
			if _, ok := g.querySrcs[s]; !ok {
				fresh++
			}
		}
	}
	h.stats.QuerySourcesIgnored.Add(uint64(nsrcs - relevant))
	switch {
	case relevant == 0:
		return false // nothing it asks about would be listed
	case fresh == 0:
		return true
	case len(g.querySrcs)+fresh > MaxQuerySourcesPerGroup || h.querySrcs+fresh > MaxQuerySourcesPerHost:
		h.stats.QuerySourcesDropped.Add(uint64(relevant))
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
		if s := m.Source(i); g.allows(s) {
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

// enterCompatLocked drops pending v3 work when an older querier appears:
// it would not understand it (RFC 3376 7.2.1).
func (h *Host) enterCompatLocked() {
	h.gqDue, h.changeDue = time.Time{}, time.Time{}
	for _, g := range h.groups {
		g.modeRetrans, g.srcRetrans, g.srcQuery = 0, nil, false
		h.forgetQuerySourcesLocked(g)
		h.dropIfIdleLocked(g)
	}
}

// heardReport suppresses our pending v1/v2 report for a group another host
// just reported (RFC 2236 3); v3 hosts never suppress.
func (h *Host) heardReport(addr netip.Addr) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.cfg.Now()
	if h.closed || h.versionLocked(now) == 3 {
		return
	}
	if g := h.groups[addr]; g != nil {
		g.due, g.unsolDue, g.unsolicited, g.reporter = time.Time{}, time.Time{}, 0, false
		h.scheduleLocked(now)
	}
}
