package arp

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapnet/tapnet/ethernet"
)

// State is a neighbour entry's state (a subset of Linux's NUD states).
type State uint8

const (
	// Incomplete: a request is out and packets wait for the answer.
	Incomplete State = iota + 1
	// Reachable: confirmed within ReachableTime.
	Reachable
	// Stale: usable, but the next use sends a unicast probe to confirm it.
	Stale
)

// String returns the state's name in lower case: "incomplete",
// "reachable", "stale", or "none" for the zero State (no entry).
func (s State) String() string {
	switch s {
	case Incomplete:
		return "incomplete"
	case Reachable:
		return "reachable"
	case Stale:
		return "stale"
	}
	return "none"
}

// Config holds the cache's limits and timers; zero fields take defaults
// close to Linux's. The three entry thresholds are Linux's gc_thresh1/2/3
// (128/512/1024 by default); see Cache for how entries are collected.
type Config struct {
	MaxEntries      int           // hard limit (gc_thresh3); default 1024
	SoftEntries     int           // from here on, stale entries unused for GCMinAge are collected (gc_thresh2); default MaxEntries/2
	MinEntries      int           // below this nothing is collected (gc_thresh1); default MaxEntries/8
	MaxIncomplete   int           // entries being resolved at once; default MaxEntries/2
	GCMinAge        time.Duration // see SoftEntries; also the age before an incomplete entry may be evicted; default 5s, negative for none
	MaxPending      int           // packets queued per unresolved neighbour; default 256
	MaxPendingBytes int           // bytes queued per unresolved neighbour; default 212992 (Linux's unres_qlen_bytes)
	Retries         int           // requests before giving up; default 3
	RetransInterval time.Duration // between requests; default 1s
	ReachableTime   time.Duration // reachable → stale; default 30s
	StaleTime       time.Duration // from MinEntries on, entries unused this long are collected (gc_staletime); default 60s
	// LockTime is how long after an entry last changed a packet claiming
	// a different MAC for it is ignored, so that the first of several
	// competing replies wins (Linux's locktime, default 1s); negative
	// disables it. Requests aimed at us and gratuitous ARP are not held
	// back, as in Linux.
	LockTime time.Duration
	Now      func() time.Time
}

// Pending is a packet waiting for its next hop's address. The cache only
// measures queued packets and releases those it drops; the NIC that queued
// them gets them back through Hooks and asserts their concrete type.
type Pending interface {
	// Len returns the packet's length in bytes, counted against
	// MaxPendingBytes.
	Len() int
	// Release gives the packet back to its owner; the cache calls it once
	// for each packet it drops and never touches the packet again.
	Release()
}

// Hooks connect the cache to a NIC. SendRequest and Failed are called
// without the cache's lock held; Resolved is called with it held, to keep
// packet order, so it must not call back into the cache or block. Resolved
// and Failed take ownership of the packets.
type Hooks struct {
	// SendRequest transmits a request for target, broadcast when dst is the
	// zero MAC, else unicast to dst (a probe of a stale entry).
	SendRequest func(target netip.Addr, dst ethernet.MAC)
	// Resolved sends packets that waited for target's address.
	Resolved func(target netip.Addr, mac ethernet.MAC, pkts []Pending)
	// Failed receives the packets of a resolution that got no answer.
	Failed func(target netip.Addr, pkts []Pending)
}

// Stats are a neighbour cache's counters. Several caches may add to one
// Stats: a stack's NICs share theirs, as Linux counts its ARP table as a
// whole, so the stack's counters are the caches' summed over NICs.
type Stats struct {
	Requests        atomic.Uint64 // requests sent
	Resolved        atomic.Uint64 // resolutions completed
	Failed          atomic.Uint64 // resolutions that got no answer
	PendingDropped  atomic.Uint64 // queued packets dropped: queue full, resolution failed or entry evicted
	Evicted         atomic.Uint64 // entries evicted to stay within MaxEntries or MaxIncomplete
	Collected       atomic.Uint64 // idle entries collected from MinEntries on
	CacheFullDrops  atomic.Uint64 // packets dropped because no entry could be made
	Updates         atomic.Uint64 // entries learned or refreshed from the wire
	UnsolicitedSeen atomic.Uint64 // replies for neighbours we did not ask about (ignored)
	LockTimeIgnored atomic.Uint64 // packets claiming a new MAC within LockTime of the last change (ignored)
}

type entry struct {
	ip           netip.Addr
	prev, next   *entry // in its list: Cache.resolved or Cache.incomplete
	state        State
	mac          ethernet.MAC
	updated      time.Time // last confirmation
	changed      time.Time // creation or last change of state or MAC (Linux's neigh->updated)
	used         time.Time // last lookup
	probed       time.Time // last probe of a stale entry
	tries        int
	pending      []Pending
	pendingBytes int
	timer        *time.Timer
}

// Cache is a neighbour cache for one NIC. It is safe for concurrent use.
//
// It holds at most MaxEntries entries, of which at most MaxIncomplete are
// being resolved, so that a flood of destinations that never answer
// cannot push out the neighbours that do. Like Linux's neighbour table it
// collects garbage when an entry is made, never from a timer, removing a
// few entries at most so that the cost does not grow with the table. The
// first two thresholds count resolved entries:
//   - below MinEntries, nothing is collected;
//   - from MinEntries, the least recently used entry goes once unused for
//     StaleTime; from SoftEntries, once stale and unused for GCMinAge
//     (Linux also collects reachable entries there; keeping them is
//     cheap, and under a flood they would be hard to resolve again);
//   - at MaxEntries the table is full and one entry is evicted, in this
//     order of preference: the least recently used one if it is stale,
//     the oldest incomplete one if older than GCMinAge, the least recently
//     used one. Linux refuses a new entry when every one changed within
//     5s; a userspace stack talking to many peers is better served by the
//     LRU order.
//
// Incomplete entries younger than GCMinAge are never evicted: a burst of
// new destinations would otherwise evict each resolution before its answer
// could arrive. When MaxIncomplete of them are in flight, a new resolution
// is refused and its packet counted in CacheFullDrops, as Linux reports
// "neighbor table overflow". An evicted incomplete entry's queued packets
// are released and counted in PendingDropped (Linux purges them too), so
// at most MaxIncomplete × MaxPendingBytes bytes ever wait for resolution.
type Cache struct {
	cfg   Config
	hooks Hooks
	// mu guards the fields below (stats are atomic). Hooks.Resolved runs
	// under it and takes the link's locks, so it comes before those.
	mu         sync.Mutex
	m          map[netip.Addr]*entry
	resolved   lru // reachable and stale entries, most recently used first
	incomplete lru // entries being resolved, newest first
	closed     bool
	stats      *Stats // may be shared with other caches
}

// New returns an empty cache that counts in stats, or in counters of its
// own when stats is nil.
func New(cfg Config, hooks Hooks, stats *Stats) *Cache {
	if stats == nil {
		stats = new(Stats)
	}
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
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 256
	}
	if cfg.MaxPendingBytes <= 0 {
		cfg.MaxPendingBytes = 212992
	}
	if cfg.Retries <= 0 {
		cfg.Retries = 3
	}
	if cfg.RetransInterval <= 0 {
		cfg.RetransInterval = time.Second
	}
	if cfg.ReachableTime <= 0 {
		cfg.ReachableTime = 30 * time.Second
	}
	if cfg.StaleTime <= 0 {
		cfg.StaleTime = 60 * time.Second
	}
	if cfg.LockTime == 0 {
		cfg.LockTime = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Cache{cfg: cfg, hooks: hooks, m: make(map[netip.Addr]*entry), stats: stats}
}

// clamp returns v, or def when v is not positive, capped at hi.
func clamp(v, def, hi int) int {
	if v <= 0 {
		v = def
	}
	return min(v, hi)
}

// Stats returns the live counters the cache adds to (shared with the other
// caches given the same Stats in New).
func (c *Cache) Stats() *Stats { return c.stats }

// Resolve returns ip's MAC if it is known; pkt stays the caller's. Otherwise
// it takes ownership of pkt (when not nil), queues it until the neighbour
// answers and starts or continues resolution; the packet is later passed to
// Hooks.Resolved or Hooks.Failed, or released and counted when the queue is
// full or the entry evicted. A nil pkt only looks up or starts resolution;
// pass an untyped nil, not a nil pointer of a type implementing Pending.
func (c *Cache) Resolve(ip netip.Addr, pkt Pending) (ethernet.MAC, bool) {
	c.mu.Lock()
	now := c.cfg.Now()
	e := c.m[ip]
	if e != nil && e.state != Incomplete {
		e.used = now
		c.resolved.moveToFront(e)
		mac := e.mac
		probe := false
		if e.state == Reachable && now.Sub(e.updated) > c.cfg.ReachableTime {
			e.state = Stale
		}
		if e.state == Stale && now.Sub(e.probed) >= c.cfg.RetransInterval {
			e.probed = now
			probe = true
		}
		c.mu.Unlock()
		if probe {
			c.stats.Requests.Add(1)
			c.hooks.SendRequest(ip, mac)
		}
		return mac, true
	}
	if c.closed {
		c.mu.Unlock()
		c.drop(pkt)
		return ethernet.MAC{}, false
	}
	start := false
	if e == nil {
		if !c.makeRoomLocked(now, true) {
			c.mu.Unlock()
			if pkt != nil {
				c.stats.CacheFullDrops.Add(1)
				pkt.Release()
			}
			return ethernet.MAC{}, false
		}
		e = c.addLocked(ip, Incomplete, now)
		start = true
	}
	if pkt != nil {
		// Like Linux, the oldest queued packets make way for the newest.
		for len(e.pending) > 0 && (len(e.pending) >= c.cfg.MaxPending || e.pendingBytes+pkt.Len() > c.cfg.MaxPendingBytes) {
			e.pendingBytes -= e.pending[0].Len()
			c.drop(e.pending[0])
			e.pending[0] = nil
			e.pending = e.pending[1:]
		}
		e.pending = append(e.pending, pkt)
		e.pendingBytes += pkt.Len()
	}
	if start {
		e.tries = 1
		e.timer = time.AfterFunc(c.cfg.RetransInterval, func() { c.retransmit(ip, e) })
	}
	c.mu.Unlock()
	if start {
		c.stats.Requests.Add(1)
		c.hooks.SendRequest(ip, ethernet.MAC{})
	}
	return ethernet.MAC{}, false
}

func (c *Cache) drop(pkt Pending) {
	if pkt != nil {
		c.stats.PendingDropped.Add(1)
		pkt.Release()
	}
}

// addLocked makes an entry in state st and links it first in its list.
func (c *Cache) addLocked(ip netip.Addr, st State, now time.Time) *entry {
	e := &entry{ip: ip, state: st, used: now, changed: now}
	c.m[ip] = e
	c.listOf(st).pushFront(e)
	return e
}

func (c *Cache) listOf(st State) *lru {
	if st == Incomplete {
		return &c.incomplete
	}
	return &c.resolved
}

// unlinkLocked takes e out of the map and its list.
func (c *Cache) unlinkLocked(e *entry) {
	delete(c.m, e.ip)
	c.listOf(e.state).remove(e)
}

// evictLocked removes e to make room, releasing what it queued.
func (c *Cache) evictLocked(e *entry) {
	c.unlinkLocked(e)
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	for _, p := range e.pending {
		c.drop(p)
	}
	e.pending, e.pendingBytes = nil, 0
	c.stats.Evicted.Add(1)
}

// makeRoomLocked makes room for one more entry, incomplete or not, as
// described on Cache, and reports whether there is room.
func (c *Cache) makeRoomLocked(now time.Time, incomplete bool) bool {
	c.collectIdleLocked(now)
	if incomplete && c.incomplete.n >= c.cfg.MaxIncomplete {
		return c.evictOldIncompleteLocked(now)
	}
	if len(c.m) < c.cfg.MaxEntries {
		return true
	}
	if e := c.resolved.tail; e != nil && now.Sub(e.updated) > c.cfg.ReachableTime {
		c.evictLocked(e)
		return true
	}
	if c.evictOldIncompleteLocked(now) {
		return true
	}
	if e := c.resolved.tail; e != nil {
		c.evictLocked(e)
		return true
	}
	return false
}

// collectBatch bounds the idle entries collected per new entry: enough for
// the table to shrink while it churns, few enough to keep the cost flat.
const collectBatch = 4

// collectIdleLocked removes the least recently used entries while they
// are idle for the table's size (Linux's periodic and threshold-2 GC).
func (c *Cache) collectIdleLocked(now time.Time) {
	for i := 0; i < collectBatch; i++ {
		e := c.resolved.tail
		if e == nil || !c.idleLocked(e, now) {
			return
		}
		c.unlinkLocked(e)
		c.stats.Collected.Add(1)
	}
}

// idleLocked reports whether e may be collected. The thresholds count
// resolved entries only: incomplete ones are bounded by MaxIncomplete and
// their own retries, and a flood of them must not shed the neighbours.
func (c *Cache) idleLocked(e *entry, now time.Time) bool {
	switch n := c.resolved.n; {
	case n >= c.cfg.SoftEntries && now.Sub(e.updated) > c.cfg.ReachableTime:
		return now.Sub(e.used) > c.cfg.GCMinAge
	case n >= c.cfg.MinEntries:
		return now.Sub(e.used) > c.cfg.StaleTime
	}
	return false
}

// evictOldIncompleteLocked evicts the oldest incomplete entry if it has
// had GCMinAge to resolve.
func (c *Cache) evictOldIncompleteLocked(now time.Time) bool {
	e := c.incomplete.tail
	if e == nil || now.Sub(e.changed) <= c.cfg.GCMinAge {
		return false
	}
	c.evictLocked(e)
	return true
}

func (c *Cache) retransmit(ip netip.Addr, e *entry) {
	c.mu.Lock()
	if c.m[ip] != e || e.state != Incomplete || c.closed {
		c.mu.Unlock()
		return
	}
	if e.tries >= c.cfg.Retries {
		c.unlinkLocked(e)
		pkts := e.pending
		e.pending, e.pendingBytes = nil, 0
		c.mu.Unlock()
		c.stats.Failed.Add(1)
		c.stats.PendingDropped.Add(uint64(len(pkts)))
		if c.hooks.Failed != nil {
			c.hooks.Failed(ip, pkts)
		} else {
			for _, p := range pkts {
				p.Release()
			}
		}
		return
	}
	e.tries++
	e.timer.Reset(c.cfg.RetransInterval)
	c.mu.Unlock()
	c.stats.Requests.Add(1)
	c.hooks.SendRequest(ip, ethernet.MAC{})
}

// Learn records that ip is at mac, from an ARP packet addressed to us or
// answering our request. create says whether a new entry may be made (true
// for requests aimed at us and replies to requests); otherwise only an
// existing entry is updated, so that unsolicited traffic cannot fill the
// cache (Linux's arp_accept=0).
//
// A resolved entry keeps its MAC against a packet claiming another within
// LockTime of its last change, as Linux keeps the first of several
// competing replies; a request aimed at us (create) replaces it at once,
// as Linux's neigh_event_ns does, since we answer that sender anyway.
func (c *Cache) Learn(ip netip.Addr, mac ethernet.MAC, create bool) {
	c.learn(ip, mac, create, create)
}

// Announce records a gratuitous ARP (sender and target address both ip):
// like Learn without create it only updates an existing entry, but it
// replaces the MAC even within LockTime, as Linux does for a host that
// announces it has moved.
func (c *Cache) Announce(ip netip.Addr, mac ethernet.MAC) {
	c.learn(ip, mac, false, true)
}

func (c *Cache) learn(ip netip.Addr, mac ethernet.MAC, create, override bool) {
	c.mu.Lock()
	now := c.cfg.Now()
	e := c.m[ip]
	if e == nil {
		if !create || c.closed || !c.makeRoomLocked(now, false) {
			c.mu.Unlock()
			c.stats.UnsolicitedSeen.Add(1)
			return
		}
		e = c.addLocked(ip, Reachable, now)
	}
	if !override && c.lockedLocked(e, mac, now) {
		c.mu.Unlock()
		c.stats.LockTimeIgnored.Add(1)
		return
	}
	wasIncomplete := e.state == Incomplete
	if e.state != Reachable || e.mac != mac || now.Sub(e.updated) > c.cfg.ReachableTime {
		e.changed = now
	}
	if wasIncomplete {
		// Its queued packets are about to use it.
		c.incomplete.remove(e)
		c.resolved.pushFront(e)
		e.used = now
	}
	e.state, e.mac, e.updated = Reachable, mac, now
	if wasIncomplete {
		if e.timer != nil {
			e.timer.Stop()
			e.timer = nil
		}
		pkts := e.pending
		e.pending, e.pendingBytes = nil, 0
		// Flushing under the lock keeps the queued packets ahead of any a
		// writer sends once it sees the entry resolved.
		if len(pkts) > 0 {
			c.hooks.Resolved(ip, mac, pkts)
		}
		c.stats.Resolved.Add(1)
	}
	c.mu.Unlock()
	c.stats.Updates.Add(1)
}

// lockedLocked reports whether e must keep its MAC against mac: it is
// resolved, and changed no longer ago than LockTime (Linux overrides only
// once jiffies are strictly after updated + locktime). Going stale is a
// change, as in Linux, though this cache notes it only when asked.
func (c *Cache) lockedLocked(e *entry, mac ethernet.MAC, now time.Time) bool {
	if e.state == Incomplete || e.mac == mac || c.cfg.LockTime < 0 {
		return false
	}
	last := e.changed
	if stale := e.updated.Add(c.cfg.ReachableTime); now.After(stale) && stale.After(last) {
		last = stale
	}
	return !now.After(last.Add(c.cfg.LockTime))
}

// Lookup returns ip's entry without side effects.
func (c *Cache) Lookup(ip netip.Addr) (ethernet.MAC, State, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[ip]
	if e == nil {
		return ethernet.MAC{}, 0, false
	}
	st := e.state
	if st == Reachable && c.cfg.Now().Sub(e.updated) > c.cfg.ReachableTime {
		st = Stale
	}
	return e.mac, st, true
}

// Len returns the number of entries.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// Close stops every timer and releases queued packets.
func (c *Cache) Close() {
	c.mu.Lock()
	c.closed = true
	var pkts []Pending
	for _, e := range c.m {
		if e.timer != nil {
			e.timer.Stop()
		}
		pkts = append(pkts, e.pending...)
	}
	clear(c.m)
	c.resolved, c.incomplete = lru{}, lru{}
	c.mu.Unlock()
	for _, p := range pkts {
		p.Release()
	}
}

// lru is an intrusive doubly linked list of entries: linking and
// unlinking write a few pointers and allocate nothing.
type lru struct {
	head, tail *entry
	n          int
}

func (l *lru) pushFront(e *entry) {
	e.prev, e.next = nil, l.head
	if l.head != nil {
		l.head.prev = e
	} else {
		l.tail = e
	}
	l.head = e
	l.n++
}

func (l *lru) remove(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = nil, nil
	l.n--
}

func (l *lru) moveToFront(e *entry) {
	if l.head != e {
		l.remove(e)
		l.pushFront(e)
	}
}
