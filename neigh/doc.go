// Package neigh is a neighbour table: it maps next-hop IP addresses to
// link (MAC) addresses for ARP and IPv6 neighbour discovery alike,
// with the neighbour unreachability detection (NUD) state machine of
// RFC 4861 §7.3 as Linux runs it. It is a pure state machine: the protocol
// above it parses packets and calls Update, the sender calls Resolve, and
// the table asks for solicitations and hands back packets through Hooks.
// Its clock and timers can be replaced (Config.Now, Config.AfterFunc), so
// every transition can be tested without sleeping.
//
// States and timers (Linux's knobs in parentheses, defaults as Linux's):
//   - Incomplete: Resolve for an unknown address makes the entry, queues
//     the packet and sends a multicast (ARP: broadcast) solicitation,
//     repeated every RetransTime (retrans_time, 1s) up to
//     MaxMulticastProbes (mcast_solicit, 3). Packets wait, at most
//     MaxPending and MaxPendingBytes of them (unres_qlen, unres_qlen_bytes),
//     the oldest dropped first; an answer sends them in order. No answer:
//     the entry is removed and its packets go to Hooks.Failed, so the
//     stack can report EHOSTUNREACH (Linux's NUD_FAILED).
//   - Reachable: a solicited answer or an upper-layer confirmation
//     (Confirm) was heard within the reachable time, a random 0.5–1.5 ×
//     BaseReachableTime (base_reachable_time, 30s) drawn every 300s.
//   - Stale: the address is unconfirmed but usable: the reachable time
//     passed, or an unsolicited packet gave a new address.
//   - Delay: a packet was sent on a stale address. If nothing confirms
//     the neighbour within DelayFirstProbeTime (delay_first_probe_time, 5s)
//     the entry enters Probe.
//   - Probe: unicast solicitations every RetransTime, up to
//     MaxUnicastProbes (ucast_solicit, 3); packets still use the address.
//     No answer: the entry is removed (FAILED) and Hooks.Failed is told.
//
// Update applies RFC 4861 §7.2.5's rules for an advertisement's Solicited,
// Override and Router flags, and the rules for unsolicited link addresses
// (§7.2.3, §6.3.4, §8.3); LockTime (locktime) keeps the first of competing
// ARP replies. Table documents the bounds: the garbage collection
// thresholds MinEntries, SoftEntries and MaxEntries (gc_thresh1/2/3,
// 128/512/1024), StaleTime (gc_stale_time) and MaxIncomplete, with an LRU
// list so that eviction costs the same at any size.
//
// Where it differs from Linux:
//   - Reachable becomes Stale when the entry is next looked at, not from
//     a timer: the same to every observer, and the send path arms no timer.
//   - Confirm makes an entry reachable at once, as RFC 4861 §7.3.3 says;
//     Linux only notes the time and lets the Delay timer find it.
//   - A failed entry is removed at once rather than kept in NUD_FAILED
//     until garbage collection; the next packet starts a new resolution.
//   - A full table evicts in LRU order instead of refusing new entries
//     (see Table). Entries are never permanent or NOARP.
//   - Application probes (app_solicit) and multicast reprobes
//     (mcast_resolicit) are not implemented.
package neigh
