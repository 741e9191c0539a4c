package stack

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapnet/tapnet/arp"
	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/ipv4"
)

// ErrAddressConflict is returned by AddAddressWithOptions when another host
// uses or probes for the address.
var ErrAddressConflict = errors.New("stack: address in use by another host")

// ACDConfig holds the timers of IPv4 address conflict detection (RFC 5227
// §1.1); zero fields take the RFC's values.
type ACDConfig struct {
	ProbeWait        time.Duration // random delay before the first probe (1 s)
	ProbeNum         int           // probes (3)
	ProbeMin         time.Duration // between probes, at least (1 s)
	ProbeMax         time.Duration // and at most (2 s)
	AnnounceWait     time.Duration // after the last probe (2 s)
	AnnounceNum      int           // announcements (2)
	AnnounceInterval time.Duration // between them (2 s)
	DefendInterval   time.Duration // a second conflict within it gives up (10 s)
}

func (c ACDConfig) withDefaults() ACDConfig {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.ProbeWait, time.Second)
	def(&c.ProbeMin, time.Second)
	def(&c.ProbeMax, 2*time.Second)
	def(&c.AnnounceWait, 2*time.Second)
	def(&c.AnnounceInterval, 2*time.Second)
	def(&c.DefendInterval, 10*time.Second)
	c.ProbeMax = max(c.ProbeMax, c.ProbeMin)
	if c.ProbeNum <= 0 {
		c.ProbeNum = 3
	}
	if c.AnnounceNum <= 0 {
		c.AnnounceNum = 2
	}
	return c
}

// AddressOptions choose how AddAddressWithOptions assigns an address.
type AddressOptions struct {
	// DetectConflicts probes for the address with ARP before assigning it,
	// announces it after, and defends it later (RFC 5227).
	DetectConflicts bool
	// ACD tunes the probes, announcements and defence.
	ACD ACDConfig
	// OnConflict is called, on its own goroutine, when a defended address
	// is given up: another host kept claiming it within DefendInterval.
	// The address is already removed then.
	OnConflict func(p netip.Prefix, by ethernet.MAC)
}

// acdState is the NIC's conflict detection: addresses being probed and
// addresses being defended. Guarded by mu, which the ARP input takes only
// while some address uses detection.
type acdState struct {
	mu       sync.Mutex
	active   atomic.Int32                 // len(probing)+len(defended): input skips the lock at 0
	probing  map[netip.Addr]chan struct{} // closed on a conflict
	defended map[netip.Addr]*defence
}

type defence struct {
	p          netip.Prefix
	cfg        ACDConfig
	onConflict func(netip.Prefix, ethernet.MAC)
	lastDefend time.Time
}

// AddAddressWithOptions is AddAddress with RFC 5227's address conflict
// detection when o.DetectConflicts: it sends ARP probes (sender address
// 0.0.0.0) and waits, returning ErrAddressConflict if another host claims
// or probes for the address meanwhile; then it assigns the address,
// announces it, and from then on defends it once per DefendInterval,
// giving it up (and calling OnConflict) on a second conflict. It blocks
// for the probes, about 5 s with the RFC's timers.
func (n *NIC) AddAddressWithOptions(p netip.Prefix, o AddressOptions) error {
	return n.AddAddressContext(context.Background(), p, o)
}

// AddAddressContext is AddAddressWithOptions that stops probing when ctx
// ends, returning ctx's error with the address not assigned.
func (n *NIC) AddAddressContext(ctx context.Context, p netip.Prefix, o AddressOptions) error {
	if !o.DetectConflicts || n.loopback {
		return n.AddAddress(p)
	}
	if !p.Addr().Is4() || p.Addr().IsUnspecified() || ipv4.IsMulticast(p.Addr()) || p.Bits() < 1 {
		return fmt.Errorf("stack: %v is not a usable IPv4 unicast address with a prefix", p)
	}
	if n.hasAddress(p.Addr()) {
		return nil
	}
	cfg := o.ACD.withDefaults()
	a := p.Addr()
	conflict := n.startProbe(a)
	err := n.probe(ctx, a, cfg, conflict)
	n.endProbe(a)
	if err == nil {
		err = ctx.Err() // ended with the last wait: still not wanted
	}
	if err != nil {
		return err
	}
	n.acd.mu.Lock()
	n.acd.defended[a] = &defence{p: p, cfg: cfg, onConflict: o.OnConflict}
	n.acd.active.Add(1)
	n.acd.mu.Unlock()
	if err := n.AddAddress(p); err != nil { // the first announcement
		n.forgetDefence(a)
		return err
	}
	n.announceLater(a, cfg, cfg.AnnounceNum-1)
	return nil
}

// probe sends cfg.ProbeNum probes for a at random intervals and waits
// AnnounceWait after the last, failing as soon as conflict closes or ctx
// ends.
func (n *NIC) probe(ctx context.Context, a netip.Addr, cfg ACDConfig, conflict <-chan struct{}) error {
	wait := randDuration(0, cfg.ProbeWait)
	for i := 0; ; i++ {
		t := time.NewTimer(wait)
		select {
		case <-conflict:
			t.Stop()
			n.s.stats.ARP.Conflicts.Add(1)
			return ErrAddressConflict
		case <-n.s.done:
			t.Stop()
			return ErrStackClosed
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		if i == cfg.ProbeNum {
			return nil
		}
		n.sendARP(arp.OpRequest, ethernet.Broadcast, netip.IPv4Unspecified(), ethernet.MAC{}, a)
		wait = randDuration(cfg.ProbeMin, cfg.ProbeMax)
		if i == cfg.ProbeNum-1 {
			wait = cfg.AnnounceWait
		}
	}
}

func randDuration(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(rand.Int64N(int64(hi-lo)))
}

// announceLater sends left more gratuitous ARPs for a, AnnounceInterval
// apart, while a stays defended.
func (n *NIC) announceLater(a netip.Addr, cfg ACDConfig, left int) {
	if left <= 0 {
		return
	}
	time.AfterFunc(cfg.AnnounceInterval, func() {
		n.acd.mu.Lock()
		_, ok := n.acd.defended[a]
		n.acd.mu.Unlock()
		if !ok || n.s.closed.Load() {
			return
		}
		n.sendARP(arp.OpRequest, ethernet.Broadcast, a, ethernet.MAC{}, a)
		n.announceLater(a, cfg, left-1)
	})
}

func (n *NIC) startProbe(a netip.Addr) <-chan struct{} {
	c := make(chan struct{})
	n.acd.mu.Lock()
	if n.acd.probing == nil {
		n.acd.probing = map[netip.Addr]chan struct{}{}
		n.acd.defended = map[netip.Addr]*defence{}
	}
	n.acd.probing[a] = c
	n.acd.active.Add(1)
	n.acd.mu.Unlock()
	return c
}

func (n *NIC) endProbe(a netip.Addr) {
	n.acd.mu.Lock()
	delete(n.acd.probing, a)
	n.acd.active.Add(-1)
	n.acd.mu.Unlock()
}

func (n *NIC) forgetDefence(a netip.Addr) {
	n.acd.mu.Lock()
	if _, ok := n.acd.defended[a]; ok {
		delete(n.acd.defended, a)
		n.acd.active.Add(-1)
	}
	n.acd.mu.Unlock()
}

// acdInput looks at a received ARP packet for conflicts with the addresses
// being probed (RFC 5227 §2.1.1: any packet from the address, or another
// host's probe for it).
func (n *NIC) acdInput(p arp.Packet, smac ethernet.MAC) {
	n.acd.mu.Lock()
	defer n.acd.mu.Unlock()
	if smac == n.mac {
		return
	}
	sip, tip := p.SenderIP(), p.TargetIP()
	c, ok := n.acd.probing[sip]
	if !ok && sip.IsUnspecified() && p.Op() == arp.OpRequest {
		c, ok = n.acd.probing[tip]
	}
	if ok {
		select {
		case <-c:
		default:
			close(c)
		}
	}
}

// defend answers another host's claim to our address a (RFC 5227 §2.4
// (b)): one announcement per DefendInterval; a second conflict within it
// gives the address up. It reports whether a uses conflict detection.
func (n *NIC) defend(a netip.Addr, by ethernet.MAC) bool {
	n.acd.mu.Lock()
	d, ok := n.acd.defended[a]
	if !ok {
		n.acd.mu.Unlock()
		return false
	}
	now := time.Now()
	if d.lastDefend.IsZero() || now.Sub(d.lastDefend) >= d.cfg.DefendInterval {
		d.lastDefend = now
		n.acd.mu.Unlock()
		n.sendARP(arp.OpRequest, ethernet.Broadcast, a, ethernet.MAC{}, a)
		return true
	}
	delete(n.acd.defended, a)
	n.acd.active.Add(-1)
	n.acd.mu.Unlock()
	n.s.log.Warn("tapnet: giving up a conflicting address", "addr", d.p, "mac", by.String())
	n.RemoveAddress(d.p)
	if d.onConflict != nil {
		go d.onConflict(d.p, by)
	}
	return true
}
