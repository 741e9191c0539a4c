package stack

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tapnet/tapnet/ipv6"
	"github.com/tapnet/tapnet/mld"
	"github.com/tapnet/tapnet/neigh"
)

// This file holds a NIC's IPv6 addresses: the link-local address every
// NIC forms, duplicate address detection (RFC 4862 §5.4), and the source
// address selection of RFC 6724.

// IPv6Options configure a NIC's IPv6. The zero value gives Linux's
// defaults for a host, except AcceptRA.
type IPv6Options struct {
	// Disabled leaves the NIC without IPv6: no link-local address, no
	// neighbour discovery, no MLD (Linux's disable_ipv6).
	Disabled bool
	// StableSecret, when set, makes interface identifiers RFC 7217
	// stable-privacy ones derived from it (Linux's addr_gen_mode 2 with
	// stable_secret). Otherwise an Ethernet NIC uses the modified EUI-64 of
	// its MAC (addr_gen_mode 0, Linux's default), and an IP link (no MAC)
	// a stable identifier from a random secret drawn when the NIC is made.
	StableSecret []byte
	// DADTransmits is how many neighbour solicitations duplicate address
	// detection sends before an address is used (dad_transmits, default
	// 1); negative skips DAD. IP links never run it (Linux skips NOARP
	// devices).
	DADTransmits int
	// RetransTimer is the time between solicitations, of DAD and of
	// neighbour resolution (retrans_time_ms, default 1s); a router
	// advertisement may change it.
	RetransTimer time.Duration
	// AcceptRA makes the NIC solicit and accept router advertisements:
	// default routers, on-link prefixes, SLAAC addresses, the link MTU and
	// DNS servers. Linux hosts accept them by default; tapnet does not,
	// since its NICs mostly face a host's kernel, which is no router, and
	// a library should not configure itself from the network unasked.
	// IP links take them too, as Linux's tun: the router is reached over
	// the link itself, with no neighbour entry.
	AcceptRA bool
	// MLD tunes the NIC's multicast listener reports.
	MLD mld.Config
}

// ErrDuplicateAddress is reported by WaitAddress when duplicate address
// detection found another node using the address.
var ErrDuplicateAddress = errors.New("stack: duplicate IPv6 address (DAD failed)")

// addr6State is where an IPv6 address is in its life.
type addr6State uint8

const (
	addrTentative  addr6State = iota + 1 // DAD running: not usable yet
	addrPreferred                        // usable
	addrDeprecated                       // preferred lifetime over: receives, never chosen as source
)

// addr6 is one IPv6 address of a NIC, tentative or assigned.
type addr6 struct {
	prefix  netip.Prefix
	state   addr6State
	slaac   bool // formed from a router's prefix: removed when its lifetime ends
	dadLeft int  // solicitations still to send
	timer   neigh.Timer
	// dadCounter is RFC 7217's DAD_Counter of an address whose interface
	// identifier is stable-private: each duplicate found makes a new one.
	dadCounter uint8
	stable     bool
	done       chan struct{} // closed when DAD ends, either way
	err        error         // set before done closes: ErrDuplicateAddress
	// Lifetimes of SLAAC addresses (zero: forever).
	validUntil, preferredUntil time.Time
}

// srcCandidate is an assigned address as source selection sees it.
type srcCandidate struct {
	addr       netip.Addr
	bits       int
	deprecated bool
	secondary  bool
	seq        uint64
	// scope and label are addr's, worked out once when published rather
	// than per datagram (an unbound socket selects a source for each).
	scope ipv6.Scope
	label int
}

// srcDest is a destination as source selection compares it, its scope and
// label worked out once per selection.
type srcDest struct {
	addr  netip.Addr
	scope ipv6.Scope
	label int
}

// nic6 is a NIC's IPv6 state besides the addresses in addrBook (which
// hold assigned IPv6 addresses like IPv4 ones). Fields are guarded by the
// stack's mutex unless they are atomics.
type nic6 struct {
	enabled bool
	opts    IPv6Options
	secret  []byte
	addrs   map[netip.Addr]*addr6
	// failedDAD keeps the outcome of addresses that failed duplicate
	// address detection, as Linux keeps them flagged dadfailed, so that
	// WaitAddress called after the failure still reports it. Bounded by
	// maxDADFailed; an AddAddress or RemoveAddress of the address clears it.
	failedDAD map[netip.Addr]*addr6
	sources   atomic.Pointer[[]srcCandidate] // usable sources, for readers without a lock
	linkLocal atomic.Pointer[netip.Addr]     // the first usable link-local address
	hopLimit  atomic.Uint32                  // unicast hop limit (a router may set it); 0: default
	mtu       atomic.Uint32                  // link MTU from a router; 0: the device's
	ra        raState                        // ndp.go
	idgen     []neigh.Timer                  // pending RFC 7217 retries (retryStable6)
}

// setupIPv6 prepares a new NIC's IPv6 state; startIPv6 forms its
// link-local address once it receives.
func (n *NIC) setupIPv6(o IPv6Options) {
	v := &n.v6
	v.opts = o
	v.enabled = !o.Disabled
	v.addrs = make(map[netip.Addr]*addr6)
	v.failedDAD = make(map[netip.Addr]*addr6)
	if v.opts.RetransTimer <= 0 {
		v.opts.RetransTimer = time.Second
	}
	v.secret = o.StableSecret
	if v.secret == nil && !n.hasEthernet() {
		v.secret = make([]byte, 16)
		rand.Read(v.secret)
	}
	if v.enabled && !n.loopback {
		n.newNDPCache()
	}
	n.newMLDHost(o.MLD)
}

// startIPv6 gives the NIC its link-local address and, with AcceptRA,
// starts soliciting routers.
func (n *NIC) startIPv6() {
	if !n.v6.enabled || n.loopback {
		return
	}
	if err := n.addGenerated6(&addr6{prefix: ipv6.LinkLocalPrefix}, 0); err != nil {
		n.s.log.Warn("tapnet: no IPv6 link-local address", "nic", n.name, "err", err)
	}
	if n.v6.opts.AcceptRA {
		n.startRouterSolicitation()
	}
}

// interfaceID returns the identifier for addresses of prefix: RFC 7217's
// when the NIC has a secret, else the EUI-64 of its MAC.
func (n *NIC) interfaceID(prefix netip.Prefix, dadCounter uint8) (ipv6.InterfaceID, uint8) {
	if n.v6.secret != nil {
		return ipv6.StableInterfaceID(prefix, n.name, dadCounter, n.v6.secret)
	}
	return ipv6.EUI64(n.mac), 0
}

// validIPv6Unicast reports whether p can be assigned: an IPv6 unicast
// address that is not unspecified, loopback or IPv4-mapped.
func validIPv6Unicast(p netip.Prefix) bool {
	a := p.Addr()
	return p.IsValid() && a.Is6() && !a.Is4In6() && !a.IsUnspecified() && !a.IsMulticast() &&
		!a.IsLoopback() && p.Bits() >= 1 && a.Zone() == ""
}

// addGenerated6 assigns the address the NIC's interface identifier makes
// in the /64 prefix of tmpl (its slaac flag and lifetimes kept), with
// RFC 7217's DAD counter from counter on when the identifier is
// stable-private.
func (n *NIC) addGenerated6(tmpl *addr6, counter uint8) error {
	prefix := tmpl.prefix.Masked()
	id, used := n.interfaceID(prefix, counter)
	a := &addr6{prefix: netip.PrefixFrom(ipv6.AddrFromPrefix(prefix, id), 64), slaac: tmpl.slaac,
		stable: n.v6.secret != nil, dadCounter: used, validUntil: tmpl.validUntil, preferredUntil: tmpl.preferredUntil}
	return n.addAddr6(a)
}

// addAddress6 assigns p, tentatively while DAD runs. slaac marks an
// address formed from a router's prefix, with its lifetimes (zero times:
// forever). Adding an address twice does nothing.
func (n *NIC) addAddress6(p netip.Prefix, slaac bool, validUntil, preferredUntil time.Time) error {
	return n.addAddr6(&addr6{prefix: p, slaac: slaac, validUntil: validUntil, preferredUntil: preferredUntil})
}

// addAddr6 is addAddress6 for an address a describes.
func (n *NIC) addAddr6(a *addr6) error {
	p := a.prefix
	if !n.v6.enabled {
		return fmt.Errorf("stack: IPv6 is disabled on %s", n.name)
	}
	if !validIPv6Unicast(p) {
		return fmt.Errorf("stack: %v is not a usable IPv6 unicast address with a prefix", p)
	}
	s := n.s
	s.mu.Lock()
	if _, dup := n.v6.addrs[p.Addr()]; dup {
		s.mu.Unlock()
		return nil
	}
	delete(n.v6.failedDAD, p.Addr())
	a.state, a.dadLeft, a.done = addrTentative, n.dadTransmits(), make(chan struct{})
	n.v6.addrs[p.Addr()] = a
	s.mu.Unlock()
	// Listen for other nodes' DAD probes and for solicitations.
	n.joinGroup6(ipv6.SolicitedNode(p.Addr()))
	if a.dadLeft <= 0 {
		n.dadSucceeded(a)
		return nil
	}
	n.dadStep(a)
	return nil
}

// dadTransmits returns how many DAD probes the NIC sends: none on IP links
// and lo.
func (n *NIC) dadTransmits() int {
	if !n.hasEthernet() || n.loopback || n.v6.opts.DADTransmits < 0 {
		return 0
	}
	if n.v6.opts.DADTransmits == 0 {
		return 1
	}
	return n.v6.opts.DADTransmits
}

// dadStep sends the next DAD probe of a, or, when all were sent and a
// retransmission time passed without an answer, assigns a.
func (n *NIC) dadStep(a *addr6) {
	s := n.s
	s.mu.Lock()
	if n.v6.addrs[a.prefix.Addr()] != a || a.state != addrTentative {
		s.mu.Unlock()
		return
	}
	if a.dadLeft == 0 {
		s.mu.Unlock()
		n.dadSucceeded(a)
		return
	}
	a.dadLeft--
	a.timer = s.v6.afterFunc(n.v6.opts.RetransTimer, func() { n.dadStep(a) })
	s.mu.Unlock()
	s.stats.NDP.DADProbes.Add(1)
	n.sendNeighborSolicit(a.prefix.Addr(), netip.IPv6Unspecified(), ipv6.SolicitedNode(a.prefix.Addr()), [6]byte{})
}

// dadSucceeded makes a usable: assigned with its connected route, its
// state published to readers.
func (n *NIC) dadSucceeded(a *addr6) {
	s := n.s
	s.mu.Lock()
	if n.v6.addrs[a.prefix.Addr()] != a || a.state != addrTentative {
		s.mu.Unlock()
		return
	}
	a.state = addrPreferred
	if !a.preferredUntil.IsZero() && !s.v6.now().Before(a.preferredUntil) {
		a.state = addrDeprecated
	}
	// A host route rather than a prefix route for /128 addresses is
	// what assignLocked's connected route amounts to already.
	n.assignLocked(a.prefix, !n.loopback)
	n.publishSources6Locked()
	s.mu.Unlock()
	close(a.done)
	if a.slaac {
		n.armLifetime(a)
	}
}

// RFC 7217 §6's retries of a duplicate stable-private address, with
// Linux's defaults (idgen_retries, idgen_delay).
const (
	idgenRetries = 3
	idgenDelay   = time.Second
)

// dadFailed handles another node using (or probing for) a tentative
// address: the address is dropped, as Linux does with a duplicate it
// cannot use, and the conflict is logged and counted. A stable-private
// address is tried again with the next DAD counter after idgenDelay, up
// to idgenRetries times (RFC 7217 §6, RFC 4862 §5.4.5's IDGEN).
func (n *NIC) dadFailed(addr netip.Addr) {
	s := n.s
	s.mu.Lock()
	a := n.v6.addrs[addr]
	if a == nil || a.state != addrTentative {
		s.mu.Unlock()
		return
	}
	delete(n.v6.addrs, addr)
	if a.timer != nil {
		a.timer.Stop()
	}
	a.err = ErrDuplicateAddress
	n.rememberDADFailedLocked(addr, a)
	s.mu.Unlock()
	// Counted before done closes: a waiter woken by it sees the count.
	s.stats.NDP.DADConflicts.Add(1)
	close(a.done)
	s.log.Warn("tapnet: IPv6 duplicate address detected", "nic", n.name, "addr", addr)
	n.leaveGroup6(ipv6.SolicitedNode(addr))
	if a.stable && a.dadCounter < idgenRetries {
		n.retryStable6(a)
	}
}

// maxDADFailed bounds how many failed addresses a NIC remembers.
const maxDADFailed = 64

// rememberDADFailedLocked records a's failure for WaitAddress, forgetting
// an arbitrary older one when the record is full.
func (n *NIC) rememberDADFailedLocked(addr netip.Addr, a *addr6) {
	if len(n.v6.failedDAD) >= maxDADFailed {
		for k := range n.v6.failedDAD {
			delete(n.v6.failedDAD, k)
			break
		}
	}
	n.v6.failedDAD[addr] = a
}

// retryStable6 forms a's next stable-private address after idgenDelay.
func (n *NIC) retryStable6(a *addr6) {
	s := n.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return
	}
	s.stats.NDP.DADRetries.Add(1)
	n.v6.idgen = append(n.v6.idgen, s.v6.afterFunc(idgenDelay, func() {
		if !s.closed.Load() {
			n.addGenerated6(a, a.dadCounter+1)
		}
	}))
}

// removeAddress6 removes an IPv6 address, tentative or assigned.
func (n *NIC) removeAddress6(p netip.Prefix) error {
	s := n.s
	s.mu.Lock()
	if f := n.v6.failedDAD[p.Addr()]; f != nil && f.prefix == p {
		delete(n.v6.failedDAD, p.Addr())
		s.mu.Unlock()
		return nil
	}
	a := n.v6.addrs[p.Addr()]
	if a == nil || a.prefix != p {
		s.mu.Unlock()
		return syscall.EADDRNOTAVAIL
	}
	delete(n.v6.addrs, p.Addr())
	if a.timer != nil {
		a.timer.Stop()
	}
	tentative := a.state == addrTentative
	if !tentative {
		n.unassignLocked(p)
		n.publishSources6Locked()
	}
	s.mu.Unlock()
	if tentative {
		a.err = ErrDuplicateAddress
		close(a.done)
	}
	n.leaveGroup6(ipv6.SolicitedNode(p.Addr()))
	return nil
}

// isTentative6 reports whether a is one of the NIC's tentative addresses.
func (n *NIC) isTentative6(a netip.Addr) bool {
	n.s.mu.Lock()
	defer n.s.mu.Unlock()
	x := n.v6.addrs[a]
	return x != nil && x.state == addrTentative
}

// WaitAddress waits until the NIC's IPv6 address a is usable (duplicate
// address detection done). It returns ErrDuplicateAddress when another
// node has it (also when asked after the failure, until the address is
// added or removed again), ctx's error when ctx ends first, and EADDRNOTAVAIL when the
// NIC has no such address. IPv4 addresses are usable at once.
func (n *NIC) WaitAddress(ctx context.Context, a netip.Addr) error {
	if a.Is4() {
		if n.hasAddress(a) {
			return nil
		}
		return syscall.EADDRNOTAVAIL
	}
	n.s.mu.Lock()
	x := n.v6.addrs[a]
	if x == nil {
		x = n.v6.failedDAD[a]
	}
	n.s.mu.Unlock()
	if x == nil {
		return syscall.EADDRNOTAVAIL
	}
	select {
	case <-x.done:
		return x.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// LinkLocalAddress returns the NIC's usable link-local address, if it has
// one yet.
func (n *NIC) LinkLocalAddress() (netip.Addr, bool) {
	if a := n.v6.linkLocal.Load(); a != nil {
		return *a, true
	}
	return netip.Addr{}, false
}

// tentativeLocked lists the tentative addresses after the assigned ones,
// as `ip address` shows them with the tentative flag.
func (n *NIC) tentativeLocked() []netip.Prefix {
	var out []netip.Prefix
	for _, a := range n.v6.addrs {
		if a.state == addrTentative {
			out = append(out, a.prefix)
		}
	}
	slices.SortFunc(out, func(x, y netip.Prefix) int { return x.Addr().Compare(y.Addr()) })
	return out
}

// publishSources6Locked rebuilds the source candidates readers use.
func (n *NIC) publishSources6Locked() {
	var c []srcCandidate
	var ll *netip.Addr
	for addr, a := range n.v6.addrs {
		if a.state == addrTentative {
			continue
		}
		e := n.addrs.entries[a.prefix]
		c = append(c, srcCandidate{addr: addr, bits: a.prefix.Bits(), deprecated: a.state == addrDeprecated,
			secondary: e.secondary, seq: e.seq, scope: ipv6.AddrScope(addr), label: policyLabel(addr)})
	}
	slices.SortFunc(c, func(x, y srcCandidate) int { return int(x.seq) - int(y.seq) })
	for i := range c {
		if c[i].addr.IsLinkLocalUnicast() && ll == nil {
			a := c[i].addr
			ll = &a
		}
	}
	n.v6.sources.Store(&c)
	n.v6.linkLocal.Store(ll)
}

// selectSource6 picks the source for dst among the NIC's usable addresses
// with RFC 6724 §5's rules 1 (same address), 2 (appropriate scope), 3
// (avoid deprecated), 6 (matching label), 8 (longest matching prefix), and
// then the IPv4 side's primary rule: a prefix's primary before its
// secondaries, older before newer. Rule 5 (outgoing interface) is the
// caller's: it asks the outgoing NIC first.
func (n *NIC) selectSource6(dst netip.Addr) netip.Addr {
	cs := n.v6.sources.Load()
	if cs == nil || len(*cs) == 0 {
		return netip.Addr{}
	}
	if len(*cs) == 1 {
		return (*cs)[0].addr
	}
	d := srcDest{addr: dst, scope: ipv6.AddrScope(dst), label: policyLabel(dst)}
	best := -1
	for i := range *cs {
		if best < 0 || betterSource(&(*cs)[i], &(*cs)[best], &d) {
			best = i
		}
	}
	if best < 0 {
		return netip.Addr{}
	}
	return (*cs)[best].addr
}

// betterSource reports whether a is a better source than b for dst.
func betterSource(a, b *srcCandidate, dst *srcDest) bool {
	if a.addr == dst.addr || b.addr == dst.addr { // rule 1
		return a.addr == dst.addr
	}
	ds, as, bs := dst.scope, a.scope, b.scope
	if as != bs { // rule 2
		if as < bs {
			return as >= ds
		}
		return bs < ds
	}
	if a.deprecated != b.deprecated { // rule 3
		return !a.deprecated
	}
	if la, lb := a.label == dst.label, b.label == dst.label; la != lb { // rule 6
		return la
	}
	if pa, pb := commonPrefixLen(a.addr, dst.addr, a.bits), commonPrefixLen(b.addr, dst.addr, b.bits); pa != pb { // rule 8
		return pa > pb
	}
	if a.secondary != b.secondary {
		return !a.secondary
	}
	return a.seq < b.seq
}

// policyLabel returns the label of RFC 6724 §2.1's default policy table.
func policyLabel(a netip.Addr) int {
	b := a.As16()
	switch {
	case a == netip.IPv6Loopback():
		return 0
	case a.Is4In6():
		return 4
	case b[0] == 0x20 && b[1] == 0x02:
		return 2 // 6to4
	case b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0:
		return 5 // Teredo
	case b[0]&0xfe == 0xfc:
		return 13 // ULA
	case b[0] == 0xfe && b[1]&0xc0 == 0xc0:
		return 11 // site-local
	case [12]byte(b[:12]) == [12]byte{}:
		return 3 // IPv4-compatible
	case b[0] == 0x3f && b[1] == 0xfe:
		return 12 // 6bone
	}
	return 1
}

// commonPrefixLen returns how many leading bits a and b share, counted
// only up to limit, the length of a's prefix: RFC 6724 §2.2's
// CommonPrefixLen of a source a, as Linux caps it at the address's
// prefix length.
func commonPrefixLen(a, b netip.Addr, limit int) int {
	ah, al := addrWords(a)
	bh, bl := addrWords(b)
	n := bits.LeadingZeros64(ah ^ bh)
	if n == 64 {
		n += bits.LeadingZeros64(al ^ bl)
	}
	return min(n, limit)
}
