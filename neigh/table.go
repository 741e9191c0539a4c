package neigh

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapnet/tapnet/ethernet"
)

// Config holds a table's limits and timers; zero fields take Linux's
// defaults. Each field names the Linux knob it mirrors
// (/proc/sys/net/ipv{4,6}/neigh/*).
type Config struct {
	MaxEntries    int           // hard limit (gc_thresh3); default 1024
	SoftEntries   int           // from here on, stale entries unused for GCMinAge are collected (gc_thresh2); default MaxEntries/2
	MinEntries    int           // below this nothing is collected (gc_thresh1); default MaxEntries/8
	MaxIncomplete int           // entries being resolved at once; default MaxEntries/2
	GCMinAge      time.Duration // see SoftEntries; also the age before an incomplete entry may be evicted; default 5s, negative for none
	StaleTime     time.Duration // from MinEntries on, entries unused this long are collected (gc_stale_time); default 60s

	MaxPending      int // packets queued per unresolved neighbour (unres_qlen); default 256
	MaxPendingBytes int // bytes queued per unresolved neighbour (unres_qlen_bytes); default 212992

	MaxMulticastProbes  int           // multicast (ARP: broadcast) solicitations before an incomplete entry fails (mcast_solicit); default 3
	MaxUnicastProbes    int           // unicast solicitations before a probed entry fails (ucast_solicit); default 3
	RetransTime         time.Duration // between solicitations (retrans_time, RFC 4861 RetransTimer); default 1s
	DelayFirstProbeTime time.Duration // from the first use of a stale entry to its first probe (delay_first_probe_time); default 5s

	// BaseReachableTime is how long a confirmation lasts on average
	// (base_reachable_time, RFC 4861 BaseReachableTime); default 30s. The
	// table uses a random value between 0.5 and 1.5 times it, drawn anew
	// every 300s as Linux does (RFC 4861 §6.3.2).
	BaseReachableTime time.Duration
	// ReachableTime, when positive, is used as is instead of the random
	// value: for tests, and for users who want a fixed reachable time.
	ReachableTime time.Duration

	// LockTime is how long after an entry last changed an overriding
	// update claiming a different address is ignored, so that the first
	// of several competing ARP replies wins (locktime: 1s for ARP, unused
	// by IPv6). Zero or negative: no lock.
	LockTime time.Duration

	// Now reads the time; default time.Now.
	Now func() time.Time
	// AfterFunc starts the table's timers; default time.AfterFunc. With a
	// fake Now, give the fake clock's timers too.
	AfterFunc func(d time.Duration, f func()) Timer
}

// Timer is what Config.AfterFunc returns; *time.Timer implements it.
type Timer interface {
	Stop() bool
	Reset(d time.Duration) bool
}

// Pending is a packet waiting for its next hop's address. The table only
// measures queued packets and releases those it drops; the caller that
// queued them gets them back through Hooks and asserts their concrete type.
type Pending interface {
	// Len returns the packet's length in bytes, counted against
	// MaxPendingBytes.
	Len() int
	// Release gives the packet back to its owner; the table calls it once
	// for each packet it drops and never touches the packet again.
	Release()
}

// Hooks connect the table to a link. Solicit, Failed and RouterLost are
// called without the table's lock held; Resolved is called with it held,
// to keep packet order, so it must not call back into the table or block.
// Resolved and Failed take ownership of the packets.
type Hooks struct {
	// Solicit sends a solicitation (an ARP request, a neighbour
	// solicitation) for addr: multicast (ARP: broadcast) when dst is the
	// zero MAC, else unicast to dst, a probe of a known address.
	Solicit func(addr netip.Addr, dst ethernet.MAC)
	// Resolved sends the packets that waited for addr's link address.
	Resolved func(addr netip.Addr, mac ethernet.MAC, pkts []Pending)
	// Failed learns that addr did not answer: its entry is gone, and pkts
	// (none when the entry was probed) can be reported unreachable, as
	// Linux does with EHOSTUNREACH. When nil the packets are released.
	Failed func(addr netip.Addr, pkts []Pending)
	// RouterLost, if set, learns that a neighbour said it is no longer a
	// router (RFC 4861 §7.2.5: remove it from the default router list).
	RouterLost func(addr netip.Addr)
}

// Stats are a table's counters. Several tables may add to one Stats, as
// Linux counts a protocol's neighbour table as a whole over devices.
type Stats struct {
	Requests        atomic.Uint64 // solicitations sent, multicast and unicast
	Resolved        atomic.Uint64 // resolutions completed
	Failed          atomic.Uint64 // entries that got no answer: resolutions, and probes of known neighbours
	PendingDropped  atomic.Uint64 // queued packets dropped: queue full, resolution failed or entry evicted
	Evicted         atomic.Uint64 // entries evicted to stay within MaxEntries or MaxIncomplete
	Collected       atomic.Uint64 // idle entries collected from MinEntries on
	CacheFullDrops  atomic.Uint64 // packets dropped because no entry could be made
	Updates         atomic.Uint64 // entries learned or refreshed from the wire
	UnsolicitedSeen atomic.Uint64 // updates for neighbours without an entry that may not make one (ignored)
	LockTimeIgnored atomic.Uint64 // updates claiming a new address within LockTime of the last change (ignored)
}

// Entry is what Lookup and Entries report of a neighbour.
type Entry struct {
	Addr   netip.Addr
	MAC    ethernet.MAC // zero while Incomplete
	State  State
	Router bool // the neighbour said it is a router (IPv6)
}

// entry is a neighbour. Its times follow Linux's neighbour fields.
type entry struct {
	addr         netip.Addr
	prev, next   *entry // in its list: Table.resolved or Table.incomplete
	state        State
	mac          ethernet.MAC
	router       bool
	confirmed    time.Time // last reachability confirmation (neigh->confirmed)
	changed      time.Time // creation or last change of state or address (neigh->updated)
	used         time.Time // last packet sent through it
	probes       int       // solicitations sent in Incomplete or Probe
	pending      []Pending
	pendingBytes int
	timer        Timer
	timerArmed   bool // timer is set and its callback has not begun
	staleFires   int  // callbacks of stopped timers still to come, to ignore
}

// Table is a neighbour table for one link. It is safe for concurrent use.
//
// It holds at most MaxEntries entries, of which at most MaxIncomplete are
// being resolved, so that a flood of destinations that never answer
// cannot push out the neighbours that do. Like Linux's neighbour table it
// collects garbage when an entry is made, never from a timer, removing a
// few entries at most so that the cost does not grow with the table. The
// first two thresholds count resolved entries:
//   - below MinEntries, nothing is collected;
//   - from MinEntries, the least recently used entry goes once unused for
//     StaleTime; from SoftEntries, once unconfirmed for the reachable time
//     and unused for GCMinAge (Linux also collects reachable entries
//     there; keeping them is cheap, and under a flood they would be hard
//     to resolve again);
//   - at MaxEntries the table is full and one entry is evicted, in this
//     order of preference: the least recently used one if unconfirmed for
//     the reachable time, the oldest incomplete one if older than
//     GCMinAge, the least recently used one. Linux refuses a new entry
//     when every one changed within 5s; a userspace stack talking to many
//     peers is better served by the LRU order.
//
// Incomplete entries younger than GCMinAge are never evicted: a burst of
// new destinations would otherwise evict each resolution before its answer
// could arrive. When MaxIncomplete of them are in flight, a new resolution
// is refused and its packet counted in CacheFullDrops, as Linux reports
// "neighbor table overflow". An evicted incomplete entry's queued packets
// are released and counted in PendingDropped (Linux purges them too), so
// at most MaxIncomplete × MaxPendingBytes bytes ever wait for resolution.
type Table struct {
	cfg   Config
	hooks Hooks
	stats *Stats // may be shared with other tables
	// mu guards the fields below. Hooks.Resolved runs under it and takes
	// the link's locks, so it comes before those.
	mu          sync.Mutex
	m           map[netip.Addr]*entry
	resolved    lru // entries with an address, most recently used first
	incomplete  lru // entries being resolved, newest first
	reachable   time.Duration
	reachableAt time.Time // when reachable was drawn
	closed      bool
}

// rerandomizeInterval is how often the reachable time is drawn again
// (Linux's neigh_periodic_work, every 300s).
const rerandomizeInterval = 300 * time.Second

// New returns an empty table that counts in stats, or in counters of its
// own when stats is nil.
func New(cfg Config, hooks Hooks, stats *Stats) *Table {
	if stats == nil {
		stats = new(Stats)
	}
	t := &Table{cfg: withDefaults(cfg), hooks: hooks, stats: stats, m: make(map[netip.Addr]*entry)}
	t.drawReachableLocked(t.cfg.Now())
	return t
}

// withDefaults fills cfg's zero fields and keeps the thresholds ordered.
func withDefaults(cfg Config) Config {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 1024
	}
	cfg.SoftEntries = clamp(cfg.SoftEntries, cfg.MaxEntries/2, cfg.MaxEntries)
	cfg.MinEntries = clamp(cfg.MinEntries, cfg.MaxEntries/8, cfg.SoftEntries)
	cfg.MaxIncomplete = clamp(cfg.MaxIncomplete, max(1, cfg.MaxEntries/2), cfg.MaxEntries)
	if cfg.GCMinAge == 0 {
		cfg.GCMinAge = 5 * time.Second
	} else if cfg.GCMinAge < 0 {
		cfg.GCMinAge = 0
	}
	cfg.StaleTime = orDefault(cfg.StaleTime, 60*time.Second)
	cfg.MaxPending = orDefault(cfg.MaxPending, 256)
	cfg.MaxPendingBytes = orDefault(cfg.MaxPendingBytes, 212992)
	cfg.MaxMulticastProbes = orDefault(cfg.MaxMulticastProbes, 3)
	cfg.MaxUnicastProbes = orDefault(cfg.MaxUnicastProbes, 3)
	cfg.RetransTime = orDefault(cfg.RetransTime, time.Second)
	cfg.DelayFirstProbeTime = orDefault(cfg.DelayFirstProbeTime, 5*time.Second)
	cfg.BaseReachableTime = orDefault(cfg.BaseReachableTime, 30*time.Second)
	cfg.ReachableTime = max(cfg.ReachableTime, 0)
	cfg.LockTime = max(cfg.LockTime, 0)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.AfterFunc == nil {
		cfg.AfterFunc = func(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
	}
	return cfg
}

// clamp returns v, or def when v is not positive, capped at hi.
func clamp(v, def, hi int) int {
	if v <= 0 {
		v = def
	}
	return min(v, hi)
}

// orDefault returns v, or def when v is not positive.
func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Config returns the table's configuration with its defaults filled in.
func (t *Table) Config() Config {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cfg
}

// Stats returns the live counters the table adds to (shared with the other
// tables given the same Stats in New).
func (t *Table) Stats() *Stats { return t.stats }

// SetBaseReachableTime changes BaseReachableTime and draws the reachable
// time from it at once, as a host does when a router advertisement gives
// a new value (RFC 4861 §6.3.4). Non-positive durations are ignored.
func (t *Table) SetBaseReachableTime(d time.Duration) {
	if d <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cfg.BaseReachableTime = d
	t.reachableAt = time.Time{}
	t.drawReachableLocked(t.cfg.Now())
}

// SetRetransTime changes RetransTime, as a router advertisement may
// (RFC 4861 §6.3.4). Non-positive durations are ignored.
func (t *Table) SetRetransTime(d time.Duration) {
	if d <= 0 {
		return
	}
	t.mu.Lock()
	t.cfg.RetransTime = d
	t.mu.Unlock()
}

// drawReachableLocked draws the reachable time uniformly from 0.5 to 1.5
// BaseReachableTime when the last draw is rerandomizeInterval old, unless
// ReachableTime fixes it.
func (t *Table) drawReachableLocked(now time.Time) {
	if t.cfg.ReachableTime > 0 {
		t.reachable = t.cfg.ReachableTime
		return
	}
	if !t.reachableAt.IsZero() && now.Sub(t.reachableAt) < rerandomizeInterval {
		return
	}
	base := t.cfg.BaseReachableTime
	t.reachable = base/2 + time.Duration(rand.Int64N(int64(base)+1))
	t.reachableAt = now
}

// Resolve returns addr's link address if it is known; pkt stays the
// caller's. Otherwise it takes ownership of pkt (when not nil), queues it
// until the neighbour answers and starts or continues resolution; the
// packet is later passed to Hooks.Resolved or Hooks.Failed, or released
// and counted when the queue is full or the entry evicted. A nil pkt only
// looks up or starts resolution; pass an untyped nil, not a nil pointer of
// a type implementing Pending.
//
// Resolving a stale entry counts as sending through it: the entry enters
// Delay, and is probed unless its reachability is confirmed in time.
func (t *Table) Resolve(addr netip.Addr, pkt Pending) (ethernet.MAC, bool) {
	t.mu.Lock()
	now := t.cfg.Now()
	e := t.m[addr]
	if e != nil && e.state != Incomplete {
		mac := e.mac
		t.useLocked(e, now)
		t.mu.Unlock()
		return mac, true
	}
	if t.closed {
		t.mu.Unlock()
		t.drop(pkt)
		return ethernet.MAC{}, false
	}
	start := e == nil
	if start {
		if e = t.startLocked(addr, now); e == nil {
			t.mu.Unlock()
			if pkt != nil {
				t.stats.CacheFullDrops.Add(1)
				pkt.Release()
			}
			return ethernet.MAC{}, false
		}
	}
	if pkt != nil {
		t.enqueueLocked(e, pkt)
	}
	t.mu.Unlock()
	if start {
		t.solicit(addr, ethernet.MAC{})
	}
	return ethernet.MAC{}, false
}

// useLocked notes a packet sent through e, which has an address.
func (t *Table) useLocked(e *entry, now time.Time) {
	e.used = now
	t.resolved.moveToFront(e)
	t.expireLocked(e, now)
	if e.state == Stale {
		t.setStateLocked(e, Delay, now)
		t.armLocked(e, t.cfg.DelayFirstProbeTime)
	}
}

// expireLocked makes a reachable entry stale once its confirmation is
// older than the reachable time. Linux does it from a timer; doing it
// when the entry is next looked at is the same to everyone watching, and
// keeps the send path free of timers. The change dates from the expiry,
// as Linux's would, for LockTime.
func (t *Table) expireLocked(e *entry, now time.Time) {
	if e.state == Reachable && now.Sub(e.confirmed) > t.reachable {
		e.state = Stale
		e.changed = e.confirmed.Add(t.reachable)
	}
}

// stateAt is e's state at now, without changing e.
func (t *Table) stateAt(e *entry, now time.Time) State {
	if e.state == Reachable && now.Sub(e.confirmed) > t.reachable {
		return Stale
	}
	return e.state
}

// setStateLocked moves e to st, noting the change for LockTime.
func (t *Table) setStateLocked(e *entry, st State, now time.Time) {
	if e.state != st {
		e.state = st
		e.changed = now
	}
}

// startLocked makes an incomplete entry for addr and arms its first
// retransmission; the caller sends the first solicitation. It returns nil
// when there is no room.
func (t *Table) startLocked(addr netip.Addr, now time.Time) *entry {
	if !t.makeRoomLocked(now, true) {
		return nil
	}
	e := t.addLocked(addr, Incomplete, now)
	e.probes = 1
	t.armLocked(e, t.cfg.RetransTime)
	return e
}

// enqueueLocked queues pkt on e; like Linux, the oldest queued packets
// make way for the newest.
func (t *Table) enqueueLocked(e *entry, pkt Pending) {
	for len(e.pending) > 0 && (len(e.pending) >= t.cfg.MaxPending || e.pendingBytes+pkt.Len() > t.cfg.MaxPendingBytes) {
		e.pendingBytes -= e.pending[0].Len()
		t.drop(e.pending[0])
		e.pending[0] = nil
		e.pending = e.pending[1:]
	}
	e.pending = append(e.pending, pkt)
	e.pendingBytes += pkt.Len()
}

// drop releases a queued packet that will not be sent, and counts it.
func (t *Table) drop(pkt Pending) {
	if pkt != nil {
		t.stats.PendingDropped.Add(1)
		pkt.Release()
	}
}

// solicit counts and sends a solicitation; the lock must not be held.
func (t *Table) solicit(addr netip.Addr, dst ethernet.MAC) {
	t.stats.Requests.Add(1)
	if t.hooks.Solicit != nil {
		t.hooks.Solicit(addr, dst)
	}
}

// Confirm tells the table that addr is reachable, from an upper layer
// that heard from it (RFC 4861 §7.3.1: forward progress, like a TCP
// acknowledgement or Linux's MSG_CONFIRM). An entry with an address
// becomes reachable; an unknown or incomplete one is left alone, since a
// confirmation carries no link address.
func (t *Table) Confirm(addr netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.m[addr]
	if e == nil || e.state == Incomplete {
		return
	}
	now := t.cfg.Now()
	t.expireLocked(e, now)
	t.confirmLocked(e, now)
}

// confirmLocked makes e reachable from now, stopping Delay or Probe.
func (t *Table) confirmLocked(e *entry, now time.Time) {
	e.confirmed = now
	if e.state != Reachable {
		t.setStateLocked(e, Reachable, now)
		t.disarmLocked(e)
	}
}

// Lookup returns addr's entry without side effects.
func (t *Table) Lookup(addr netip.Addr) (Entry, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.m[addr]
	if e == nil {
		return Entry{}, false
	}
	return t.entryOf(e, t.cfg.Now()), true
}

func (t *Table) entryOf(e *entry, now time.Time) Entry {
	return Entry{Addr: e.addr, MAC: e.mac, State: t.stateAt(e, now), Router: e.router}
}

// Entries appends every entry to dst and returns it, resolved ones first
// from the most recently used, then incomplete ones from the newest.
func (t *Table) Entries(dst []Entry) []Entry {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.cfg.Now()
	for _, l := range []*lru{&t.resolved, &t.incomplete} {
		for e := l.head; e != nil; e = e.next {
			dst = append(dst, t.entryOf(e, now))
		}
	}
	return dst
}

// Len returns the number of entries.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// Close stops every timer and releases queued packets; the table makes no
// entries afterwards.
func (t *Table) Close() {
	t.mu.Lock()
	t.closed = true
	var pkts []Pending
	for _, e := range t.m {
		t.disarmLocked(e)
		pkts = append(pkts, e.pending...)
		e.pending = nil
	}
	clear(t.m)
	t.resolved, t.incomplete = lru{}, lru{}
	t.mu.Unlock()
	for _, p := range pkts {
		p.Release()
	}
}
