package stack

import (
	"net/netip"
	"time"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/igmp"
	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/ipv4"
)

// This file is the glue between a NIC and its IGMP host (package igmp):
// received IGMP messages go to the host, the messages it sends get their
// IPv4 and Ethernet headers here, and one timer per NIC, armed by the
// host's Schedule hook, calls its Fire. The host is closed (and waits for
// a Fire in progress) before the NIC's link, so nothing is sent after
// Stack.Close.

// newIGMPHost makes the NIC's IGMP host. The loopback NIC's host is
// silent: it tracks membership for local delivery and never reports.
func (n *NIC) newIGMPHost(cfg igmp.Config) {
	hooks := igmp.Hooks{Send: n.sendIGMP, Schedule: n.scheduleIGMP}
	if n.loopback {
		hooks = igmp.Hooks{}
	}
	n.igmp = igmp.New(cfg, n.MTU(), hooks, &n.s.stats.IGMP)
}

// scheduleIGMP is the host's Schedule hook. The host calls it under its
// lock, one call at a time, which also guards igmpTimer.
func (n *NIC) scheduleIGMP(d time.Duration) {
	switch {
	case d < 0:
		if n.igmpTimer != nil {
			n.igmpTimer.Stop()
		}
	case n.igmpTimer == nil:
		n.igmpTimer = time.AfterFunc(d, n.igmp.Fire)
	default:
		n.igmpTimer.Reset(d)
	}
}

// sendIGMP is the host's Send hook: it frames msg in an IPv4 header with
// Router Alert, TTL 1 and TOS 0xc0, and (on Ethernet) a header to the
// group's MAC, and queues it without blocking.
func (n *NIC) sendIGMP(dst netip.Addr, msg []byte) {
	total := ipv4.RouterAlertHeaderLen + len(msg)
	b := buffer.Get(total)
	b.SetLen(total)
	p := b.Bytes()
	// A host without an address reports from 0.0.0.0 (RFC 3376 4.2.13).
	src := n.primaryAddress(dst)
	if !src.IsValid() {
		src = netip.IPv4Unspecified()
	}
	ipv4.PutRouterAlertHeader(p, ipv4.Fields{TOS: ipv4.IGMPTOS, TotalLen: total, ID: uint16(n.s.ipID.Add(1)),
		DF: true, TTL: 1, Protocol: ipv4.ProtocolIGMP, Src: src, Dst: dst})
	copy(p[ipv4.RouterAlertHeaderLen:], msg)
	n.putLinkHeader(b, ethernet.MulticastIPv4(dst.As4()))
	n.s.stats.IP.Sent.Add(1)
	n.tryWrite(b)
}

// handleIGMP hands an IGMP message to the NIC's host, which counts what
// it cannot parse. It releases b.
func (s *Stack) handleIGMP(n *NIC, b *buffer.Buffer, hl int, _ castKind) {
	defer b.ReleaseChain()
	if n.loopback {
		return
	}
	if b.Next != nil {
		c := cloneChain(b)
		defer c.Release()
		b = c
	}
	_ = n.igmp.Receive(b.Bytes()[hl:]) // errors are counted in IGMPStats
}

// IGMP returns the NIC's IGMP host: its group memberships, version and
// counters.
func (n *NIC) IGMP() *igmp.Host { return n.igmp }

// acceptsGroup reports whether the NIC listens to a multicast group: the
// all-hosts group, or one some socket joined.
func (n *NIC) acceptsGroup(g netip.Addr) bool {
	if g.Is6() {
		return n.mld.IsMember(g)
	}
	return n.igmp.IsMember(g)
}

// AcceptsMulticast reports whether the NIC's interface state for group
// admits datagrams from src: what a socket that joined nothing itself
// receives with IP_MULTICAST_ALL.
// IPv6 groups are MLD's.
func (n *NIC) AcceptsMulticast(group, src netip.Addr) bool {
	if group.Is6() {
		return n.mld.Accepts(group, src)
	}
	return n.igmp.Accepts(group, src)
}

// MulticastGroups returns the NIC's interface state for every IPv4 group
// it is a member of; MLD().Groups() has the IPv6 ones.
func (n *NIC) MulticastGroups() map[netip.Addr]igmp.Filter { return n.igmp.Groups() }

// IGMPStats returns the IGMP counters the NIC adds to: the stack's
// Stats().IGMP, shared by all its NICs.
func (n *NIC) IGMPStats() *igmp.Stats { return n.igmp.Stats() }

// IGMPVersion returns the version the NIC currently reports with: 3, or 2
// or 1 while an older querier was heard recently (or when forced).
func (n *NIC) IGMPVersion() int { return n.igmp.Version() }

// ChangeMembership replaces one socket's filter for group on the NIC, from
// what it was (the zero filter when it was not a member) to what it is now
// (the zero filter when it leaves). Changes of the NIC's merged state are
// reported with IGMP, or with MLD for an IPv6 group (igmp.Filter and
// mld.Filter are both multicast.Filter).
func (n *NIC) ChangeMembership(group netip.Addr, from, to igmp.Filter) {
	if group.Is6() {
		n.mld.ChangeMembership(group, from, to)
		return
	}
	n.igmp.ChangeMembership(group, from, to)
}

// DefaultMulticastNIC returns the NIC used for a group when a socket names
// none: the one the route table picks for it, else the first NIC after lo,
// as FindRoute does for sending. It is nil when the stack has no NIC.
func (s *Stack) DefaultMulticastNIC(group netip.Addr) *NIC {
	n := s.firstNIC(0)
	if e, ok := s.lookupRoute(group, 0); ok {
		n = s.NIC(e.NIC)
	}
	return n
}
