package mcast

import (
	"net/netip"
	"slices"
	"time"
)

// message is a V1/V2 message due to be sent.
type message struct {
	kind       MessageKind
	addr, dest netip.Addr
}

// Fire performs every action that is due by Config.Now and sends the
// messages they call for. An early call does nothing.
func (h *Host) Fire() {
	h.fireMu.Lock()
	defer h.fireMu.Unlock()
	msgs, recs := h.takeDue()
	// V3 reports are built outside h.mu: packing many records is the
	// costly part, and queries and joins need not wait for it.
	for _, m := range msgs {
		h.send(m.dest, h.wire.MessageLen, func(p []byte) { h.wire.PutMessage(p, m.kind, m.addr) })
	}
	h.sendV3Reports(recs)
}

// takeDue performs every action that is due and returns the V1/V2
// messages and V3 records to send.
func (h *Host) takeDue() ([]message, []Record) {
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
		out = append(out, message{Leave, g, h.wire.LeavesTo})
		h.count.LeavesSent.Add(1)
	}
	h.leaves = nil
	groups := h.sortedGroupsLocked()
	var recs []Record
	if due(h.gqDue, now) {
		h.gqDue = time.Time{}
		if version == V3 {
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
		if version == V3 {
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
// general query: one per reported group.
func (h *Host) generalAnswerLocked(groups []*group, recs []Record) []Record {
	for _, g := range groups {
		if g.member() && h.wire.reported(g.addr) {
			f := g.state()
			recs = append(recs, Record{Type: uint8(f.Mode), Group: g.addr, Sources: f.Sources})
		}
	}
	return recs
}

// answerLocked adds the answer to a query for one group whose delay ran
// out: a V1/V2 report, or a V3 current-state record.
func (h *Host) answerLocked(g *group, version Version, out []message, recs []Record) ([]message, []Record) {
	defer h.forgetQuerySourcesLocked(g)
	switch {
	case !g.member() || !h.wire.reported(g.addr):
	case version < V3:
		out = append(out, h.reportLocked(g, version))
	default:
		if r, ok := g.queryAnswer(); ok {
			recs = append(recs, r)
		}
	}
	return out, recs
}

// unsolicitedLocked adds a V1/V2 group's next unsolicited report and
// schedules the one after.
func (h *Host) unsolicitedLocked(g *group, version Version, now time.Time, out []message) []message {
	if version == V3 || !g.member() || g.unsolicited <= 0 {
		g.unsolicited = 0
		return out
	}
	out = append(out, h.reportLocked(g, version))
	if g.unsolicited--; g.unsolicited > 0 {
		g.unsolDue = now.Add(randomDelay(h.unsolicitedIntervalLocked(version)))
	}
	return out
}

// reportLocked is a V1 or V2 report for the group, which makes us its
// last reporter.
func (h *Host) reportLocked(g *group, version Version) message {
	g.reporter = true
	h.count.ReportsSent.Add(1)
	kind := ReportV2
	if version == V1 {
		kind = ReportV1
	}
	return message{kind, g.addr, g.addr}
}

// stateChangesLocked appends every group's pending state-change records
// and schedules the next retransmission while any remains.
func (h *Host) stateChangesLocked(groups []*group, now time.Time, recs []Record) []Record {
	pending := false
	for _, g := range groups {
		recs = g.stateChangeRecords(recs)
		pending = pending || !g.idle()
	}
	if pending {
		h.changeDue = now.Add(randomDelay(h.unsolicitedIntervalLocked(V3)))
	}
	return recs
}

// queryAnswer is the current-state record answering a group-specific or
// group-and-source-specific query (RFC 3376 5.2, RFC 3810 6.3); false
// when there is nothing to say.
func (g *group) queryAnswer() (Record, bool) {
	if !g.srcQuery {
		f := g.state()
		return Record{Type: uint8(f.Mode), Group: g.addr, Sources: f.Sources}, true
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
		return Record{}, false
	}
	slices.SortFunc(srcs, netip.Addr.Compare)
	return Record{Type: ModeIsInclude, Group: g.addr, Sources: srcs}, true
}

// stateChangeRecords appends the group's pending state-change records and
// counts one transmission off.
func (g *group) stateChangeRecords(recs []Record) []Record {
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
		recs = append(recs, Record{Type: AllowNewSources, Group: g.addr, Sources: allow})
	}
	if len(block) > 0 {
		slices.SortFunc(block, netip.Addr.Compare)
		recs = append(recs, Record{Type: BlockOldSources, Group: g.addr, Sources: block})
	}
	if g.modeRetrans > 0 {
		g.modeRetrans--
		typ := uint8(ChangeToIncludeMode)
		if f.Mode == Exclude {
			typ = ChangeToExcludeMode
		}
		recs = append(recs, Record{Type: typ, Group: g.addr, Sources: f.Sources})
	}
	return recs
}

// sendV3Reports packs records into as few reports as the MTU allows (RFC
// 3376 4.2.16, RFC 3810 5.2.15): a record too long for one report is
// split, except that the source list of an EXCLUDE-type record is cut
// short instead, since splitting it would change its meaning.
func (h *Host) sendV3Reports(recs []Record) {
	if len(recs) == 0 {
		return
	}
	w := &h.wire
	room := int(h.mtu.Load()) - w.HeaderLen - w.ReportHeaderLen
	split := splitRecords(recs, (room-w.RecordHeaderLen)/w.SourceLen)
	for len(split) > 0 {
		n, size := 0, w.ReportHeaderLen
		for n < len(split) && size+w.recordLen(&split[n])-w.ReportHeaderLen <= room {
			size += w.recordLen(&split[n])
			n++
		}
		part := split[:n]
		h.count.ReportsSent.Add(1)
		h.send(w.ReportsTo, size, func(p []byte) { w.PutReport(p, part) })
		split = split[n:]
	}
}

// splitRecords cuts records with more than maxSrcs sources: INCLUDE-type
// ones into several, EXCLUDE-type ones short.
func splitRecords(recs []Record, maxSrcs int) []Record {
	var split []Record
	for _, r := range recs {
		switch {
		case len(r.Sources) <= maxSrcs:
			split = append(split, r)
		case r.Type == ModeIsExclude || r.Type == ChangeToExcludeMode:
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
