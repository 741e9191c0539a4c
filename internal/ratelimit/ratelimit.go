// Package ratelimit holds the token buckets that keep a stack from
// becoming an amplifier: Linux's limits on ICMP errors, a global rate plus
// one per destination.
package ratelimit

import (
	"net/netip"
	"sync"
	"time"
)

// Limiter limits messages (ICMP errors) the way Linux does: a global token
// bucket (icmp_msgs_per_sec, icmp_msgs_burst) and a per-destination bucket
// (icmp_ratelimit with a burst of six), so that a flood to closed ports
// cannot turn the stack into an amplifier. It is safe for concurrent use.
type Limiter struct {
	// mu guards the buckets and the peers map; it is a leaf lock, taken
	// with nothing else held inside it.
	mu       sync.Mutex
	now      func() time.Time
	global   bucket
	perSec   float64
	burst    float64
	peers    map[netip.Addr]*bucket
	interval time.Duration
	maxPeers int
}

type bucket struct {
	tokens float64
	last   time.Time
}

// Config sets a limiter's parameters; zero fields take Linux's defaults.
type Config struct {
	PerSecond    int           // global rate; default 1000
	Burst        int           // global burst; default 50
	PeerInterval time.Duration // one error per destination per interval; default 1s
	MaxPeers     int           // destinations tracked; default 4096
	Now          func() time.Time
}

// New returns a limiter with cfg's parameters.
func New(cfg Config) *Limiter {
	if cfg.PerSecond <= 0 {
		cfg.PerSecond = 1000
	}
	if cfg.Burst <= 0 {
		cfg.Burst = 50
	}
	if cfg.PeerInterval <= 0 {
		cfg.PeerInterval = time.Second
	}
	if cfg.MaxPeers <= 0 {
		cfg.MaxPeers = 4096
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Limiter{
		now: cfg.Now, perSec: float64(cfg.PerSecond), burst: float64(cfg.Burst),
		interval: cfg.PeerInterval, maxPeers: cfg.MaxPeers,
		peers: make(map[netip.Addr]*bucket),
	}
	r.global.tokens = r.burst
	r.global.last = r.now()
	return r
}

// peerBurst is how many errors one destination may receive at once (Linux's
// XRLIM_BURST_FACTOR).
const peerBurst = 6

// Allow reports whether a message to dst may be sent now, and takes a
// token if so.
func (r *Limiter) Allow(dst netip.Addr) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	p := r.peers[dst]
	if p == nil {
		if len(r.peers) >= r.maxPeers {
			// Forgetting every peer is crude but bounded; the global
			// bucket still holds the overall rate.
			clear(r.peers)
		}
		p = &bucket{tokens: peerBurst, last: now}
		r.peers[dst] = p
	}
	p.tokens = min(peerBurst, p.tokens+float64(now.Sub(p.last))/float64(r.interval))
	p.last = now
	r.global.tokens = min(r.burst, r.global.tokens+now.Sub(r.global.last).Seconds()*r.perSec)
	r.global.last = now
	if p.tokens < 1 || r.global.tokens < 1 {
		return false
	}
	p.tokens--
	r.global.tokens--
	return true
}
