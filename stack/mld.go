package stack

import (
	"net/netip"
	"time"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/ipv6"
	"github.com/tapnet/tapnet/mld"
)

// This file is the glue between a NIC and its MLD host (package mld), as
// igmp.go is for IGMP: the messages the host sends get their checksum, a
// hop-by-hop header with Router Alert, an IPv6 header with hop limit 1 from
// the link-local address (:: while there is none, RFC 3810 §5.2.13) and an
// Ethernet header here; one timer per NIC calls its Fire.

// newMLDHost makes the NIC's MLD host; lo's is silent.
func (n *NIC) newMLDHost(cfg mld.Config) {
	hooks := mld.Hooks{Send: n.sendMLD, Schedule: n.scheduleMLD}
	if n.loopback || !n.v6.enabled {
		hooks = mld.Hooks{}
	}
	n.mld = mld.New(cfg, n.MTU(), hooks, &n.s.stats.MLD)
}

// scheduleMLD is the host's Schedule hook, called under its lock, which
// also guards mldTimer.
func (n *NIC) scheduleMLD(d time.Duration) {
	switch {
	case d < 0:
		if n.mldTimer != nil {
			n.mldTimer.Stop()
		}
	case n.mldTimer == nil:
		n.mldTimer = time.AfterFunc(d, n.mld.Fire)
	default:
		n.mldTimer.Reset(d)
	}
}

// sendMLD is the host's Send hook. It never blocks.
func (n *NIC) sendMLD(dst netip.Addr, msg []byte) {
	src := netip.IPv6Unspecified()
	if ll, ok := n.LinkLocalAddress(); ok {
		src = ll
	}
	total := ipv6.HeaderLen + ipv6.RouterAlertHopByHopLen + len(msg)
	b := buffer.Get(total)
	b.SetLen(total)
	p := b.Bytes()
	ipv6.Put(p, ipv6.Fields{PayloadLen: total - ipv6.HeaderLen, NextHeader: ipv6.ProtocolHopByHop,
		HopLimit: 1, Src: src, Dst: dst})
	ipv6.PutRouterAlertHopByHop(p[ipv6.HeaderLen:], ipv6.ProtocolICMPv6, ipv6.RouterAlertMLD)
	m := p[ipv6.HeaderLen+ipv6.RouterAlertHopByHopLen:]
	copy(m, msg)
	ipv6.PutChecksum(m, src, dst)
	n.putLinkHeader(b, ethernet.MAC(ipv6.MulticastMAC(dst)))
	n.s.stats.IPv6.Sent.Add(1)
	n.tryWrite(b)
}

// handleMLD hands an MLD message (an ICMPv6 message whose checksum was
// verified) to the NIC's host, which counts what it rejects.
func (n *NIC) handleMLD(m []byte, src netip.Addr) {
	if n.loopback {
		return
	}
	_ = n.mld.Receive(m, src)
}

// MLD returns the NIC's MLD host: its IPv6 group memberships, version and
// counters.
func (n *NIC) MLD() *mld.Host { return n.mld }

// joinGroup6 and leaveGroup6 add and remove the stack's own interest in a
// group (solicited-node groups of its addresses), as one more listener.
func (n *NIC) joinGroup6(g netip.Addr) {
	n.mld.ChangeMembership(g, mld.Filter{}, mld.Filter{Mode: mld.Exclude})
}

func (n *NIC) leaveGroup6(g netip.Addr) {
	n.mld.ChangeMembership(g, mld.Filter{Mode: mld.Exclude}, mld.Filter{})
}
