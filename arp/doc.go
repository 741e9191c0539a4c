// Package arp implements the Address Resolution Protocol (RFC 826) for IPv4
// over Ethernet: its packet format and a neighbour cache that resolves
// next-hop addresses, queues packets while resolving and expires entries.
// The cache sends through a small interface (Hooks), so the stack package
// wires it to a NIC, and queues any packet type with a length and a Release
// method (Pending). Its counters (Stats) may be shared by several caches.
//
// The cache follows Linux's neighbour table where it can:
//   - Entries are incomplete (a request is out, packets wait: at most
//     MaxPending of them, the oldest dropped first, as unres_qlen), then
//     reachable for ReachableTime after a confirmation, then stale: still
//     used, with a unicast probe at most once per RetransInterval.
//   - Unsolicited replies make no entry (arp_accept=0). A reply claiming a
//     new MAC for a resolved entry within LockTime (1s) of its last change
//     is ignored, so the first of competing replies wins (locktime); a
//     request aimed at us and a gratuitous ARP move it at once.
//   - The table is bounded by Linux's three thresholds, MinEntries,
//     SoftEntries and MaxEntries (gc_thresh1/2/3, 128/512/1024 by
//     default), collected when an entry is made with a cost that does not
//     grow with the table; at most MaxIncomplete (half the table) entries
//     are being resolved at once, so unresolvable destinations cannot push
//     out the neighbours that answer. See Cache for the details and where
//     they differ from Linux.
package arp
