package igmp

import (
	"net/netip"
	"time"

	"github.com/tapnet/tapnet/internal/mcast"
	"github.com/tapnet/tapnet/ipv4"
)

// Host is one interface's IGMP host: its group memberships and the reports
// that tell routers about them. It is safe for concurrent use.
type Host struct {
	core  *mcast.Host
	stats *Stats // may be shared with other hosts
	// recs is PutReport's scratch, used under the core's Fire lock.
	recs []ipv4.GroupRecordFields
}

// New returns a host for an interface whose link MTU is mtu (reports are
// packed to fit it; values below the IPv4 minimum of 68 count as 68) that
// counts in stats, or in counters of its own when stats is nil.
func New(cfg Config, mtu int, hooks Hooks, stats *Stats) *Host {
	if stats == nil {
		stats = new(Stats)
	}
	h := &Host{stats: stats}
	h.core = mcast.New(cfg.coreConfig(), h.wire(), mtu, hooks, mcast.Counters{
		ReportsSent:         &stats.ReportsSent,
		LeavesSent:          &stats.LeavesSent,
		QuerySourcesIgnored: &stats.QuerySourcesIgnored,
		QuerySourcesDropped: &stats.QuerySourcesDropped,
	})
	return h
}

// SetMTU changes the MTU later reports are packed for, as when the
// interface's MTU changes (values below the minimum count as it).
func (h *Host) SetMTU(mtu int) { h.core.SetMTU(mtu) }

// wire describes IGMP's messages to the shared core.
func (h *Host) wire() mcast.Wire {
	return mcast.Wire{
		MinMTU:          minMTU,
		HeaderLen:       ipv4.RouterAlertHeaderLen,
		ReportHeaderLen: ipv4.IGMPv3ReportMinLen,
		RecordHeaderLen: ipv4.IGMPGroupRecordMinLen,
		SourceLen:       4,
		MessageLen:      ipv4.IGMPLen,
		ReportsTo:       ipv4.AllIGMPv3RoutersGroup,
		LeavesTo:        ipv4.AllRoutersGroup,
		AllNodes:        ipv4.AllHostsGroup,
		PutMessage:      putMessage,
		PutReport:       h.putReport,
	}
}

// minMTU is the smallest MTU reports are packed for: the IPv4 minimum,
// where a report still carries seven sources.
const minMTU = 68

// putMessage writes a v1 or v2 report or a Leave Group.
func putMessage(b []byte, kind mcast.MessageKind, group netip.Addr) {
	typ := uint8(ipv4.IGMPv2MembershipReport)
	switch kind {
	case mcast.ReportV1:
		typ = ipv4.IGMPv1MembershipReport
	case mcast.Leave:
		typ = ipv4.IGMPv2LeaveGroup
	}
	ipv4.PutIGMP(b, typ, 0, group)
}

// putReport writes a v3 report; the core calls it under its Fire lock.
func (h *Host) putReport(b []byte, recs []mcast.Record) {
	h.recs = h.recs[:0]
	for _, r := range recs {
		h.recs = append(h.recs, ipv4.GroupRecordFields(r))
	}
	ipv4.PutIGMPv3Report(b, h.recs)
	clear(h.recs) // keep no source lists alive between reports
}

// Close withdraws the Schedule request, waits for a Fire in progress and
// makes every later call a no-op, so that nothing is sent once it returns.
func (h *Host) Close() { h.core.Close() }

// Stats returns the live counters the host adds to.
func (h *Host) Stats() *Stats { return h.stats }

// IsMember reports whether the interface listens to a group at all: the
// all-hosts group, or one some socket joined.
func (h *Host) IsMember(addr netip.Addr) bool { return h.core.IsMember(addr) }

// Accepts reports whether the interface state for a group admits
// datagrams from src: what a socket that joined nothing itself receives
// with IP_MULTICAST_ALL.
func (h *Host) Accepts(addr, src netip.Addr) bool { return h.core.Accepts(addr, src) }

// Groups returns the interface state of every group the host is a member
// of.
func (h *Host) Groups() map[netip.Addr]Filter {
	out := make(map[netip.Addr]Filter)
	h.core.Groups(func(a netip.Addr, f Filter) { out[a] = f })
	return out
}

// Version returns the version the host currently reports with: 3, or 2
// or 1 while an older querier was heard recently (or when forced).
func (h *Host) Version() int { return int(h.core.Version()) }

// PendingQuerySources returns how many sources of group-and-source-specific
// queries the host keeps for answers not yet sent: at most
// MaxQuerySourcesPerHost.
func (h *Host) PendingQuerySources() int { return h.core.PendingQuerySources() }

// ChangeMembership replaces one socket's filter for a group, from what it
// was (the zero Filter when it was not a member) to what it is now (the
// zero Filter when it leaves). Changes of the merged interface state are
// reported.
func (h *Host) ChangeMembership(addr netip.Addr, from, to Filter) {
	h.core.ChangeMembership(addr, from, to)
}

// Deadline returns when Fire next has something to do; the zero time when
// nothing is pending.
func (h *Host) Deadline() time.Time { return h.core.Deadline() }

// Fire performs every action that is due by Config.Now and sends the
// messages they call for. Call it when Schedule asks or once Deadline has
// passed; an early call does nothing.
func (h *Host) Fire() { h.core.Fire() }
