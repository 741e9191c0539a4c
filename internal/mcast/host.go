package mcast

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapnet/tapnet/multicast"
)

// Config tunes a Host; the codecs fill it from their own Config. Zero
// fields take the RFC defaults, which IGMP and MLD share.
type Config struct {
	// MaxVersion is the highest version spoken (V3 when zero).
	MaxVersion Version
	// Robustness is how many times an unsolicited report is sent (default
	// 2). A V3 querier's QRV overrides it.
	Robustness int
	// UnsolicitedReportInterval bounds the random delay before an
	// unsolicited report is repeated: by default 1 s in V3 mode and 10 s
	// in V1/V2 mode.
	UnsolicitedReportInterval time.Duration
	// OlderQuerierTimeout is how long a V1 or V2 query keeps the host in
	// compatibility mode: by default robustness × query interval + query
	// response interval (260 s).
	OlderQuerierTimeout time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Hooks connect a Host to the interface it serves.
type Hooks = multicast.Hooks

// RFC defaults (RFC 3376 8, RFC 2236 8, RFC 3810 9, RFC 2710 7).
const (
	defaultRobustness     = 2
	defaultQueryInterval  = 125 * time.Second
	defaultQueryRespIntvl = 10 * time.Second
	v3UnsolicitedInterval = time.Second
	v2UnsolicitedInterval = 10 * time.Second
	// V1QueryResponse is the delay an IGMPv1 query allows, which has no
	// field for it (RFC 1112).
	V1QueryResponse = 10 * time.Second
	// MinQueryResponse is the shortest delay a query may ask for. Linux
	// treats IGMP's Max Resp Code of 0 as 1 so that answers stay spread
	// out and a flood of such queries is answered once per pending delay,
	// not once per query; MLD gets the same floor.
	MinQueryResponse = 100 * time.Millisecond
)

// Bounds on the sources group-and-source-specific queries make a Host
// remember until the answer is due (RFC 3376 5.2, RFC 3810 6.2). Only
// sources the answer would list are kept; past these caps the pending
// answer falls back to the group's whole state, the answer to a
// group-specific query, which is always truthful (Linux does the same
// when it cannot keep the list).
const (
	MaxQuerySourcesPerGroup = 64
	MaxQuerySourcesPerHost  = 1024
)

// Host is one interface's multicast listener host: its group memberships
// and the reports that tell routers about them. It is safe for concurrent
// use.
type Host struct {
	cfg   Config
	wire  Wire
	hooks Hooks
	mtu   atomic.Int32 // reports are packed to fit it (SetMTU)
	count Counters

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
	qrv              int           // robustness learned from V3 queries
	qi               time.Duration // query interval learned from V3 queries
	gqDue            time.Time     // pending V3 answer to a general query
	changeDue        time.Time     // next V3 state-change report
	leaves           []netip.Addr  // V2 leaves to send
	querySrcs        int           // sources recorded over all groups
}

// New returns a host speaking the protocol wire describes, for an
// interface whose link MTU is mtu (reports are packed to fit it; values
// below wire.MinMTU count as wire.MinMTU).
func New(cfg Config, wire Wire, mtu int, hooks Hooks, count Counters) *Host {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxVersion < V1 || cfg.MaxVersion > V3 {
		cfg.MaxVersion = V3
	}
	h := &Host{cfg: cfg, wire: wire, hooks: hooks, count: count,
		groups: make(map[netip.Addr]*group)}
	h.SetMTU(mtu)
	return h
}

// SetMTU changes the MTU later reports are packed for, as when the
// interface's MTU changes (values below wire.MinMTU count as wire.MinMTU).
func (h *Host) SetMTU(mtu int) { h.mtu.Store(int32(max(mtu, h.wire.MinMTU))) }

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

// silent reports whether the host never sends (a loopback interface).
func (h *Host) silent() bool { return h.hooks.Send == nil }

// IsMember reports whether the interface listens to a group at all: the
// all-nodes group, or one some socket joined.
func (h *Host) IsMember(addr netip.Addr) bool {
	if addr == h.wire.AllNodes {
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	g := h.groups[addr]
	return g != nil && g.member()
}

// Accepts reports whether the interface state for a group admits
// datagrams from src.
func (h *Host) Accepts(addr, src netip.Addr) bool {
	if addr == h.wire.AllNodes {
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	g := h.groups[addr]
	return g != nil && g.allows(src)
}

// Groups calls yield with the interface state of every group the host is
// a member of, under the Host's lock: yield must not call into the Host.
func (h *Host) Groups(yield func(netip.Addr, Filter)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for a, g := range h.groups {
		if g.member() {
			yield(a, g.state())
		}
	}
}

// Version returns the version the host currently reports with.
func (h *Host) Version() Version {
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
	if h.wire.reported(addr) && !h.silent() && !equalFilter(old, cur) {
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
// RFC 2236 3, RFC 3810 6.1, RFC 2710 4).
func (h *Host) stateChangedLocked(g *group, was, is bool, old, cur Filter, now time.Time) {
	if v := h.versionLocked(now); v < V3 {
		// V1/V2 know no sources: only joining and leaving count.
		switch {
		case !was && is:
			g.unsolicited, g.unsolDue = h.robustnessLocked(), now
		case was && !is:
			if g.reporter && v == V2 {
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

func (h *Host) versionLocked(now time.Time) Version {
	v := h.cfg.MaxVersion
	if now.Before(h.v1Until) {
		return V1
	}
	if now.Before(h.v2Until) {
		return min(v, V2)
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

func (h *Host) unsolicitedIntervalLocked(v Version) time.Duration {
	switch {
	case h.cfg.UnsolicitedReportInterval > 0:
		return h.cfg.UnsolicitedReportInterval
	case v < V3:
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

// randomDelay picks a delay in [0, max], as every answer does.
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
