package stack

import (
	"net/netip"
	"syscall"

	"github.com/tapnet/tapnet/arp"
	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/ipv4"
)

// handleARP processes an ARP packet whose frame came from ethSrc; unicast
// says it was sent to our MAC rather than broadcast, which decides whether
// a reply proves its sender reachable.
func (n *NIC) handleARP(b *buffer.Buffer, ethSrc ethernet.MAC, unicast bool) {
	st := &n.s.stats
	defer b.Release()
	st.ARP.Received.Add(1)
	p, err := arp.Parse(b.Bytes())
	if err != nil {
		st.ARP.Malformed.Add(1)
		return
	}
	sip, smac := p.SenderIP(), p.SenderMAC()
	if smac.IsMulticast() || (sip.IsValid() && !sip.IsUnspecified() && ipv4.IsMartianSource(sip)) {
		st.ARP.MartianSource.Add(1)
		return
	}
	if n.acd.active.Load() > 0 {
		n.acdInput(p, smac)
	}
	if n.hasAddress(sip) {
		// Someone else claims our address: defend it when it uses
		// conflict detection, else keep it but say so.
		if smac != n.mac {
			st.ARP.Conflicts.Add(1)
			n.s.log.Warn("tapnet: ARP address conflict", "addr", sip, "mac", smac.String())
			n.defend(sip, smac)
		}
		return
	}
	tip := p.TargetIP()
	forUs := n.hasAddress(tip)
	if !sip.IsUnspecified() {
		n.arp.Learn(sip, smac, arp.Heard{
			Op:         p.Op(),
			ForUs:      forUs,
			Unicast:    unicast,
			Gratuitous: isGratuitous(p),
		})
	}
	if p.Op() != arp.OpRequest {
		return
	}
	if !forUs {
		st.ARP.NotForUs.Add(1)
		return
	}
	n.sendARP(arp.OpReply, ethSrc, tip, smac, sip)
	st.ARP.RepliesSent.Add(1)
}

// isGratuitous reports whether p announces its sender's own address:
// sender and target addresses equal and, for a reply, sender and target
// MACs too (Linux's arp_is_garp).
func isGratuitous(p arp.Packet) bool {
	if p.SenderIP() != p.TargetIP() {
		return false
	}
	return p.Op() == arp.OpRequest || p.TargetMAC() == p.SenderMAC()
}

// sendARP builds and sends an ARP packet from the receive path or a timer,
// so it never blocks.
func (n *NIC) sendARP(op uint16, ethDst ethernet.MAC, sip netip.Addr, tmac ethernet.MAC, tip netip.Addr) {
	b := buffer.Get(ethernet.HeaderLen + arp.PacketLen)
	b.SetLen(arp.PacketLen)
	arp.Put(b.Bytes(), op, n.mac, sip, tmac, tip)
	ethernet.PutHeader(b.Prepend(ethernet.HeaderLen), ethDst, n.mac, ethernet.TypeARP)
	n.tryWrite(b)
}

func (n *NIC) sendARPRequest(target netip.Addr, dst ethernet.MAC) {
	src := n.primaryAddress(target)
	if !src.IsValid() {
		return
	}
	ethDst := dst
	if dst == (ethernet.MAC{}) {
		ethDst = ethernet.Broadcast
	}
	n.sendARP(arp.OpRequest, ethDst, src, ethernet.MAC{}, target)
}

// flushResolved sends the packets that waited for a neighbour. It runs on
// the receive path, so writes do not block.
func (n *NIC) flushResolved(_ netip.Addr, mac ethernet.MAC, pkts []arp.Pending) {
	for _, pending := range pkts {
		p := pending.(*buffer.Buffer) // what resolveAndWrite queued
		n.putLinkHeader(p, mac)
		n.tryWrite(p)
	}
}

// resolutionFailed reports EHOSTUNREACH to the senders of packets whose next
// hop never answered, as Linux does through a local ICMP host unreachable.
// A connected socket sees it on its next operation.
func (n *NIC) resolutionFailed(_ netip.Addr, pkts []arp.Pending) {
	for _, pending := range pkts {
		p := pending.(*buffer.Buffer) // what resolveAndWrite queued
		n.s.reportLocalError(n, p.Bytes(), ControlError{
			Errno: syscall.EHOSTUNREACH, Hard: true,
			Type: ipv4.ICMPDestUnreachable, Code: ipv4.CodeHostUnreachable,
		})
		p.Release()
	}
}

func (n *NIC) tryWrite(b *buffer.Buffer) {
	if n.writeFrame(b, false) == nil {
		n.s.stats.Link.TxFrames.Add(1)
	} else {
		n.s.stats.Link.TxDropped.Add(1)
	}
}
