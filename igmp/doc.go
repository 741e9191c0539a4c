// Package igmp is the host side of IGMP: one interface's multicast group
// membership with source filters, reported to routers with IGMPv3 (RFC
// 3376) and, when an older querier is heard, IGMPv2 (RFC 2236) or IGMPv1
// (RFC 1112).
//
// A Host is a state machine with no link, buffers or goroutines of its
// own. Sockets tell it how their own filter for a group changes
// (ChangeMembership); it keeps per-source counts so that the interface
// state is the merge RFC 3376 3.2 defines, and every change of that state
// becomes a state-change report, repeated Robustness times. Queries handed
// to Receive schedule answers after random delays (up to the query's
// maximum, at least a tenth of a second), and repeated queries neither
// multiply nor hasten answers, as in Linux. What a query makes the Host
// remember is bounded by its own filters and fixed caps
// (MaxQuerySourcesPerGroup, MaxQuerySourcesPerHost), so hostile queries
// cost neither memory nor big reports.
//
// The Host reaches the outside world only through its Hooks: Send hands
// out complete IGMP messages, which the caller wraps in an IPv4 header
// (TTL 1, Router Alert) and a link frame; Schedule asks to have Fire
// called when the next report is due. Time comes from Config.Now, so
// tests drive a Host with a manual clock and call Fire themselves.
//
// In tapnet's layers the package sits beside arp, below stack: each
// stack.NIC owns a Host, passes it the IGMP messages it receives, frames
// what it sends, runs its timer, and asks it which groups and sources to
// accept. The message formats live in package ipv4 (ParseIGMP, PutIGMP,
// PutIGMPv3Report). The state machine itself is shared with package mld,
// IGMP's IPv6 twin, which has the same shape: this package only reads and
// writes IGMP's messages.
package igmp
