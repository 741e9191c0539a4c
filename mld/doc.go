// Package mld is the host side of MLD: one interface's IPv6 multicast
// listening with source filters, reported to routers with MLDv2 (RFC
// 3810) and, when an MLDv1 querier is heard, MLDv1 (RFC 2710).
//
// MLDv2 is IGMPv3's IPv6 twin and MLDv1 IGMPv2's, and a Host here has the
// shape of an igmp.Host; the state machine is the same code. A Host has no
// link, buffers or goroutines of its own. Sockets tell it how their own
// filter for a group changes (ChangeMembership); it merges them into the
// interface state RFC 3810 4.2 defines, and every change of that state
// becomes a state-change report, repeated Robustness times (the first at
// once, the others within the Unsolicited Report Interval, 1 s). Queries
// handed to Receive schedule answers after random delays up to the
// query's Maximum Response Delay (at least a tenth of a second), and
// repeated queries neither multiply nor hasten answers. What a query
// makes the Host remember is bounded by its own filters and fixed caps
// (MaxQuerySourcesPerGroup, MaxQuerySourcesPerHost). An MLDv1 query puts
// the Host in MLDv1 mode for the Older Version Querier Present Timeout
// (260 s by default, or what the querier's QRV and QQIC make it): reports
// then go to their group and a Done to ff02::2 when we were the last
// reporter.
//
// Like Linux, a Host never reports the link-scope all-nodes group ff02::1
// (which it is always in) nor groups whose scope is below link-local
// (interface-local ff01::/16 and the reserved scope 0), though sockets may
// join them. MLDv2 reports go to ff02::16.
//
// The Host reaches the outside world only through its Hooks: Send hands
// out MLD messages, which the caller completes with their checksum
// (ipv6.PutChecksum, over the source it picks) and wraps in an IPv6 header
// with hop limit 1 and a hop-by-hop header carrying the Router Alert
// option (ipv6.PutRouterAlertHopByHop); Schedule asks to have Fire called
// when the next report is due. Time comes from Config.Now, so tests drive
// a Host with a manual clock and call Fire themselves.
//
// In tapnet's layers the package sits beside igmp, below stack: a NIC
// would own one Host for IPv6 as it owns an igmp.Host for IPv4, hand it
// the MLD messages its ICMPv6 input receives, frame what it sends, run its
// timer, and ask it which groups and sources to accept. The message
// formats live in package ipv6 (ParseMLD, PutMLDv1, PutMLDv2Report).
package mld
