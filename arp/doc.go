// Package arp implements the Address Resolution Protocol (RFC 826) for IPv4
// over Ethernet: its packet format, and a neighbour cache (Cache) that
// resolves next-hop addresses, queues packets while resolving and expires
// entries. The cache is a neigh.Table, the neighbour table IPv6 shares,
// fed with what ARP packets say; it sends through a small interface
// (Hooks), so the stack package wires it to a NIC, and queues any packet
// type with a length and a Release method (Pending). Its counters (Stats)
// may be shared by several caches.
//
// The cache follows Linux's neighbour table (package neigh details the
// states, timers and bounds):
//   - Entries are incomplete (broadcast requests every RetransInterval,
//     Retries of them, while packets wait: at most MaxPending, the oldest
//     dropped first, as unres_qlen), then reachable for ReachableTime
//     after a confirmation, then stale: still used. Sending to a stale
//     entry starts Delay; unconfirmed after DelayFirstProbeTime (5s) it
//     is probed with UnicastProbes unicast requests, and removed if none
//     is answered, so a neighbour that went away is forgotten as on Linux.
//   - Only a reply unicast to us confirms its sender (reachable). A
//     request aimed at us makes its sender's entry stale, not reachable,
//     as Linux's neigh_event_ns: the first packet to it starts Delay.
//     Requests for other hosts and broadcast replies do not assert
//     reachability either (arp_process): they only update an existing
//     entry, stale when they change or resolve it. Unsolicited replies
//     make no entry (arp_accept=0). A reply claiming a
//     new MAC for a resolved entry within LockTime (1s) of its last change
//     is ignored, so the first of competing replies wins (locktime); a
//     request aimed at us and a gratuitous ARP move it at once.
//   - The table is bounded by Linux's three thresholds, MinEntries,
//     SoftEntries and MaxEntries (gc_thresh1/2/3, 128/512/1024 by
//     default), collected when an entry is made with a cost that does not
//     grow with the table; at most MaxIncomplete (half the table) entries
//     are being resolved at once, so unresolvable destinations cannot push
//     out the neighbours that answer.
package arp
