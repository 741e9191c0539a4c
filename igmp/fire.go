package igmp

import (
	"net/netip"
	"slices"
	"time"

	"github.com/tapnet/tapnet/ipv4"
)

// message is a v1/v2 message due to be sent.
type message struct {
	typ        uint8
	addr, dest netip.Addr
}

// Fire performs every action that is due by Config.Now and sends the
// messages they call for. Call it when Schedule asks or once Deadline has
// passed; an early call does nothing.
func (h *Host) Fire() {
	h.fireMu.Lock()
	defer h.fireMu.Unlock()
	msgs, recs := h.takeDue()
	// v3 reports are built outside h.mu: packing many records is the
	// costly part, and queries and joins need not wait for it.
	for _, m := range msgs {
		h.send(m.dest, ipv4.IGMPLen, func(p []byte) { ipv4.PutIGMP(p, m.typ, 0, m.addr) })
	}
	h.sendV3Reports(recs)
}

// takeDue performs every action that is due and returns the v1/v2
// messages and v3 records to send.
func (h *Host) takeDue() ([]message, []ipv4.GroupRecordFields) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || h.silent() {
		return nil, nil
	}
	h.armed = time.Time{} // the request that called us is spent
	now := h.cfg.Now()
	version := h.versionLocked(now)
	var out []message
	for _, g := range h.leaves {
		out = append(out, message{ipv4.IGMPv2LeaveGroup, g, ipv4.AllRoutersGroup})
		h.stats.LeavesSent.Add(1)
	}
	h.leaves = nil
	groups := h.sortedGroupsLocked()
	var recs []ipv4.GroupRecordFields
	if due(h.gqDue, now) {
		h.gqDue = time.Time{}
		if version == 3 {
			recs = h.generalAnswerLocked(groups, recs)
		}
	}
	for _, g := range groups {
		if due(g.due, now) {
			g.due = time.Time{}
			out, recs = h.answerLocked(g, version, out, recs)
		}
		if due(g.unsolDue, now) {
			g.unsolDue = time.Time{}
			out = h.unsolicitedLocked(g, version, now, out)
		}
	}
	if due(h.changeDue, now) {
		h.changeDue = time.Time{}
		if version == 3 {
			recs = h.stateChangesLocked(groups, now, recs)
		}
	}
	for _, g := range groups {
		h.dropIfIdleLocked(g)
	}
	h.scheduleLocked(now)
	return out, recs
}

func (h *Host) sortedGroupsLocked() []*group {
	gs := make([]*group, 0, len(h.groups))
	for _, g := range h.groups {
		gs = append(gs, g)
	}
	slices.SortFunc(gs, func(a, b *group) int { return a.addr.Compare(b.addr) })
	return gs
}

// generalAnswerLocked appends the current-state records answering a
// general query: one per group, all-hosts excepted.
func (h *Host) generalAnswerLocked(groups []*group, recs []ipv4.GroupRecordFields) []ipv4.GroupRecordFields {
	for _, g := range groups {
		if g.member() && g.addr != allHosts {
			f := g.state()
			recs = append(recs, ipv4.GroupRecordFields{Type: uint8(f.Mode), Group: g.addr, Sources: f.Sources})
		}
	}
	return recs
}

// answerLocked adds the answer to a query for one group whose delay ran
// out: a v1/v2 report, or a v3 current-state record.
func (h *Host) answerLocked(g *group, version int, out []message, recs []ipv4.GroupRecordFields) ([]message, []ipv4.GroupRecordFields) {
	defer h.forgetQuerySourcesLocked(g)
	switch {
	case !g.member() || g.addr == allHosts:
	case version < 3:
		out = append(out, h.reportLocked(g, version))
	default:
		if r, ok := g.queryAnswer(); ok {
			recs = append(recs, r)
		}
	}
	return out, recs
}

// unsolicitedLocked adds a v1/v2 group's next unsolicited report and
// schedules the one after.
func (h *Host) unsolicitedLocked(g *group, version int, now time.Time, out []message) []message {
	if version == 3 || !g.member() || g.unsolicited <= 0 {
		g.unsolicited = 0
		return out
	}
	out = append(out, h.reportLocked(g, version))
	if g.unsolicited--; g.unsolicited > 0 {
		g.unsolDue = now.Add(randomDelay(h.unsolicitedIntervalLocked(version)))
	}
	return out
}

// reportLocked is a v1 or v2 report for the group, which makes us its
// last reporter.
func (h *Host) reportLocked(g *group, version int) message {
	g.reporter = true
	h.stats.ReportsSent.Add(1)
	typ := uint8(ipv4.IGMPv2MembershipReport)
	if version == 1 {
		typ = ipv4.IGMPv1MembershipReport
	}
	return message{typ, g.addr, g.addr}
}

// stateChangesLocked appends every group's pending state-change records
// and schedules the next retransmission while any remains.
func (h *Host) stateChangesLocked(groups []*group, now time.Time, recs []ipv4.GroupRecordFields) []ipv4.GroupRecordFields {
	pending := false
	for _, g := range groups {
		recs = g.stateChangeRecords(recs)
		pending = pending || !g.idle()
	}
	if pending {
		h.changeDue = now.Add(randomDelay(h.unsolicitedIntervalLocked(3)))
	}
	return recs
}

// queryAnswer is the current-state record answering a group-specific or
// group-and-source-specific query (RFC 3376 5.2); false when there is
// nothing to say.
func (g *group) queryAnswer() (ipv4.GroupRecordFields, bool) {
	if !g.srcQuery {
		f := g.state()
		return ipv4.GroupRecordFields{Type: uint8(f.Mode), Group: g.addr, Sources: f.Sources}, true
	}
	// The recorded sources were allowed when queried; the state may have
	// changed since.
	var srcs []netip.Addr
	for s := range g.querySrcs {
		if g.allows(s) {
			srcs = append(srcs, s)
		}
	}
	if len(srcs) == 0 {
		return ipv4.GroupRecordFields{}, false
	}
	slices.SortFunc(srcs, netip.Addr.Compare)
	return ipv4.GroupRecordFields{Type: ipv4.ModeIsInclude, Group: g.addr, Sources: srcs}, true
}

// stateChangeRecords appends the group's pending state-change records and
// counts one transmission off.
func (g *group) stateChangeRecords(recs []ipv4.GroupRecordFields) []ipv4.GroupRecordFields {
	f := g.state()
	var allow, block []netip.Addr
	for s, c := range g.srcRetrans {
		if f.Allows(s) {
			allow = append(allow, s)
		} else {
			block = append(block, s)
		}
		if c <= 1 {
			delete(g.srcRetrans, s)
		} else {
			g.srcRetrans[s] = c - 1
		}
	}
	if len(allow) > 0 {
		slices.SortFunc(allow, netip.Addr.Compare)
		recs = append(recs, ipv4.GroupRecordFields{Type: ipv4.AllowNewSources, Group: g.addr, Sources: allow})
	}
	if len(block) > 0 {
		slices.SortFunc(block, netip.Addr.Compare)
		recs = append(recs, ipv4.GroupRecordFields{Type: ipv4.BlockOldSources, Group: g.addr, Sources: block})
	}
	if g.modeRetrans > 0 {
		g.modeRetrans--
		typ := uint8(ipv4.ChangeToIncludeMode)
		if f.Mode == Exclude {
			typ = ipv4.ChangeToExcludeMode
		}
		recs = append(recs, ipv4.GroupRecordFields{Type: typ, Group: g.addr, Sources: f.Sources})
	}
	return recs
}

// sendV3Reports packs records into as few reports as the MTU allows (RFC
// 3376 4.2.16): a record too long for one report is split, except that the
// source list of an EXCLUDE-type record is cut short instead, since
// splitting it would change its meaning.
func (h *Host) sendV3Reports(recs []ipv4.GroupRecordFields) {
	if len(recs) == 0 {
		return
	}
	room := h.mtu - ipv4.RouterAlertHeaderLen - ipv4.IGMPv3ReportMinLen
	split := splitRecords(recs, (room-ipv4.IGMPGroupRecordMinLen)/4)
	for len(split) > 0 {
		n, size := 0, ipv4.IGMPv3ReportMinLen
		for n < len(split) && size+split[n].Len()-ipv4.IGMPv3ReportMinLen <= room {
			size += split[n].Len()
			n++
		}
		part := split[:n]
		h.stats.ReportsSent.Add(1)
		h.send(ipv4.AllIGMPv3RoutersGroup, size, func(p []byte) { ipv4.PutIGMPv3Report(p, part) })
		split = split[n:]
	}
}

// splitRecords cuts records with more than maxSrcs sources: INCLUDE-type
// ones into several, EXCLUDE-type ones short.
func splitRecords(recs []ipv4.GroupRecordFields, maxSrcs int) []ipv4.GroupRecordFields {
	var split []ipv4.GroupRecordFields
	for _, r := range recs {
		switch {
		case len(r.Sources) <= maxSrcs:
			split = append(split, r)
		case r.Type == ipv4.ModeIsExclude || r.Type == ipv4.ChangeToExcludeMode:
			r.Sources = r.Sources[:maxSrcs]
			split = append(split, r)
		default:
			for len(r.Sources) > 0 {
				part := r
				part.Sources = r.Sources[:min(maxSrcs, len(r.Sources))]
				r.Sources = r.Sources[len(part.Sources):]
				split = append(split, part)
			}
		}
	}
	return split
}

// send builds an n-byte message with fill in the scratch buffer and hands
// it to the Send hook. The caller holds fireMu.
func (h *Host) send(dst netip.Addr, n int, fill func([]byte)) {
	if cap(h.scratch) < n {
		h.scratch = make([]byte, n)
	}
	p := h.scratch[:n]
	fill(p)
	h.hooks.Send(dst, p)
}
