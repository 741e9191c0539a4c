package arp

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/tap"
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
// close to Linux's.
type Config struct {
	MaxEntries      int           // default 1024 (gc_thresh3)
	MaxPending      int           // packets queued per unresolved neighbour; default 256
	MaxPendingBytes int           // bytes queued per unresolved neighbour; default 212992 (Linux's unres_qlen_bytes)
	Retries         int           // requests before giving up; default 3
	RetransInterval time.Duration // between requests; default 1s
	ReachableTime   time.Duration // reachable → stale; default 30s
	StaleTime       time.Duration // unused stale entries are collected after; default 60s
	// LockTime is how long after an entry last changed a packet claiming
	// a different MAC for it is ignored, so that the first of several
	// competing replies wins (Linux's locktime, default 1s); negative
	// disables it. Requests aimed at us and gratuitous ARP are not held
	// back, as in Linux.
	LockTime time.Duration
	Now      func() time.Time
}

// Hooks connect the cache to a NIC. SendRequest and Failed are called
// without the cache's lock held; Resolved is called with it held, to keep
// packet order, so it must not call back into the cache or block. Resolved
// and Failed take ownership of the packets.
type Hooks struct {
	// SendRequest transmits a request for target, broadcast when dst is the
	// zero MAC, else unicast to dst (a probe of a stale entry).
	SendRequest func(target netip.Addr, dst tap.MAC)
	// Resolved sends packets that waited for target's address.
	Resolved func(target netip.Addr, mac tap.MAC, pkts []*buffer.Buffer)
	// Failed receives the packets of a resolution that got no answer.
	Failed func(target netip.Addr, pkts []*buffer.Buffer)
}

// Stats are the cache's counters.
type Stats struct {
	Requests        atomic.Uint64 // requests sent
	Resolved        atomic.Uint64 // resolutions completed
	Failed          atomic.Uint64 // resolutions that got no answer
	PendingDropped  atomic.Uint64 // packets dropped because a queue was full or resolution failed
	Evicted         atomic.Uint64 // entries evicted to stay within MaxEntries
	CacheFullDrops  atomic.Uint64 // packets dropped because no entry could be made
	Updates         atomic.Uint64 // entries learned or refreshed from the wire
	UnsolicitedSeen atomic.Uint64 // replies for neighbours we did not ask about (ignored)
	LockTimeIgnored atomic.Uint64 // packets claiming a new MAC within LockTime of the last change (ignored)
}

type entry struct {
	state        State
	mac          tap.MAC
	updated      time.Time // last confirmation
	changed      time.Time // last change of state or MAC (Linux's neigh->updated), for LockTime
	used         time.Time // last lookup
	probed       time.Time // last probe of a stale entry
	tries        int
	pending      []*buffer.Buffer
	pendingBytes int
	timer        *time.Timer
}

// Cache is a neighbour cache for one NIC. It is safe for concurrent use.
type Cache struct {
	cfg    Config
	hooks  Hooks
	mu     sync.Mutex
	m      map[netip.Addr]*entry
	closed bool
	stats  Stats
}

// New returns an empty cache.
func New(cfg Config, hooks Hooks) *Cache {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 1024
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
	return &Cache{cfg: cfg, hooks: hooks, m: make(map[netip.Addr]*entry)}
}

// Stats returns the cache's live counters.
func (c *Cache) Stats() *Stats { return &c.stats }

// Resolve returns ip's MAC if it is known. Otherwise it takes ownership of
// pkt (when not nil), queues it until the neighbour answers and starts or
// continues resolution; the packet is later passed to Hooks.Resolved or
// Hooks.Failed, or dropped and counted when the queue is full.
func (c *Cache) Resolve(ip netip.Addr, pkt *buffer.Buffer) (tap.MAC, bool) {
	c.mu.Lock()
	now := c.cfg.Now()
	e := c.m[ip]
	if e != nil && e.state != Incomplete {
		e.used = now
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
		return tap.MAC{}, false
	}
	start := false
	if e == nil {
		if !c.makeRoomLocked(now) {
			c.mu.Unlock()
			if pkt != nil {
				c.stats.CacheFullDrops.Add(1)
				pkt.Release()
			}
			return tap.MAC{}, false
		}
		e = &entry{state: Incomplete, used: now}
		c.m[ip] = e
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
		c.hooks.SendRequest(ip, tap.MAC{})
	}
	return tap.MAC{}, false
}

func (c *Cache) drop(pkt *buffer.Buffer) {
	if pkt != nil {
		c.stats.PendingDropped.Add(1)
		pkt.Release()
	}
}

// makeRoomLocked evicts an entry when the cache is full: the least recently
// used resolved one, since incomplete entries hold packets in flight. It
// reports false when every entry is incomplete.
func (c *Cache) makeRoomLocked(now time.Time) bool {
	if len(c.m) < c.cfg.MaxEntries {
		return true
	}
	var victim netip.Addr
	var oldest time.Time
	found := false
	for ip, e := range c.m {
		if e.state == Incomplete {
			continue
		}
		if e.state != Reachable || now.Sub(e.used) > c.cfg.StaleTime {
			victim, found = ip, true
			break
		}
		if !found || e.used.Before(oldest) {
			victim, oldest, found = ip, e.used, true
		}
	}
	if !found {
		return false
	}
	delete(c.m, victim)
	c.stats.Evicted.Add(1)
	return true
}

func (c *Cache) retransmit(ip netip.Addr, e *entry) {
	c.mu.Lock()
	if c.m[ip] != e || e.state != Incomplete || c.closed {
		c.mu.Unlock()
		return
	}
	if e.tries >= c.cfg.Retries {
		delete(c.m, ip)
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
	c.hooks.SendRequest(ip, tap.MAC{})
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
func (c *Cache) Learn(ip netip.Addr, mac tap.MAC, create bool) {
	c.learn(ip, mac, create, create)
}

// Announce records a gratuitous ARP (sender and target address both ip):
// like Learn without create it only updates an existing entry, but it
// replaces the MAC even within LockTime, as Linux does for a host that
// announces it has moved.
func (c *Cache) Announce(ip netip.Addr, mac tap.MAC) {
	c.learn(ip, mac, false, true)
}

func (c *Cache) learn(ip netip.Addr, mac tap.MAC, create, override bool) {
	c.mu.Lock()
	now := c.cfg.Now()
	e := c.m[ip]
	if e == nil {
		if !create || c.closed || !c.makeRoomLocked(now) {
			c.mu.Unlock()
			c.stats.UnsolicitedSeen.Add(1)
			return
		}
		e = &entry{used: now}
		c.m[ip] = e
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
func (c *Cache) lockedLocked(e *entry, mac tap.MAC, now time.Time) bool {
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
func (c *Cache) Lookup(ip netip.Addr) (tap.MAC, State, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[ip]
	if e == nil {
		return tap.MAC{}, 0, false
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
	var pkts []*buffer.Buffer
	for ip, e := range c.m {
		if e.timer != nil {
			e.timer.Stop()
		}
		pkts = append(pkts, e.pending...)
		delete(c.m, ip)
	}
	c.mu.Unlock()
	for _, p := range pkts {
		p.Release()
	}
}
