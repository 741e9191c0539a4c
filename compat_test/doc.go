// Package compat checks that tapnet's gonet conns behave like the kernel's
// *net.UDPConn as far as user code can tell.
//
// One table of scenarios (scenarios_test.go) runs against every subject. A
// subject is two hosts: A runs the implementation under test, B is the peer
// it talks to. A scenario opens conns on A and B, performs operations and
// records an Observation: one line per fact user code can see (bytes, n,
// flags, addresses, errors, ordering, whether a blocked call returned).
// Addresses are recorded by role ("A:srv", "B:peer", "A:eph" for an unnamed
// ephemeral port of A), errors by structure (OpError fields, wrapped
// SyscallError and errno, sentinel identity, Timeout(), errors.Is) and by
// message with addresses replaced by roles, so observations of different
// subjects compare as plain strings.
//
// The kernel subject (net.ListenUDP on 127.0.0.1 for both hosts) runs first.
// Its observations are checked against the expectations written in the
// table, which keeps the table honest, and become the baseline every other
// subject is compared with.
//
// The table runs once per family (families in compat_test.go), each
// family's kernel run the baseline of its other subjects; only the IPv4
// one is also checked against the expectations written in the table:
//
//   - IPv4 (no suffix): the helpers open "udp" on IPv4 addresses (kernel
//     on 127.0.0.1; tapnet on 192.0.2.2 and 192.0.2.1).
//   - -udp6: "udp6" on IPv6 addresses (kernel on ::1; tapnet on
//     2001:db8::2 and 2001:db8::1, the TAP's kernel side in its namespace).
//   - -dual-v4 and -dual-v6: A's listeners open "udp" on the unspecified
//     address, as net.ListenUDP("udp", &net.UDPAddr{Port: p}) does: one
//     dual-stack AF_INET6 socket (IPV6_V6ONLY off) whose LocalAddr is
//     [::]:port. Its peers are IPv4 (seen as IPv4-mapped addresses,
//     "/iplen=16" and "/4in6" in observations) or IPv6. Scenarios send to
//     where a conn is reached (env.at: the host's address for a wildcard
//     conn), not to its LocalAddr, and a wildcard LocalAddr shows as
//     "any:srv" for role "A:srv". Scenarios tagged "dual" run only here:
//     they use the hosts' addresses of the other version (AltA, AltB) to
//     talk to one socket over both.
//
// Scenarios tagged "ipv4" ask for IPv4 addresses and are left out of the
// IPv6 families.
//
// The multicast table (multicast_test.go) runs twice: over IPv4 groups
// (239.1.2.3, 239.1.2.4) with x/net/ipv4's PacketConn, and over IPv6
// groups (ff0e::db8:1, ff3e::8000:2) with x/net/ipv6's PacketConn on the
// kernel and gonet.PacketConn6 on tapnet (the MLD table, want6). The
// kernel's hosts are namespaces joined by a veth pair, tapnet's three
// stacks on a hub; scenarios drive both families through mcConn, which
// names TTL and hop limit alike, and labels read in the family's names
// (MulticastHopLimit for MulticastTTL).
//
// # Adding a subject
//
// Write a func returning a Subject and append it in subjects()
// (compat_test.go):
//
//   - ListenA/DialA wrap gonet.ListenUDP/gonet.DialUDP on stack A;
//     ListenB/DialB open the peer's conns (a second tapnet stack for
//     "tapnet-pipe", kernel sockets inside the namespace for "tapnet-tap").
//     Return a nil interface, not a typed nil, on error.
//   - AddrA/AddrB are the hosts' addresses of the family (192.0.2.0/24 or
//     198.51.100.0/24, 2001:db8::/32 for TAP tests); Network is what the
//     helpers open. Wildcard (A listens on the unspecified address) and
//     AltA/AltB (the other version's addresses) come from the family.
//   - Setup, if set, runs before every scenario, e.g. to build fresh stacks
//     so that ICMP rate limits and port reservations do not leak between
//     scenarios; register teardown with t.Cleanup.
//   - Settle is how long in-flight datagrams may take to reach a queue.
//   - Skip maps a scenario name or tag to a reason, e.g.
//     Skip: map[string]string{"frag": "no fragmentation yet"}.
//   - Want maps a scenario name to the observation the subject produces
//     on purpose instead of the kernel's; list every entry below.
//
// Also add the gonet line beside the *net.UDPConn assertion on UDPConn.
// To write a new scenario, add a row with want: nil and run
//
//	go test ./compat_test -run 'TestCompat/kernel/NAME' -compat.print
//
// then check each printed line against what Linux and net should do before
// pasting it in. Send to e.at(conn), never to its LocalAddr, and bind A
// with e.bindA, so that the row runs on the dual-stack families too.
// -compat.selfcheck compares a second kernel run with the first,
// exercising the comparison path.
//
// # Deliberate differences from the kernel
//
//   - network/udp6 (IPv4 family) asks "udp6" for IPv4 addresses. The
//     errors depend on the host (bind EINVAL for an IPv4 address on a
//     v6-only socket, connect ENETUNREACH, or EAFNOSUPPORT without IPv6),
//     so the scenario compares only the outer *net.OpError and needs no
//     Want entry.
//   - size/65507-max-payload is tagged "frag": on a 1500-byte link it needs
//     fragmentation and reassembly. Kernel loopback (MTU 65536) does not.
//   - buffers/receive-overflow-drops compares only the shape (some queued,
//     some dropped, oldest kept in order, a larger SetReadBuffer queues
//     more); the kernel charges per-datagram overhead, tapnet need not.
//   - Errors from the AddrPort write methods carry net's unexported
//     addrPortUDPAddr as OpError.Addr. Another package cannot name that
//     type, so unexported address types are recorded as
//     "unexported(<Network()> <String()>)": gonet should use its own
//     unexported type wrapping netip.AddrPort with Network() "udp".
//
// # Kernel behaviour worth knowing (checked by the table)
//
//   - ReadMsgUDP and ReadMsgUDPAddrPort return 0.0.0.0:0 (valid, non-nil)
//     as the address on every error, and n = -1 when the error ends a wait
//     (deadline fired or conn closed while blocked); n = 0 when the call
//     fails before waiting.
//   - Read with an empty buffer returns 0, nil at once without consuming
//     anything; ReadFrom and ReadMsgUDP with an empty buffer receive, and so
//     consume, a whole datagram (ReadMsgUDP flags it MSG_TRUNC).
//   - A pending ICMP port unreachable on a connected conn is reported once,
//     by the next Read or the next Write, as SyscallError{"read"/"write",
//     ECONNREFUSED}; unconnected conns never see it.
//   - SyscallError names follow the syscall net used: read/write (Read,
//     Write), recvfrom, recvmsg, sendto (WriteTo*), sendmsg (WriteMsg*),
//     bind, connect.
//   - WriteTo(b, nil) fails with bare EINVAL; WriteTo(b, (*UDPAddr)(nil)),
//     WriteToUDP(b, nil) and the zero AddrPort fail with "missing address".
//   - OpError.Addr for WriteMsgUDP on a connected conn with nil addr is nil
//     (Write uses RemoteAddr); Set* after Close fail with Op "set",
//     Source nil, Addr LocalAddr.
//   - OpError.Net is the network the user passed ("udp4"); Addr.Network()
//     is always "udp".
package compat
