package stack

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"syscall"
	"time"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/ipv6"
	"github.com/tapnet/tapnet/neigh"
)

// This file is neighbour discovery (RFC 4861) on a NIC: answering
// solicitations, learning neighbours into the NIC's neighbour table,
// duplicate address detection's messages, and, with AcceptRA, router
// solicitation and advertisements (a default router list, on-link
// prefixes, SLAAC addresses, MTU, DNS servers, the neighbour timers).
// Redirects are counted and ignored.
//
// The neighbour table is a neigh.Table, the one ARP's cache is built on:
// NUD states, bounded queues, RFC 4861 §7.2.5's rules for an
// advertisement's Solicited, Override and Router flags, unicast probes of
// stale neighbours, and EHOSTUNREACH to the senders of packets whose next
// hop never answered.
//
// An IP link (a TUN) is point-to-point and has no link-layer addresses,
// so, as Linux on a tun device: no neighbour table and no address
// resolution, no link-layer address options in what it sends, no DAD
// (ipv6_addr.go), solicitations for its addresses answered straight back,
// and router advertisements taken with the router reached over the link
// itself.

// ndpHopLimit is the hop limit every NDP message is sent with and must
// arrive with (RFC 4861 §6.1).
const ndpHopLimit = 255

// newNDPCache makes the NIC's IPv6 neighbour table (Ethernet links only)
// with the stack's ARP limits, IPv6's timers and no locktime: NDP flags
// its overrides instead.
func (n *NIC) newNDPCache() {
	if !n.hasEthernet() {
		return
	}
	a := n.s.opts.ARP
	cfg := neigh.Config{
		MaxEntries: a.MaxEntries, SoftEntries: a.SoftEntries, MinEntries: a.MinEntries,
		MaxIncomplete: a.MaxIncomplete, GCMinAge: a.GCMinAge, StaleTime: a.StaleTime,
		MaxPending: a.MaxPending, MaxPendingBytes: a.MaxPendingBytes,
		MaxMulticastProbes: a.Retries, MaxUnicastProbes: a.UnicastProbes,
		RetransTime: n.v6.opts.RetransTimer, DelayFirstProbeTime: a.DelayFirstProbeTime,
		ReachableTime: a.ReachableTime,
		Now:           a.Now, AfterFunc: a.AfterFunc,
	}
	if cfg.Now == nil {
		cfg.Now, cfg.AfterFunc = n.s.v6.now, n.s.v6.afterFunc
	}
	n.nd = neigh.New(cfg, neigh.Hooks{
		Solicit:    n.solicitNeighbor,
		Resolved:   n.flushResolved, // putLinkHeader types frames by IP version
		Failed:     n.resolutionFailed6,
		RouterLost: n.routerLost,
	}, &n.s.stats.NDP.Stats)
}

// NeighborCache returns the NIC's IPv6 neighbour table, or nil on an IP
// link or with IPv6 disabled.
func (n *NIC) NeighborCache() *neigh.Table { return n.nd }

// resolutionFailed6 reports EHOSTUNREACH to the senders of packets whose
// next hop never answered, as Linux does with a local address
// unreachable. A default router that stopped answering gives way to the
// next one (RFC 4861 §6.3.6).
func (n *NIC) resolutionFailed6(addr netip.Addr, pkts []neigh.Pending) {
	for _, pending := range pkts {
		p := pending.(*buffer.Buffer)
		n.s.reportLocalError6(n, p.Bytes(), ControlError{Errno: syscall.EHOSTUNREACH, Hard: true,
			Type: ipv6.ICMPDestUnreachable, Code: ipv6.CodeAddrUnreachable})
		p.Release()
	}
	n.routerUnreachable(addr)
}

// solicitNeighbor is the cache's request hook: a multicast solicitation to
// target's solicited-node group, or a unicast probe to dst.
func (n *NIC) solicitNeighbor(target netip.Addr, dst ethernet.MAC) {
	src := n.selectSource6(target)
	if !src.IsValid() {
		return
	}
	if dst == (ethernet.MAC{}) {
		n.sendNeighborSolicit(target, src, ipv6.SolicitedNode(target), [6]byte{})
		return
	}
	n.sendNeighborSolicit(target, src, target, dst)
}

// sendNeighborSolicit sends a solicitation for target from src (:: for
// DAD, which then carries no link-layer address option) to dst, at the
// Ethernet address dstMAC unless dst is a group.
func (n *NIC) sendNeighborSolicit(target, src, dst netip.Addr, dstMAC [6]byte) {
	b := n.ndpBuffer()
	p := b.Bytes()
	l := ipv6.PutNeighborSolicit(p, target)
	if !src.IsUnspecified() {
		l += n.putLinkAddrOption(p[l:], ipv6.OptSourceLinkAddr)
	}
	n.s.stats.NDP.SolicitsSent.Add(1)
	n.sendNDP(b, l, src, dst, dstMAC)
}

// sendNeighborAdvert sends an advertisement for target to dst, with our
// link address when withAddr and the link has them, resolving dst first
// if it is a neighbour we do not know yet (RFC 4861 §7.2.4).
func (n *NIC) sendNeighborAdvert(target, dst netip.Addr, flags uint8, withAddr bool) {
	src := target
	b := n.ndpBuffer()
	p := b.Bytes()
	l := ipv6.PutNeighborAdvert(p, flags, target)
	if withAddr {
		l += n.putLinkAddrOption(p[l:], ipv6.OptTargetLinkAddr)
	}
	n.s.stats.NDP.AdvertsSent.Add(1)
	n.sendNDP(b, l, src, dst, [6]byte{})
}

// ndpBuffer returns a buffer with room for an NDP message.
func (n *NIC) ndpBuffer() *buffer.Buffer {
	b := buffer.Get(128)
	b.SetLen(128)
	return b
}

// sendNDP completes the NDP message in b's first l bytes and sends it
// with hop limit 255, without blocking. On an Ethernet link a unicast
// message without dstMAC goes through the neighbour table, which may
// queue it until dst answers; an IP link sends everything as it is.
func (n *NIC) sendNDP(b *buffer.Buffer, l int, src, dst netip.Addr, dstMAC [6]byte) {
	b.Truncate(l)
	ipv6.PutChecksum(b.Bytes(), src, dst)
	ipv6.Put(b.Prepend(ipv6.HeaderLen), ipv6.Fields{PayloadLen: l, NextHeader: ipv6.ProtocolICMPv6,
		HopLimit: ndpHopLimit, Src: src, Dst: dst})
	n.s.stats.IPv6.Sent.Add(1)
	switch {
	case dst.IsMulticast():
		dstMAC = ipv6.MulticastMAC(dst)
	case dstMAC == [6]byte{} && n.nd != nil:
		mac, ok := n.nd.Resolve(dst, b)
		if !ok {
			return // queued, or dropped and counted by the table
		}
		dstMAC = mac
	}
	n.putLinkHeader(b, ethernet.MAC(dstMAC))
	n.tryWrite(b)
}

// handleNDP processes a neighbour discovery message m from the packet h.
func (n *NIC) handleNDP(m ipv6.ICMP, h ipv6.Header) {
	st := &n.s.stats.NDP
	src, dst := h.Src(), h.Dst()
	nd, err := ipv6.ParseNDP(m, h.HopLimit(), src, dst)
	if err != nil {
		st.Malformed.Add(1)
		return
	}
	if n.loopback {
		st.NoLinkLayer.Add(1) // lo has no neighbours and no routers
		return
	}
	// An IP link (a TUN) has no neighbour table: it answers solicitations
	// and takes router advertisements, as Linux does on a tun device, and
	// learns nothing else.
	switch nd.Type() {
	case ipv6.ICMPNeighborSolicit:
		st.SolicitsReceived.Add(1)
		n.handleNeighborSolicit(nd, src, dst)
	case ipv6.ICMPNeighborAdvert:
		st.AdvertsReceived.Add(1)
		n.handleNeighborAdvert(nd)
	case ipv6.ICMPRouterAdvert:
		n.handleRouterAdvert(nd, src)
	case ipv6.ICMPRedirect:
		st.Redirects.Add(1)
	}
	// Router solicitations are for routers: a host ignores them.
}

// linkAddrOption returns the link-layer address option typ of nd.
func linkAddrOption(nd ipv6.NDP, typ uint8) (ethernet.MAC, bool) {
	o, ok := nd.Options().Find(typ)
	if !ok {
		return ethernet.MAC{}, false
	}
	mac, ok := o.LinkAddr()
	return ethernet.MAC(mac), ok
}

// handleNeighborSolicit answers a solicitation for one of our addresses
// and learns the solicitor. A solicitation from :: for a tentative address
// is another node's DAD: the address is a duplicate (RFC 4862 §5.4.3).
func (n *NIC) handleNeighborSolicit(nd ipv6.NDP, src, dst netip.Addr) {
	target := nd.Target()
	if n.isTentative6(target) {
		if src.IsUnspecified() {
			n.dadFailed(target)
		}
		return // never answered while tentative
	}
	if !n.hasAddress(target) || n.loopback {
		n.s.stats.NDP.NotForUs.Add(1)
		return
	}
	if src.IsUnspecified() {
		// Someone probes for an address we have: tell everybody, not
		// solicited (RFC 4861 §7.2.4).
		n.sendNeighborAdvert(target, ipv6.AllNodes, ipv6.NAFlagOverride, true)
		return
	}
	mac, hasMAC := linkAddrOption(nd, ipv6.OptSourceLinkAddr)
	if hasMAC && n.nd != nil {
		// §7.2.3: a new or changed address makes the entry stale.
		n.nd.Update(src, neigh.Update{MAC: mac, Create: true, Override: true})
	}
	if !hasMAC && dst.IsMulticast() && n.unknownNeighbor(src) {
		// Nowhere to answer without resolving the solicitor first, which
		// Linux does not do for a multicast solicitation.
		n.s.stats.NDP.SolicitsUnanswered.Add(1)
		return
	}
	// Without the option (a unicast probe may omit it) the answer waits
	// for the solicitor's address, resolved as for any packet, as Linux's
	// ndisc_send_na does. An IP link sends it straight back.
	n.sendNeighborAdvert(target, src, naFlagsFor(dst), dst.IsMulticast())
}

// unknownNeighbor reports whether addr has no entry in the NIC's
// neighbour table; on an IP link, which has none, every neighbour is
// known: it is the link's far end.
func (n *NIC) unknownNeighbor(addr netip.Addr) bool {
	if n.nd == nil {
		return false
	}
	_, ok := n.nd.Lookup(addr)
	return !ok
}

// naFlagsFor returns the flags of our answer to a solicitation sent to
// dst. As Linux's ndisc_recv_ns, only the answer to a multicast one sets
// Override and carries our link address: a unicast solicitation is a
// probe of an entry its sender already has, which RFC 4861 §7.2.4 lets us
// confirm without overriding.
func naFlagsFor(dst netip.Addr) uint8 {
	if dst.IsMulticast() {
		return ipv6.NAFlagSolicited | ipv6.NAFlagOverride
	}
	return ipv6.NAFlagSolicited
}

// handleNeighborAdvert completes resolutions and detects duplicates; its
// flags drive the table as RFC 4861 §7.2.5 says.
func (n *NIC) handleNeighborAdvert(nd ipv6.NDP) {
	target := nd.Target()
	if n.isTentative6(target) {
		n.dadFailed(target)
		return
	}
	if n.nd == nil {
		n.s.stats.NDP.NoLinkLayer.Add(1) // an IP link: nothing to learn
		return
	}
	mac, ok := linkAddrOption(nd, ipv6.OptTargetLinkAddr)
	if n.hasAddress(target) {
		if ok && mac != n.mac {
			n.s.stats.NDP.AddressConflicts.Add(1)
			n.s.log.Warn("tapnet: IPv6 address conflict", "addr", target, "mac", mac.String())
		}
		return
	}
	flags := nd.Flags()
	u := neigh.Update{MAC: mac, NoMAC: !ok, Solicited: flags&ipv6.NAFlagSolicited != 0,
		Override: flags&ipv6.NAFlagOverride != 0, Router: neigh.NotRouter}
	if flags&ipv6.NAFlagRouter != 0 {
		u.Router = neigh.IsRouter
	}
	n.nd.Update(target, u)
}

// raState is what router advertisements taught a NIC.
type raState struct {
	heard     bool
	rsLeft    int
	rsTimer   neigh.Timer
	routers   []*defaultRouter             // the default router list, in the order first heard
	current   netip.Addr                   // the router the NIC's default route goes through
	prefixes  map[netip.Prefix]neigh.Timer // on-link prefixes and their expiry (nil: forever)
	dns       []netip.Addr
	dnsExpiry time.Time
}

// defaultRouter is an entry of the default router list (RFC 4861 §6.3.4).
type defaultRouter struct {
	addr  netip.Addr
	timer neigh.Timer // its lifetime
}

// Router solicitation timers (RFC 4861 §10, Linux's defaults).
const (
	maxRtrSolicitationDelay = time.Second
	rtrSolicitationInterval = 4 * time.Second
	maxRtrSolicitations     = 3
)

// startRouterSolicitation sends up to three solicitations, the first after
// a random delay of up to a second, until a router answers.
func (n *NIC) startRouterSolicitation() {
	n.s.mu.Lock()
	defer n.s.mu.Unlock()
	n.v6.ra.rsLeft = maxRtrSolicitations
	n.v6.ra.rsTimer = n.s.v6.afterFunc(rand.N(maxRtrSolicitationDelay), n.solicitRouters)
}

// solicitRouters sends one router solicitation and schedules the next.
func (n *NIC) solicitRouters() {
	s := n.s
	s.mu.Lock()
	ra := &n.v6.ra
	if ra.heard || ra.rsLeft <= 0 || s.closed.Load() {
		s.mu.Unlock()
		return
	}
	ra.rsLeft--
	if ra.rsLeft > 0 {
		ra.rsTimer.Reset(rtrSolicitationInterval)
	}
	s.mu.Unlock()
	src, _ := n.LinkLocalAddress()
	if !src.IsValid() {
		src = netip.IPv6Unspecified()
	}
	b := n.ndpBuffer()
	p := b.Bytes()
	l := ipv6.PutRouterSolicit(p)
	if !src.IsUnspecified() {
		l += n.putLinkAddrOption(p[l:], ipv6.OptSourceLinkAddr)
	}
	s.stats.NDP.RouterSolicits.Add(1)
	n.sendNDP(b, l, src, ipv6.AllRouters, [6]byte{})
}

// handleRouterAdvert applies a router advertisement (RFC 4861 §6.3.4, RFC
// 4862 §5.5.3): the sender becomes (or stops being) a default router,
// prefixes become on-link routes and SLAAC addresses, and the hop limit,
// MTU and DNS servers are taken.
func (n *NIC) handleRouterAdvert(nd ipv6.NDP, src netip.Addr) {
	st := &n.s.stats.NDP
	if !n.v6.opts.AcceptRA {
		st.RouterAdvertsIgnored.Add(1)
		return
	}
	st.RouterAdverts.Add(1)
	if n.nd != nil {
		n.learnRouter(nd, src)
	}
	if h := nd.CurHopLimit(); h != 0 {
		n.v6.hopLimit.Store(uint32(h))
	}
	if d := nd.RetransTimer(); d > 0 {
		n.s.mu.Lock()
		n.v6.opts.RetransTimer = d // DAD's too, as Linux's retrans_time
		n.s.mu.Unlock()
	}
	n.s.mu.Lock()
	n.v6.ra.heard = true
	n.s.mu.Unlock()
	n.updateDefaultRouter(src, nd.RouterLifetime())
	for o := range nd.Options().All() {
		switch o.Type() {
		case ipv6.OptPrefixInfo:
			if p, ok := o.PrefixInfo(); ok {
				n.applyPrefix(p)
			}
		case ipv6.OptMTU:
			if mtu, ok := o.MTU(); ok && mtu >= ipv6.MinMTU && int(mtu) <= n.MTU() {
				n.v6.mtu.Store(mtu)
			}
		case ipv6.OptRDNSS:
			n.applyRDNSS(o)
		}
	}
}

// learnRouter enters an advertising router into the neighbour table
// (§6.3.4: its address makes or updates a stale entry) and takes the
// advertisement's neighbour timers. Only links with neighbours have any.
func (n *NIC) learnRouter(nd ipv6.NDP, src netip.Addr) {
	u := neigh.Update{NoMAC: true, Override: true, Router: neigh.IsRouter}
	if mac, ok := linkAddrOption(nd, ipv6.OptSourceLinkAddr); ok {
		u.MAC, u.NoMAC, u.Create = mac, false, true
	}
	n.nd.Update(src, u)
	n.nd.SetBaseReachableTime(nd.ReachableTime())
	if d := nd.RetransTimer(); d > 0 {
		n.nd.SetRetransTime(d)
	}
}

// updateDefaultRouter adds, refreshes or (lifetime zero) removes router
// in the NIC's default router list, then chooses the router the NIC's
// default route goes through.
func (n *NIC) updateDefaultRouter(router netip.Addr, lifetime time.Duration) {
	s := n.s
	s.mu.Lock()
	defer s.mu.Unlock()
	ra := &n.v6.ra
	i := slices.IndexFunc(ra.routers, func(r *defaultRouter) bool { return r.addr == router })
	switch {
	case lifetime <= 0 && i >= 0:
		ra.routers[i].timer.Stop()
		ra.routers = slices.Delete(ra.routers, i, i+1)
	case lifetime <= 0:
		return
	case i >= 0:
		ra.routers[i].timer.Reset(lifetime)
	case len(ra.routers) < maxDefaultRouters:
		ra.routers = append(ra.routers, &defaultRouter{addr: router,
			timer: s.v6.afterFunc(lifetime, func() { n.updateDefaultRouter(router, 0) })})
	default:
		return // a full list keeps the routers it has (Linux's limit is per table too)
	}
	n.selectRouterLocked(netip.Addr{})
}

// maxDefaultRouters bounds the default router list, so that a flood of
// advertisements from made-up routers cannot grow it without end.
const maxDefaultRouters = 16

// maxOnLinkPrefixes bounds the on-link prefixes learned from routers.
const maxOnLinkPrefixes = 64

// routerLost removes a neighbour that said it is no longer a router from
// the default router list (RFC 4861 §7.2.5).
func (n *NIC) routerLost(router netip.Addr) { n.updateDefaultRouter(router, 0) }

// routerUnreachable moves the default route off router when its
// resolution failed: the next router in the list takes over.
func (n *NIC) routerUnreachable(router netip.Addr) {
	s := n.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if n.v6.ra.current == router {
		n.selectRouterLocked(router)
	}
}

// selectRouterLocked chooses the default router as RFC 4861 §6.3.6 says:
// the current one while it is (probably) reachable, else the first in the
// list whose neighbour entry is anything but incomplete, else, round
// robin, the one after the current (or after avoid, which just failed).
// It moves the NIC's default route to the choice.
func (n *NIC) selectRouterLocked(avoid netip.Addr) {
	ra := &n.v6.ra
	next := netip.Addr{}
	if len(ra.routers) > 0 {
		next = n.pickRouterLocked(avoid)
	}
	if next == ra.current {
		return
	}
	def := RouteEntry{Dst: netip.PrefixFrom(netip.IPv6Unspecified(), 0), NIC: n.id}
	if ra.current.IsValid() {
		old := def
		old.Gateway = ra.current
		n.s.removeRouteLocked(old)
	}
	ra.current = next
	if next.IsValid() {
		def.Gateway = next
		n.s.addRouteLocked(def)
	}
}

// pickRouterLocked is selectRouterLocked's choice among a non-empty list.
func (n *NIC) pickRouterLocked(avoid netip.Addr) netip.Addr {
	ra := &n.v6.ra
	cur := slices.IndexFunc(ra.routers, func(r *defaultRouter) bool { return r.addr == ra.current })
	if cur >= 0 && ra.current != avoid && n.probablyReachable(ra.current) {
		return ra.current
	}
	for _, r := range ra.routers {
		if r.addr != avoid && n.probablyReachable(r.addr) {
			return r.addr
		}
	}
	if cur < 0 {
		return ra.routers[0].addr
	}
	return ra.routers[(cur+1)%len(ra.routers)].addr
}

// probablyReachable reports whether router has a neighbour entry in any
// state but incomplete (RFC 4861 §6.3.6's "reachable or probably
// reachable"). On an IP link every router is: it is reached over the
// link itself, with nothing to resolve.
func (n *NIC) probablyReachable(router netip.Addr) bool {
	if n.nd == nil {
		return true
	}
	e, ok := n.nd.Lookup(router)
	return ok && e.State != neigh.Incomplete
}

// DefaultRouters returns the NIC's default router list, learned from
// router advertisements, in the order the routers were first heard; the
// first returned is the one the NIC's default route goes through.
func (n *NIC) DefaultRouters() []netip.Addr {
	n.s.mu.Lock()
	defer n.s.mu.Unlock()
	ra := &n.v6.ra
	var out []netip.Addr
	if ra.current.IsValid() {
		out = append(out, ra.current)
	}
	for _, r := range ra.routers {
		if r.addr != ra.current {
			out = append(out, r.addr)
		}
	}
	return out
}

// applyPrefix applies a prefix information option: an on-link route and,
// for autonomous /64 prefixes, a SLAAC address.
func (n *NIC) applyPrefix(p ipv6.PrefixInfo) {
	prefix := p.Prefix.Masked()
	if prefix.Addr().IsLinkLocalUnicast() || prefix.Addr().IsMulticast() || p.PreferredLifetime > p.ValidLifetime {
		return // RFC 4862 §5.5.3 a–c
	}
	if p.OnLink {
		valid := lifetime(p.ValidLifetime)
		if p.ValidLifetime == 0 {
			valid = -1
		}
		n.updateOnLink(prefix, valid)
	}
	if p.Autonomous && prefix.Bits() == 64 && p.ValidLifetime > 0 {
		preferred := lifetime(p.PreferredLifetime)
		if p.PreferredLifetime == 0 {
			preferred = deprecatedNow // not "forever", as lifetime's zero means
		}
		n.slaac(prefix, lifetime(p.ValidLifetime), preferred)
	}
}

// lifetime converts an NDP lifetime in seconds; infinite is zero.
func lifetime(sec uint32) time.Duration {
	if sec == ipv6.InfiniteLifetime {
		return 0
	}
	return time.Duration(sec) * time.Second
}

// updateOnLink adds or refreshes an on-link prefix route valid for valid
// (0: forever), or removes it when valid is negative.
func (n *NIC) updateOnLink(prefix netip.Prefix, valid time.Duration) {
	s := n.s
	s.mu.Lock()
	defer s.mu.Unlock()
	ra := &n.v6.ra
	if ra.prefixes == nil {
		ra.prefixes = make(map[netip.Prefix]neigh.Timer)
	}
	r := RouteEntry{Dst: prefix, NIC: n.id}
	if _, known := ra.prefixes[prefix]; !known && valid >= 0 && len(ra.prefixes) >= maxOnLinkPrefixes {
		return // bounded, as the router list is
	}
	if t := ra.prefixes[prefix]; t != nil {
		t.Stop()
	}
	if valid < 0 {
		delete(ra.prefixes, prefix)
		s.removeRouteLocked(r)
		return
	}
	s.addRouteLocked(r)
	var t neigh.Timer
	if valid > 0 {
		var self neigh.Timer
		self = s.v6.afterFunc(valid, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if ra.prefixes[prefix] == self {
				delete(ra.prefixes, prefix)
				s.removeRouteLocked(r)
			}
		})
		t = self
	}
	ra.prefixes[prefix] = t
}

// deprecatedNow is the preferred lifetime slaac takes for an advertised
// one of 0 seconds: the address is deprecated at once (RFC 4862 §5.5.3,
// how routers retire a prefix when renumbering).
const deprecatedNow time.Duration = -1

// slaac forms or refreshes the address of prefix with the NIC's interface
// identifier (RFC 4862 §5.5.3 d–e, with its two-hour rule). Lifetimes of
// zero are infinite; a preferred lifetime of deprecatedNow deprecates it.
func (n *NIC) slaac(prefix netip.Prefix, valid, preferred time.Duration) {
	now := n.s.v6.now()
	until := func(d time.Duration) time.Time {
		switch {
		case d == 0:
			return time.Time{}
		case d < 0:
			return now
		}
		return now.Add(d)
	}
	id, _ := n.interfaceID(prefix, 0)
	addr := netip.PrefixFrom(ipv6.AddrFromPrefix(prefix, id), 64)
	s := n.s
	s.mu.Lock()
	if a := n.v6.addrs[addr.Addr()]; a != nil {
		if !a.slaac {
			s.mu.Unlock()
			return
		}
		const twoHours = 2 * time.Hour
		remaining := a.validUntil.Sub(now)
		if valid == 0 || valid > twoHours || !a.validUntil.IsZero() && valid > remaining {
			a.validUntil = until(valid)
		} else if a.validUntil.IsZero() || remaining > twoHours {
			a.validUntil = now.Add(twoHours)
		}
		a.preferredUntil = until(preferred)
		n.setDeprecatedLocked(a, !a.preferredUntil.IsZero() && !now.Before(a.preferredUntil))
		s.mu.Unlock()
		n.armLifetime(a)
		return
	}
	s.mu.Unlock()
	s.stats.NDP.SLAACAddresses.Add(1)
	n.addAddress6(addr, true, until(valid), until(preferred))
}

// setDeprecatedLocked moves an assigned address between preferred and
// deprecated as its refreshed preferred lifetime says, republishing the
// sources when that changes.
func (n *NIC) setDeprecatedLocked(a *addr6, deprecated bool) {
	switch {
	case a.state == addrDeprecated && !deprecated:
		a.state = addrPreferred
	case a.state == addrPreferred && deprecated:
		a.state = addrDeprecated
	default:
		return
	}
	n.publishSources6Locked()
}

// armLifetime schedules a SLAAC address's deprecation and removal.
func (n *NIC) armLifetime(a *addr6) {
	s := n.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if n.v6.addrs[a.prefix.Addr()] != a || a.state == addrTentative {
		return
	}
	if a.timer != nil {
		a.timer.Stop()
	}
	next := a.validUntil
	if a.state == addrPreferred && !a.preferredUntil.IsZero() {
		next = a.preferredUntil
	}
	if next.IsZero() {
		return
	}
	a.timer = s.v6.afterFunc(next.Sub(s.v6.now()), func() { n.lifetimeEvent(a) })
}

// lifetimeEvent deprecates or removes a SLAAC address whose time came.
func (n *NIC) lifetimeEvent(a *addr6) {
	s := n.s
	now := s.v6.now()
	s.mu.Lock()
	if n.v6.addrs[a.prefix.Addr()] != a {
		s.mu.Unlock()
		return
	}
	expired := !a.validUntil.IsZero() && !now.Before(a.validUntil)
	if !expired && !a.preferredUntil.IsZero() && !now.Before(a.preferredUntil) && a.state == addrPreferred {
		a.state = addrDeprecated
		n.publishSources6Locked()
	}
	s.mu.Unlock()
	if expired {
		n.removeAddress6(a.prefix)
		return
	}
	n.armLifetime(a)
}

// applyRDNSS keeps the DNS servers an RDNSS option (RFC 8106) names.
func (n *NIC) applyRDNSS(o ipv6.NDPOption) {
	life, count, ok := o.RDNSSLifetime()
	if !ok {
		return
	}
	servers := make([]netip.Addr, 0, count)
	for i := range count {
		servers = append(servers, o.RDNSSServer(i))
	}
	n.s.mu.Lock()
	defer n.s.mu.Unlock()
	n.v6.ra.dns = servers
	n.v6.ra.dnsExpiry = time.Time{}
	if life != ipv6.InfiniteLifetime {
		n.v6.ra.dnsExpiry = n.s.v6.now().Add(time.Duration(life) * time.Second)
	}
}

// DNSServers returns the recursive DNS servers routers advertised (RFC
// 8106) and whose lifetime has not ended, for a resolver to use.
func (n *NIC) DNSServers() []netip.Addr {
	n.s.mu.Lock()
	defer n.s.mu.Unlock()
	ra := &n.v6.ra
	if !ra.dnsExpiry.IsZero() && n.s.v6.now().After(ra.dnsExpiry) {
		return nil
	}
	return slices.Clone(ra.dns)
}

// stopIPv6 stops the NIC's IPv6 timers.
func (n *NIC) stopIPv6() {
	s := n.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range n.v6.addrs {
		if a.timer != nil {
			a.timer.Stop()
		}
	}
	ra := &n.v6.ra
	if ra.rsTimer != nil {
		ra.rsTimer.Stop()
	}
	for _, r := range ra.routers {
		r.timer.Stop()
	}
	for _, t := range n.v6.idgen {
		t.Stop()
	}
	for _, t := range ra.prefixes {
		if t != nil {
			t.Stop()
		}
	}
}
