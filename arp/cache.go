package arp

import (
	"net/netip"
	"time"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/neigh"
)

// State is a neighbour entry's state; see package neigh.
type State = neigh.State

// The states an ARP entry goes through (package neigh describes them).
const (
	Incomplete = neigh.Incomplete
	Reachable  = neigh.Reachable
	Stale      = neigh.Stale
	Delay      = neigh.Delay
	Probe      = neigh.Probe
)

// Pending is a packet waiting for its next hop's address; see neigh.Pending.
type Pending = neigh.Pending

// Stats are a neighbour cache's counters. Several caches may add to one
// Stats: a stack's NICs share theirs, as Linux counts its ARP table as a
// whole, so the stack's counters are the caches' summed over NICs.
type Stats = neigh.Stats

// Config holds the cache's limits and timers; zero fields take defaults
// close to Linux's. Each maps onto the neigh.Config field named beside it,
// which names the Linux knob; see Cache for how entries are collected.
type Config struct {
	MaxEntries      int           // hard limit (MaxEntries, gc_thresh3); default 1024
	SoftEntries     int           // from here on, stale entries unused for GCMinAge are collected (SoftEntries, gc_thresh2); default MaxEntries/2
	MinEntries      int           // below this nothing is collected (MinEntries, gc_thresh1); default MaxEntries/8
	MaxIncomplete   int           // entries being resolved at once; default MaxEntries/2
	GCMinAge        time.Duration // see SoftEntries; also the age before an incomplete entry may be evicted; default 5s, negative for none
	MaxPending      int           // packets queued per unresolved neighbour (unres_qlen); default 256
	MaxPendingBytes int           // bytes queued per unresolved neighbour (unres_qlen_bytes); default 212992
	Retries         int           // broadcast requests before a resolution fails (MaxMulticastProbes, mcast_solicit); default 3
	RetransInterval time.Duration // between requests (RetransTime, retrans_time); default 1s
	// ReachableTime is how long a confirmation lasts. Zero draws it at
	// random between 15s and 45s every 300s as Linux does
	// (base_reachable_time 30s); a positive value is used as is.
	ReachableTime       time.Duration
	DelayFirstProbeTime time.Duration // from the first use of a stale entry to its first probe (delay_first_probe_time); default 5s
	UnicastProbes       int           // unicast requests before a probed neighbour fails (MaxUnicastProbes, ucast_solicit); default 3
	StaleTime           time.Duration // from MinEntries on, entries unused this long are collected (gc_staletime); default 60s
	// LockTime is how long after an entry last changed a packet claiming
	// a different MAC for it is ignored, so that the first of several
	// competing replies wins (Linux's locktime, default 1s); negative
	// disables it. Requests aimed at us and gratuitous ARP are not held
	// back, as in Linux.
	LockTime time.Duration
	Now      func() time.Time
	// AfterFunc starts the cache's timers; default time.AfterFunc. Tests
	// with a fake Now give fake timers here.
	AfterFunc func(d time.Duration, f func()) neigh.Timer
}

// neighConfig maps c onto the neighbour table's configuration.
func (c Config) neighConfig() neigh.Config {
	lock := c.LockTime
	switch {
	case lock == 0:
		lock = time.Second
	case lock < 0:
		lock = 0
	}
	return neigh.Config{
		MaxEntries:          c.MaxEntries,
		SoftEntries:         c.SoftEntries,
		MinEntries:          c.MinEntries,
		MaxIncomplete:       c.MaxIncomplete,
		GCMinAge:            c.GCMinAge,
		StaleTime:           c.StaleTime,
		MaxPending:          c.MaxPending,
		MaxPendingBytes:     c.MaxPendingBytes,
		MaxMulticastProbes:  c.Retries,
		MaxUnicastProbes:    c.UnicastProbes,
		RetransTime:         c.RetransInterval,
		DelayFirstProbeTime: c.DelayFirstProbeTime,
		ReachableTime:       c.ReachableTime,
		LockTime:            lock,
		Now:                 c.Now,
		AfterFunc:           c.AfterFunc,
	}
}

// Hooks connect the cache to a NIC. SendRequest and Failed are called
// without the cache's lock held; Resolved is called with it held, to keep
// packet order, so it must not call back into the cache or block. Resolved
// and Failed take ownership of the packets.
type Hooks struct {
	// SendRequest transmits a request for target, broadcast when dst is the
	// zero MAC, else unicast to dst (a probe of a known neighbour).
	SendRequest func(target netip.Addr, dst ethernet.MAC)
	// Resolved sends packets that waited for target's address.
	Resolved func(target netip.Addr, mac ethernet.MAC, pkts []Pending)
	// Failed learns that target did not answer: its entry is gone, and
	// pkts (none when a known neighbour stopped answering its probes)
	// waited for it.
	Failed func(target netip.Addr, pkts []Pending)
}

// Cache is ARP's neighbour cache for one NIC: a neigh.Table fed with what
// ARP packets say. It is safe for concurrent use.
//
// It holds at most MaxEntries entries, of which at most MaxIncomplete are
// being resolved, so that a flood of destinations that never answer
// cannot push out the neighbours that do; neigh.Table details the
// collection thresholds and the eviction order.
//
// ARP carries no flags, so the cache maps packets onto neighbour
// discovery's rules as Linux's arp_process does (see Learn): a reply
// unicast to us confirms its sender (the entry becomes reachable); other
// packets only say where their sender is, so they leave or make the entry
// stale; a request aimed at us makes an entry. A new MAC replaces a
// cached one once LockTime has passed, or at once from a request aimed at
// us or a gratuitous ARP.
type Cache struct {
	tab *neigh.Table
}

// New returns an empty cache that counts in stats, or in counters of its
// own when stats is nil.
func New(cfg Config, hooks Hooks, stats *Stats) *Cache {
	return &Cache{tab: neigh.New(cfg.neighConfig(), neigh.Hooks{
		Solicit:  hooks.SendRequest,
		Resolved: hooks.Resolved,
		Failed:   hooks.Failed,
	}, stats)}
}

// Stats returns the live counters the cache adds to (shared with the other
// caches given the same Stats in New).
func (c *Cache) Stats() *Stats { return c.tab.Stats() }

// Resolve returns ip's MAC if it is known; pkt stays the caller's. Otherwise
// it takes ownership of pkt (when not nil), queues it until the neighbour
// answers and starts or continues resolution; the packet is later passed to
// Hooks.Resolved or Hooks.Failed, or released and counted when the queue is
// full or the entry evicted. A nil pkt only looks up or starts resolution;
// pass an untyped nil, not a nil pointer of a type implementing Pending.
// Sending to a stale neighbour starts the Delay that leads to its probes.
func (c *Cache) Resolve(ip netip.Addr, pkt Pending) (ethernet.MAC, bool) {
	return c.tab.Resolve(ip, pkt)
}

// Heard says how an ARP packet reached us, which decides what it proves
// about its sender (Linux's arp_process).
type Heard struct {
	// Op is the packet's operation, OpRequest or OpReply.
	Op uint16
	// ForUs: a request whose target address is ours, which we answer.
	ForUs bool
	// Unicast: the frame was sent to our MAC, not broadcast or multicast
	// (Linux's PACKET_HOST). Only a reply so sent answers us.
	Unicast bool
	// Gratuitous: the sender announces its own address (sender and target
	// address equal, and for a reply sender and target MAC too; Linux's
	// arp_is_garp).
	Gratuitous bool
}

// Learn records that ip is at mac, from an ARP packet heard as h says.
// Only a request aimed at us makes a new entry: anything else only updates
// an existing one, so that unsolicited traffic cannot fill the cache
// (Linux's arp_accept=0).
//
// A request aimed at us is what Linux's neigh_event_ns makes of it: no
// proof that the sender hears us, so a new entry, or one whose MAC it
// changes, is stale, and one it confirms keeps its state; the first packet
// sent to a stale entry starts the Delay that leads to unicast probes. It
// replaces a cached MAC at once, since we answer that sender anyway.
//
// Only a reply unicast to us confirms its sender, which becomes reachable.
// Other packets (requests for other hosts, broadcast replies) do not
// assert reachability: a MAC they change, or an entry they resolve, is
// stale, and an entry whose MAC they repeat keeps its state. Except for a
// gratuitous ARP, which moves a host at once, none of these replaces a
// resolved entry's MAC within LockTime of its last change, as Linux keeps
// the first of several competing replies.
func (c *Cache) Learn(ip netip.Addr, mac ethernet.MAC, h Heard) {
	c.tab.Update(ip, h.update(mac))
}

// update maps a packet heard as h onto the neighbour table's rules.
func (h Heard) update(mac ethernet.MAC) neigh.Update {
	if h.Op == OpRequest && h.ForUs {
		return neigh.Update{MAC: mac, Override: true, IgnoreLockTime: true, Create: true}
	}
	return neigh.Update{
		MAC:            mac,
		Solicited:      h.Op == OpReply && h.Unicast,
		Override:       true,
		IgnoreLockTime: h.Gratuitous,
	}
}

// Confirm tells the cache that ip is reachable, from an upper layer that
// heard from it; see neigh.Table.Confirm.
func (c *Cache) Confirm(ip netip.Addr) { c.tab.Confirm(ip) }

// Lookup returns ip's entry without side effects.
func (c *Cache) Lookup(ip netip.Addr) (ethernet.MAC, State, bool) {
	e, ok := c.tab.Lookup(ip)
	return e.MAC, e.State, ok
}

// Entries appends every entry to dst and returns it, like `ip neigh`.
func (c *Cache) Entries(dst []neigh.Entry) []neigh.Entry { return c.tab.Entries(dst) }

// Len returns the number of entries.
func (c *Cache) Len() int { return c.tab.Len() }

// Close stops every timer and releases queued packets.
func (c *Cache) Close() { c.tab.Close() }
