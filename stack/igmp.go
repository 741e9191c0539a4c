package stack

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/ipv4"
	"github.com/tapnet/tapnet/tap"
)

// This file is the host side of IGMP: per-NIC group membership with source
// filters, IGMPv3 reports (RFC 3376) and compatibility with IGMPv2 (RFC
// 2236) and IGMPv1 (RFC 1112) queriers.
//
// Sockets tell a NIC how their own filter for a group changes
// (ChangeMembership); the NIC keeps per-source counts so that its
// interface state is the merge RFC 3376 3.2 defines, and every change of
// that state becomes a state-change report, repeated Robustness times.
// Queries schedule answers after random delays (up to the query's maximum,
// at least a tenth of a second), and repeated queries neither multiply nor
// hasten answers, as in Linux. What a query makes the NIC remember is
// bounded by the NIC's own filters and fixed caps, so hostile queries cost
// neither memory nor big reports. All timing lives in one timer per NIC,
// served by one goroutine that starts with the first need and stops when
// the stack closes, so nothing outlives Stack.Close.

var allHosts = ipv4.AllHostsGroup

// RFC defaults (RFC 3376 8, RFC 2236 8).
const (
	defaultRobustness      = 2
	defaultQueryInterval   = 125 * time.Second
	defaultQueryRespIntvl  = 10 * time.Second
	v3UnsolicitedInterval  = time.Second
	v2UnsolicitedInterval  = 10 * time.Second
	v1QueryResponseTimeout = 10 * time.Second
	// minQueryResponse is the shortest delay a query may ask for. Linux
	// treats a Max Resp Code of 0 as 1 so that answers stay spread out and
	// a flood of such queries is answered once per pending delay, not
	// once per query.
	minQueryResponse = 100 * time.Millisecond
)

// Bounds on the sources group-and-source-specific queries make a NIC
// remember until the answer is due (RFC 3376 5.2). Only sources our answer
// would list are kept; past these caps the pending answer falls back to
// the group's whole state, the answer to a group-specific query, which is
// always truthful (Linux does the same when it cannot keep the list).
const (
	maxQuerySourcesPerGroup = 64
	maxQuerySourcesPerNIC   = 1024
)

// IGMPOptions tune a NIC's IGMP host. The zero value gives the RFC and
// Linux defaults; tests shorten the intervals.
type IGMPOptions struct {
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
	// OlderQuerierTimeout is how long a v1 or v2 query keeps the NIC in
	// compatibility mode: by default robustness × query interval + query
	// response interval (260 s).
	OlderQuerierTimeout time.Duration
	// Now is the clock; default time.Now. Tests use a manual one.
	Now func() time.Time
}

// FilterMode is a multicast source filter mode (RFC 3376 3.1).
type FilterMode uint8

// Filter modes. The values are IGMPv3's MODE_IS_INCLUDE and
// MODE_IS_EXCLUDE record types.
const (
	FilterInclude FilterMode = ipv4.ModeIsInclude // only the listed sources
	FilterExclude FilterMode = ipv4.ModeIsExclude // all but the listed sources
)

// MulticastFilter is a socket's (or an interface's) reception state for one
// group. INCLUDE with no sources, the zero value's meaning, is "not a
// member".
type MulticastFilter struct {
	Mode    FilterMode
	Sources []netip.Addr
}

// Member reports whether the filter receives anything.
func (f MulticastFilter) Member() bool { return f.Mode == FilterExclude || len(f.Sources) > 0 }

// Allows reports whether the filter receives datagrams from src.
func (f MulticastFilter) Allows(src netip.Addr) bool {
	return slices.Contains(f.Sources, src) != (f.Mode == FilterExclude)
}

// IGMPStats count a NIC's IGMP traffic.
type IGMPStats struct {
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

// mgroup is one group's state on a NIC.
type mgroup struct {
	addr netip.Addr
	// Socket filters, merged (RFC 3376 3.2): how many sockets are in
	// EXCLUDE mode, and per source how many INCLUDE-mode sockets list it
	// and how many EXCLUDE-mode sockets list it.
	exclSockets int
	incl, excl  map[netip.Addr]int

	// v3 state-change retransmissions still due: of the filter mode, or
	// per source of an ALLOW/BLOCK record.
	modeRetrans int
	srcRetrans  map[netip.Addr]int

	// A pending answer to a query for this group (v1/v2 reports, v3
	// group-specific and group-and-source-specific queries). querySrcs
	// holds only sources the answer would list, at most
	// maxQuerySourcesPerGroup.
	due       time.Time
	srcQuery  bool
	querySrcs map[netip.Addr]struct{}

	// v1/v2: unsolicited reports left to send, and whether we sent the
	// last report heard on the link (then we send the Leave).
	unsolicited int
	unsolDue    time.Time
	reporter    bool
}

func (g *mgroup) member() bool { return g.exclSockets > 0 || len(g.incl) > 0 }

// idle reports whether nothing is pending, so a non-member can be dropped.
func (g *mgroup) idle() bool { return g.modeRetrans == 0 && len(g.srcRetrans) == 0 }

// state returns the interface state: EXCLUDE if any socket excludes, with
// the sources every excluding socket excludes and no including socket
// includes; INCLUDE otherwise, with every included source. Sorted.
func (g *mgroup) state() MulticastFilter {
	var f MulticastFilter
	if g.exclSockets > 0 {
		f.Mode = FilterExclude
		for s, c := range g.excl {
			if c == g.exclSockets && g.incl[s] == 0 {
				f.Sources = append(f.Sources, s)
			}
		}
	} else {
		f.Mode = FilterInclude
		for s := range g.incl {
			f.Sources = append(f.Sources, s)
		}
	}
	slices.SortFunc(f.Sources, netip.Addr.Compare)
	return f
}

// allows is state().Allows(src) without building the list.
func (g *mgroup) allows(src netip.Addr) bool {
	if g.exclSockets > 0 {
		return g.excl[src] != g.exclSockets || g.incl[src] > 0
	}
	return g.incl[src] > 0
}

// account adds (d = 1) or removes (d = -1) one socket's filter.
func (g *mgroup) account(f MulticastFilter, d int) {
	if !f.Member() {
		return
	}
	m := g.incl
	if f.Mode == FilterExclude {
		g.exclSockets += d
		m = g.excl
	}
	for _, s := range f.Sources {
		if m[s] += d; m[s] <= 0 {
			delete(m, s)
		}
	}
}

// igmpHost is a NIC's IGMP state.
type igmpHost struct {
	n     *NIC
	opt   IGMPOptions
	stats IGMPStats

	mu      sync.Mutex
	groups  map[netip.Addr]*mgroup
	closed  bool
	started bool
	timer   *time.Timer
	stop    chan struct{}

	v1Until, v2Until time.Time     // older-version querier present until
	qrv              int           // robustness learned from v3 queries
	qi               time.Duration // query interval learned from v3 queries
	gqDue            time.Time     // pending v3 answer to a general query
	changeDue        time.Time     // next v3 state-change report
	leaves           []netip.Addr  // v2 Leave Group messages to send
	querySrcs        int           // sources recorded over all groups
}

func (h *igmpHost) init(n *NIC, opt IGMPOptions) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	h.n, h.opt = n, opt
	h.groups = make(map[netip.Addr]*mgroup)
}

// close stops the timer goroutine (the stack waits for it) and makes every
// later change a no-op.
func (h *igmpHost) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	if h.started {
		h.timer.Stop()
		close(h.stop)
	}
}

// acceptsGroup reports whether the NIC listens to a multicast group: the
// all-hosts group, or one some socket joined.
func (n *NIC) acceptsGroup(g netip.Addr) bool {
	if g == allHosts {
		return true
	}
	h := &n.igmp
	h.mu.Lock()
	defer h.mu.Unlock()
	mg := h.groups[g]
	return mg != nil && mg.member()
}

// AcceptsMulticast reports whether the NIC's interface state for group
// admits datagrams from src: what a socket that joined nothing itself
// receives with IP_MULTICAST_ALL.
func (n *NIC) AcceptsMulticast(group, src netip.Addr) bool {
	if group == allHosts {
		return true
	}
	h := &n.igmp
	h.mu.Lock()
	defer h.mu.Unlock()
	g := h.groups[group]
	return g != nil && g.allows(src)
}

// MulticastGroups returns the NIC's interface state for every group it is
// a member of.
func (n *NIC) MulticastGroups() map[netip.Addr]MulticastFilter {
	h := &n.igmp
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[netip.Addr]MulticastFilter)
	for a, g := range h.groups {
		if g.member() {
			out[a] = g.state()
		}
	}
	return out
}

// IGMPStats returns the NIC's IGMP counters.
func (n *NIC) IGMPStats() *IGMPStats { return &n.igmp.stats }

// IGMPVersion returns the version the NIC currently reports with: 3, or 2
// or 1 while an older querier was heard recently (or when forced).
func (n *NIC) IGMPVersion() int {
	h := &n.igmp
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.versionLocked(h.opt.Now())
}

// ChangeMembership replaces one socket's filter for group on the NIC, from
// what it was (the zero filter when it was not a member) to what it is now
// (the zero filter when it leaves). Changes of the NIC's merged state are
// reported with IGMP.
func (n *NIC) ChangeMembership(group netip.Addr, from, to MulticastFilter) {
	h := &n.igmp
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	g := h.groups[group]
	if g == nil {
		if !to.Member() {
			return
		}
		g = &mgroup{addr: group, incl: map[netip.Addr]int{}, excl: map[netip.Addr]int{}}
		h.groups[group] = g
	}
	was, old := g.member(), g.state()
	g.account(from, -1)
	g.account(to, 1)
	is, cur := g.member(), g.state()
	if group != allHosts && !n.loopback && !equalFilter(old, cur) {
		h.stateChangedLocked(g, was, is, old, cur, h.opt.Now())
	}
	h.dropIfIdleLocked(g)
}

func equalFilter(a, b MulticastFilter) bool {
	return a.Mode == b.Mode && slices.Equal(a.Sources, b.Sources)
}

func (h *igmpHost) dropIfIdleLocked(g *mgroup) {
	if !g.member() && g.idle() {
		h.forgetQuerySourcesLocked(g)
		delete(h.groups, g.addr)
	}
}

// stateChangedLocked reacts to a change of interface state (RFC 3376 5.1,
// RFC 2236 3).
func (h *igmpHost) stateChangedLocked(g *mgroup, was, is bool, old, cur MulticastFilter, now time.Time) {
	if h.versionLocked(now) < 3 {
		// v1/v2 know no sources: only joining and leaving count.
		switch {
		case !was && is:
			g.unsolicited, g.unsolDue = h.robustnessLocked(), now
		case was && !is:
			if g.reporter && h.versionLocked(now) == 2 {
				h.leaves = append(h.leaves, g.addr)
			}
			g.unsolicited, g.unsolDue, g.due, g.reporter = 0, time.Time{}, time.Time{}, false
		}
		h.scheduleLocked(now)
		return
	}
	if !is {
		g.due = time.Time{}
		h.forgetQuerySourcesLocked(g)
	}
	if old.Mode != cur.Mode {
		// A filter-mode change report (TO_EX / TO_IN) carries the whole
		// current list, so pending source changes are folded into it.
		g.modeRetrans = h.robustnessLocked()
		g.srcRetrans = nil
		// The recorded query sources were chosen for the old mode; the
		// whole new state answers the pending query truthfully.
		g.srcQuery = false
		h.forgetQuerySourcesLocked(g)
	} else {
		// Source changes are reported as ALLOW/BLOCK, also beside a
		// mode change still being repeated (as Linux does).
		if g.srcRetrans == nil {
			g.srcRetrans = make(map[netip.Addr]int)
		}
		for _, s := range symmetricDifference(old.Sources, cur.Sources) {
			g.srcRetrans[s] = h.robustnessLocked()
		}
	}
	h.changeDue = now // the first report goes at once
	h.scheduleLocked(now)
}

// symmetricDifference returns the sources in exactly one of two sorted
// lists.
func symmetricDifference(a, b []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, s := range a {
		if _, ok := slices.BinarySearchFunc(b, s, netip.Addr.Compare); !ok {
			out = append(out, s)
		}
	}
	for _, s := range b {
		if _, ok := slices.BinarySearchFunc(a, s, netip.Addr.Compare); !ok {
			out = append(out, s)
		}
	}
	return out
}

func (h *igmpHost) versionLocked(now time.Time) int {
	v := 3
	if h.opt.Version == 1 || h.opt.Version == 2 {
		v = h.opt.Version
	}
	if now.Before(h.v1Until) {
		return 1
	}
	if now.Before(h.v2Until) {
		return min(v, 2)
	}
	return v
}

func (h *igmpHost) robustnessLocked() int {
	switch {
	case h.qrv > 0:
		return h.qrv
	case h.opt.Robustness > 0:
		return h.opt.Robustness
	}
	return defaultRobustness
}

func (h *igmpHost) unsolicitedIntervalLocked(version int) time.Duration {
	switch {
	case h.opt.UnsolicitedReportInterval > 0:
		return h.opt.UnsolicitedReportInterval
	case version < 3:
		return v2UnsolicitedInterval
	}
	return v3UnsolicitedInterval
}

func (h *igmpHost) olderQuerierTimeoutLocked() time.Duration {
	if h.opt.OlderQuerierTimeout > 0 {
		return h.opt.OlderQuerierTimeout
	}
	qi := h.qi
	if qi == 0 {
		qi = defaultQueryInterval
	}
	return time.Duration(h.robustnessLocked())*qi + defaultQueryRespIntvl
}

// randomDelay picks a delay in [0, max], as every IGMP answer does.
func randomDelay(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return rand.N(max + 1)
}

// scheduleLocked arms the timer for the earliest pending action, starting
// the timer goroutine on first use.
func (h *igmpHost) scheduleLocked(now time.Time) {
	if h.closed || h.n.loopback {
		return
	}
	var next time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	earliest(h.gqDue)
	earliest(h.changeDue)
	if len(h.leaves) > 0 {
		earliest(now)
	}
	for _, g := range h.groups {
		earliest(g.due)
		earliest(g.unsolDue)
	}
	if next.IsZero() {
		if h.started {
			h.timer.Stop()
		}
		return
	}
	if !h.started {
		h.started = true
		h.timer = time.NewTimer(max(next.Sub(now), 0))
		h.stop = make(chan struct{})
		// Added under h.mu while not closed, so before close's Wait.
		h.n.s.wg.Add(1)
		go h.run()
		return
	}
	h.timer.Reset(max(next.Sub(now), 0))
}

func (h *igmpHost) run() {
	defer h.n.s.wg.Done()
	for {
		select {
		case <-h.stop:
			return
		case <-h.timer.C:
		}
		frames, recs := h.fire()
		// v3 reports are built outside h.mu: packing many records is the
		// costly part, and queries and joins need not wait for it.
		for _, b := range append(frames, h.v3Reports(recs)...) {
			h.n.tryWrite(b)
		}
	}
}

// fire performs every action that is due and returns the frames to send
// and the v3 records to send in reports.
func (h *igmpHost) fire() ([]*buffer.Buffer, []ipv4.GroupRecordFields) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, nil
	}
	now := h.opt.Now()
	version := h.versionLocked(now)
	var out []*buffer.Buffer
	for _, g := range h.leaves {
		out = append(out, h.v2Message(ipv4.IGMPv2LeaveGroup, g, ipv4.AllRoutersGroup))
		h.stats.LeavesSent.Add(1)
	}
	h.leaves = nil
	groups := h.sortedGroupsLocked()
	var recs []ipv4.GroupRecordFields
	if due(h.gqDue, now) {
		h.gqDue = time.Time{}
		if version == 3 {
			for _, g := range groups {
				if g.member() && g.addr != allHosts {
					f := g.state()
					recs = append(recs, ipv4.GroupRecordFields{Type: uint8(f.Mode), Group: g.addr, Sources: f.Sources})
				}
			}
		}
	}
	for _, g := range groups {
		if due(g.due, now) {
			g.due = time.Time{}
			if !g.member() || g.addr == allHosts {
				h.forgetQuerySourcesLocked(g)
				continue
			}
			if version < 3 {
				out = append(out, h.v1v2Report(g.addr, version))
				g.reporter = true
				continue
			}
			if r, ok := g.queryAnswer(); ok {
				recs = append(recs, r)
			}
			h.forgetQuerySourcesLocked(g)
		}
		if due(g.unsolDue, now) {
			g.unsolDue = time.Time{}
			if version < 3 && g.member() && g.unsolicited > 0 {
				out = append(out, h.v1v2Report(g.addr, version))
				g.reporter = true
				if g.unsolicited--; g.unsolicited > 0 {
					g.unsolDue = now.Add(randomDelay(h.unsolicitedIntervalLocked(version)))
				}
			} else {
				g.unsolicited = 0
			}
		}
	}
	if due(h.changeDue, now) {
		h.changeDue = time.Time{}
		if version == 3 {
			pending := false
			for _, g := range groups {
				recs = g.stateChangeRecords(recs)
				pending = pending || !g.idle()
			}
			if pending {
				h.changeDue = now.Add(randomDelay(h.unsolicitedIntervalLocked(3)))
			}
		}
	}
	for _, g := range groups {
		h.dropIfIdleLocked(g)
	}
	h.scheduleLocked(now)
	return out, recs
}

func due(t, now time.Time) bool { return !t.IsZero() && !t.After(now) }

func (h *igmpHost) sortedGroupsLocked() []*mgroup {
	gs := make([]*mgroup, 0, len(h.groups))
	for _, g := range h.groups {
		gs = append(gs, g)
	}
	slices.SortFunc(gs, func(a, b *mgroup) int { return a.addr.Compare(b.addr) })
	return gs
}

// queryAnswer is the current-state record answering a group-specific or
// group-and-source-specific query (RFC 3376 5.2); false when there is
// nothing to say.
func (g *mgroup) queryAnswer() (ipv4.GroupRecordFields, bool) {
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
func (g *mgroup) stateChangeRecords(recs []ipv4.GroupRecordFields) []ipv4.GroupRecordFields {
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
		if f.Mode == FilterExclude {
			typ = ipv4.ChangeToExcludeMode
		}
		recs = append(recs, ipv4.GroupRecordFields{Type: typ, Group: g.addr, Sources: f.Sources})
	}
	return recs
}

// frame builds an IGMP packet to dst (IPv4 header with Router Alert, TTL 1,
// and the Ethernet header) with room for an igmpLen-byte message, which
// fill writes.
func (h *igmpHost) frame(dst netip.Addr, igmpLen int, fill func([]byte)) *buffer.Buffer {
	n := h.n
	total := ipv4.RouterAlertHeaderLen + igmpLen
	b := buffer.Get(total)
	b.SetLen(total)
	p := b.Bytes()
	// A host without an address reports from 0.0.0.0 (RFC 3376 4.2.13).
	src := n.primaryAddress(dst)
	if !src.IsValid() {
		src = netip.IPv4Unspecified()
	}
	ipv4.PutRouterAlertHeader(p, ipv4.Fields{TOS: ipv4.IGMPTOS, TotalLen: total, ID: uint16(n.s.ipID.Add(1)),
		DF: true, TTL: 1, Protocol: ipv4.ProtocolIGMP, Src: src, Dst: dst})
	fill(p[ipv4.RouterAlertHeaderLen:])
	tap.PutEthernetHeader(b.Prepend(tap.EthernetHeaderLen), tap.MulticastMAC(dst.As4()), n.mac, tap.EtherTypeIPv4)
	n.s.stats.IP.Sent.Add(1)
	return b
}

func (h *igmpHost) v2Message(typ uint8, group, dst netip.Addr) *buffer.Buffer {
	return h.frame(dst, ipv4.IGMPLen, func(p []byte) { ipv4.PutIGMP(p, typ, 0, group) })
}

func (h *igmpHost) v1v2Report(group netip.Addr, version int) *buffer.Buffer {
	h.stats.ReportsSent.Add(1)
	typ := uint8(ipv4.IGMPv2MembershipReport)
	if version == 1 {
		typ = ipv4.IGMPv1MembershipReport
	}
	return h.v2Message(typ, group, group)
}

// v3Reports packs records into as few reports as the MTU allows (RFC 3376
// 4.2.16): a record too long for one report is split, except that the
// source list of an EXCLUDE-type record is cut short instead, since
// splitting it would change its meaning.
func (h *igmpHost) v3Reports(recs []ipv4.GroupRecordFields) []*buffer.Buffer {
	if len(recs) == 0 {
		return nil
	}
	room := h.n.mtu - ipv4.RouterAlertHeaderLen - ipv4.IGMPv3ReportMinLen
	maxSrcs := (room - ipv4.IGMPGroupRecordMinLen) / 4
	var split []ipv4.GroupRecordFields
	for _, r := range recs {
		if len(r.Sources) <= maxSrcs {
			split = append(split, r)
			continue
		}
		if r.Type == ipv4.ModeIsExclude || r.Type == ipv4.ChangeToExcludeMode {
			r.Sources = r.Sources[:maxSrcs]
			split = append(split, r)
			continue
		}
		for len(r.Sources) > 0 {
			part := r
			part.Sources = r.Sources[:min(maxSrcs, len(r.Sources))]
			r.Sources = r.Sources[len(part.Sources):]
			split = append(split, part)
		}
	}
	var out []*buffer.Buffer
	for len(split) > 0 {
		n, size := 0, ipv4.IGMPv3ReportMinLen
		for n < len(split) && size+split[n].Len()-ipv4.IGMPv3ReportMinLen <= room {
			size += split[n].Len()
			n++
		}
		part := split[:n]
		out = append(out, h.frame(ipv4.AllIGMPv3RoutersGroup, ipv4.IGMPv3ReportLen(part), func(p []byte) {
			ipv4.PutIGMPv3Report(p, part)
		}))
		h.stats.ReportsSent.Add(1)
		split = split[n:]
	}
	return out
}

// handleIGMP consumes an IGMP message: queries schedule answers, other
// hosts' v1/v2 reports suppress ours. It releases b.
func (s *Stack) handleIGMP(n *NIC, b *buffer.Buffer, hl int, _ castKind) {
	defer b.ReleaseChain()
	if n.loopback {
		return
	}
	h := &n.igmp
	if b.Next != nil {
		c := cloneChain(b)
		defer c.Release()
		b = c
	}
	m, err := ipv4.ParseIGMP(b.Bytes()[hl:])
	switch err {
	case nil:
	case ipv4.ErrIGMPChecksum:
		h.stats.BadChecksum.Add(1)
		return
	default:
		h.stats.Malformed.Add(1)
		return
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
}

// heardQuery schedules the answer to a query (RFC 3376 5.2 and 7.2,
// RFC 2236 3).
func (h *igmpHost) heardQuery(m ipv4.IGMP) {
	group := m.Group()
	if !group.IsUnspecified() && !ipv4.IsMulticast(group) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	now := h.opt.Now()
	maxResp := max(m.MaxRespTime(), minQueryResponse)
	switch m.QueryVersion() {
	case 1:
		h.v1Until = now.Add(h.olderQuerierTimeoutLocked())
		h.enterCompatLocked()
		group, maxResp = netip.IPv4Unspecified(), v1QueryResponseTimeout
	case 2:
		h.v2Until = now.Add(h.olderQuerierTimeoutLocked())
		h.enterCompatLocked()
	default:
		switch h.versionLocked(now) {
		case 1:
			group, maxResp = netip.IPv4Unspecified(), v1QueryResponseTimeout
		case 3:
			h.qrv = m.QRV()
			h.qi = m.QueryInterval()
			h.heardV3QueryLocked(m, group, maxResp, now)
			return
		}
	}
	// v1/v2 answers: one report per group, each after its own delay.
	for a, g := range h.groups {
		if !g.member() || a == allHosts || !group.IsUnspecified() && a != group {
			continue
		}
		armAnswer(&g.due, now, maxResp)
	}
	h.scheduleLocked(now)
}

// heardV3QueryLocked schedules the answer to a v3 query in v3 mode.
func (h *igmpHost) heardV3QueryLocked(m ipv4.IGMP, group netip.Addr, maxResp time.Duration, now time.Time) {
	if group.IsUnspecified() {
		if m.NumSources() != 0 {
			return // a general query lists no sources
		}
		// One answer for the whole interface.
		armAnswer(&h.gqDue, now, maxResp)
		h.scheduleLocked(now)
		return
	}
	if group == allHosts {
		return // never reported (RFC 3376 5)
	}
	g := h.groups[group]
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
func (h *igmpHost) mergeQueryLocked(g *mgroup, m ipv4.IGMP) bool {
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
	case len(g.querySrcs)+fresh > maxQuerySourcesPerGroup || h.querySrcs+fresh > maxQuerySourcesPerNIC:
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
func (h *igmpHost) forgetQuerySourcesLocked(g *mgroup) {
	h.querySrcs -= len(g.querySrcs)
	g.querySrcs = nil
}

// enterCompatLocked drops pending v3 work when an older querier appears:
// it would not understand it (RFC 3376 7.2.1).
func (h *igmpHost) enterCompatLocked() {
	h.gqDue, h.changeDue = time.Time{}, time.Time{}
	for _, g := range h.groups {
		g.modeRetrans, g.srcRetrans, g.srcQuery = 0, nil, false
		h.forgetQuerySourcesLocked(g)
		h.dropIfIdleLocked(g)
	}
}

// heardReport suppresses our pending v1/v2 report for a group another host
// just reported (RFC 2236 3); v3 hosts never suppress.
func (h *igmpHost) heardReport(group netip.Addr) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || h.versionLocked(h.opt.Now()) == 3 {
		return
	}
	if g := h.groups[group]; g != nil {
		g.due, g.unsolDue, g.unsolicited, g.reporter = time.Time{}, time.Time{}, 0, false
	}
}

// DefaultMulticastNIC returns the NIC used for a group when a socket names
// none: the one the route table picks for it, else the first NIC after lo,
// as FindRoute does for sending. It is nil when the stack has no NIC.
func (s *Stack) DefaultMulticastNIC(group netip.Addr) *NIC {
	n := s.firstNIC(0)
	if e, ok := s.lookupRoute(group, 0); ok {
		n = s.NIC(e.NIC)
	}
	return n
}
