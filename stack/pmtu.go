package stack

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapnet/tapnet/ipv6"
)

// pmtuCache holds path MTUs learned from ICMP "fragmentation needed" and
// ICMPv6 Packet Too Big, per destination, for 10 minutes (Linux's
// mtu_expires), bounded in size. One map serves both families: their
// addresses never collide.
type pmtuCache struct {
	n   atomic.Int32 // entries: senders skip the lock while there are none
	mu  sync.Mutex
	m   map[netip.Addr]pmtuEntry
	now func() time.Time // nil: time.Now; tests set a fake clock
}

type pmtuEntry struct {
	mtu     int
	expires time.Time
}

const (
	pmtuExpiry     = 10 * time.Minute
	pmtuMaxEntries = 4096
	// minPMTU4 is Linux's min_pmtu: a smaller next-hop MTU in a
	// "fragmentation needed" counts as this much.
	minPMTU4 = 552
)

func (c *pmtuCache) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// minPathMTU is the least path MTU recorded for dst: IPv6's minimum link
// MTU, or Linux's min_pmtu for IPv4.
func minPathMTU(dst netip.Addr) int {
	if dst.Is4() {
		return minPMTU4
	}
	return ipv6.MinMTU
}

// learn records mtu (at least minPathMTU) for dst for the next 10 minutes.
func (c *pmtuCache) learn(dst netip.Addr, mtu int) {
	mtu = max(mtu, minPathMTU(dst))
	expires := c.clock().Add(pmtuExpiry)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[netip.Addr]pmtuEntry)
	}
	if _, ok := c.m[dst]; !ok && len(c.m) >= pmtuMaxEntries {
		for k := range c.m { // evict one at random: bounded, O(1)
			delete(c.m, k)
			break
		}
	}
	c.m[dst] = pmtuEntry{mtu, expires}
	c.n.Store(int32(len(c.m)))
}

// get returns dst's path MTU if one was learned and has not expired.
func (c *pmtuCache) get(dst netip.Addr) (int, bool) {
	if c.n.Load() == 0 {
		return 0, false
	}
	now := c.clock()
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[dst]
	if !ok {
		return 0, false
	}
	if now.After(e.expires) {
		delete(c.m, dst)
		c.n.Store(int32(len(c.m)))
		return 0, false
	}
	return e.mtu, true
}

// PathMTU returns the path MTU to dst learned from ICMP "fragmentation
// needed" (IPv4) or Packet Too Big (IPv6) messages in the last 10 minutes,
// or false when none is known (the link MTU applies).
func (s *Stack) PathMTU(dst netip.Addr) (int, bool) { return s.pmtu.get(dst.Unmap()) }

// mtu4 returns the MTU IPv4 packets along r fit in: the NIC's, or a smaller
// path MTU learned for the destination.
func (r *Route) mtu4() int {
	mtu := r.NIC.MTU()
	if p, ok := r.NIC.s.pmtu.get(r.RemoteAddr); ok {
		mtu = min(mtu, p)
	}
	return mtu
}

// learnFragNeeded records the next-hop MTU of an ICMP "fragmentation
// needed" about a datagram we sent from src to dst, as Linux's
// __ip_rt_update_pmtu does: never raising the MTU a packet to dst would now
// get, and counting anything below 552 as 552.
func (s *Stack) learnFragNeeded(src, dst netip.Addr, mtu int) {
	r, err := s.FindRoute(0, src, dst)
	if err != nil || r.Loopback || mtu > r.mtu4() {
		return
	}
	s.stats.ICMP.FragNeeded.Add(1)
	s.pmtu.learn(dst, mtu)
}
