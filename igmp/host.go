package igmp

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"
)

// Host is one interface's IGMP host: its group memberships and the reports
// that tell routers about them. It is safe for concurrent use.
type Host struct {
	cfg   Config
	hooks Hooks
	mtu   int
	stats *Stats // may be shared with other hosts

	// fireMu serialises Fire, so that messages leave in the order they
	// were due and Close can wait for a Fire in progress; it guards
	// scratch. Taken before mu, never while holding it.
	fireMu  sync.Mutex
	scratch []byte // the message being built

	// mu guards everything below.
	mu     sync.Mutex
	groups map[netip.Addr]*group
	closed bool
	armed  time.Time // deadline last passed to Schedule (zero: none)

	v1Until, v2Until time.Time     // older-version querier present until
	qrv              int           // robustness learned from v3 queries
	qi               time.Duration // query interval learned from v3 queries
	gqDue            time.Time     // pending v3 answer to a general query
	changeDue        time.Time     // next v3 state-change report
	leaves           []netip.Addr  // v2 Leave Group messages to send
	querySrcs        int           // sources recorded over all groups
}

// New returns a host for an interface whose link MTU is mtu (reports are
// packed to fit it; values below the IPv4 minimum of 68 count as 68) that
// counts in stats, or in counters of its own when stats is nil.
func New(cfg Config, mtu int, hooks Hooks, stats *Stats) *Host {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if stats == nil {
		stats = new(Stats)
	}
	return &Host{cfg: cfg, hooks: hooks, mtu: max(mtu, minMTU), groups: make(map[netip.Addr]*group), stats: stats}
}

// Close withdraws the Schedule request, waits for a Fire in progress and
// makes every later call a no-op, so that nothing is sent once it returns.
func (h *Host) Close() {
	h.fireMu.Lock()
	defer h.fireMu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	if h.hooks.Schedule != nil && !h.armed.IsZero() {
		h.hooks.Schedule(-1)
	}
	h.armed = time.Time{}
}

// Stats returns the live counters the host adds to.
func (h *Host) Stats() *Stats { return h.stats }

// silent reports whether the host never sends (a loopback interface).
func (h *Host) silent() bool { return h.hooks.Send == nil }

// IsMember reports whether the interface listens to a group at all: the
// all-hosts group, or one some socket joined.
func (h *Host) IsMember(addr netip.Addr) bool {
	if addr == allHosts {
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	g := h.groups[addr]
	return g != nil && g.member()
}

// Accepts reports whether the interface state for a group admits
// datagrams from src: what a socket that joined nothing itself receives
// with IP_MULTICAST_ALL.
func (h *Host) Accepts(addr, src netip.Addr) bool {
	if addr == allHosts {
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	g := h.groups[addr]
	return g != nil && g.allows(src)
}

// Groups returns the interface state of every group the host is a member
// of.
func (h *Host) Groups() map[netip.Addr]Filter {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[netip.Addr]Filter)
	for a, g := range h.groups {
		if g.member() {
			out[a] = g.state()
		}
	}
	return out
}

// Version returns the version the host currently reports with: 3, or 2
// or 1 while an older querier was heard recently (or when forced).
func (h *Host) Version() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.versionLocked(h.cfg.Now())
}

// PendingQuerySources returns how many sources of group-and-source-specific
// queries the host keeps for answers not yet sent: at most
// MaxQuerySourcesPerHost.
func (h *Host) PendingQuerySources() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.querySrcs
}

// ChangeMembership replaces one socket's filter for a group, from what it
// was (the zero Filter when it was not a member) to what it is now (the
// zero Filter when it leaves). Changes of the merged interface state are
// reported.
func (h *Host) ChangeMembership(addr netip.Addr, from, to Filter) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	g := h.groups[addr]
	if g == nil {
		if !to.Member() {
			return
		}
		g = newGroup(addr)
		h.groups[addr] = g
	}
	was, old := g.member(), g.state()
	g.account(from, -1)
	g.account(to, 1)
	is, cur := g.member(), g.state()
	if addr != allHosts && !h.silent() && !equalFilter(old, cur) {
		h.stateChangedLocked(g, was, is, old, cur, h.cfg.Now())
	}
	h.dropIfIdleLocked(g)
}

func (h *Host) dropIfIdleLocked(g *group) {
	if !g.member() && g.idle() {
		h.forgetQuerySourcesLocked(g)
		delete(h.groups, g.addr)
	}
}

// stateChangedLocked reacts to a change of interface state (RFC 3376 5.1,
// RFC 2236 3).
func (h *Host) stateChangedLocked(g *group, was, is bool, old, cur Filter, now time.Time) {
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

func (h *Host) versionLocked(now time.Time) int {
	v := 3
	if h.cfg.Version == 1 || h.cfg.Version == 2 {
		v = h.cfg.Version
	}
	if now.Before(h.v1Until) {
		return 1
	}
	if now.Before(h.v2Until) {
		return min(v, 2)
	}
	return v
}

func (h *Host) robustnessLocked() int {
	switch {
	case h.qrv > 0:
		return h.qrv
	case h.cfg.Robustness > 0:
		return h.cfg.Robustness
	}
	return defaultRobustness
}

func (h *Host) unsolicitedIntervalLocked(version int) time.Duration {
	switch {
	case h.cfg.UnsolicitedReportInterval > 0:
		return h.cfg.UnsolicitedReportInterval
	case version < 3:
		return v2UnsolicitedInterval
	}
	return v3UnsolicitedInterval
}

func (h *Host) olderQuerierTimeoutLocked() time.Duration {
	if h.cfg.OlderQuerierTimeout > 0 {
		return h.cfg.OlderQuerierTimeout
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

// Deadline returns when Fire next has something to do; the zero time when
// nothing is pending.
func (h *Host) Deadline() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || h.silent() {
		return time.Time{}
	}
	return h.nextLocked(h.cfg.Now())
}

// nextLocked returns the earliest pending action's time (zero: none).
func (h *Host) nextLocked(now time.Time) time.Time {
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
	return next
}

// scheduleLocked passes the earliest pending action to Schedule when it
// moved.
func (h *Host) scheduleLocked(now time.Time) {
	if h.closed || h.silent() || h.hooks.Schedule == nil {
		return
	}
	next := h.nextLocked(now)
	if next == h.armed {
		return
	}
	h.armed = next
	if next.IsZero() {
		h.hooks.Schedule(-1)
		return
	}
	h.hooks.Schedule(max(next.Sub(now), 0))
}

func due(t, now time.Time) bool { return !t.IsZero() && !t.After(now) }
