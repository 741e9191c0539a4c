// Package gonet gives tapnet's UDP endpoints the shape of the standard
// library's sockets, so that code written for net runs on a tapnet stack by
// changing one call:
//
//	conn, err := net.ListenUDP("udp", &net.UDPAddr{Port: 53})       // kernel
//	conn, err := gonet.ListenUDP(s, "udp", &net.UDPAddr{Port: 53})  // tapnet stack s
//
// ListenUDP, DialUDP, ListenPacket, Dial and ListenMulticastUDP mirror
// their net counterparts; NewPacketConn and NewPacketConn6 wrap a *UDPConn
// in the method sets of golang.org/x/net/ipv4's and x/net/ipv6's
// *PacketConn for multicast and per-datagram IP control. InterfaceAddrs
// lists a NIC's addresses as (*net.Interface).Addrs does.
// Resolver returns a *net.Resolver whose DNS queries go over the stack to
// the servers given (UDP only), so LookupNetIP, LookupHost and the rest
// work on names; LookupNetIPSearch applies a search list such as a DHCP
// lease's.
// *UDPConn has every method of *net.UDPConn but SyscallConn and File, and
// implements net.PacketConn and net.Conn. Errors are the ones net returns:
// *net.OpError with the same Op, Net, Source and Addr, wrapping
// net.ErrClosed after Close, os.ErrDeadlineExceeded (Timeout() true) when a
// deadline passes, *os.SyscallError around the errno the kernel would give
// (ECONNREFUSED after an ICMP port unreachable on a connected conn, reported
// once; EHOSTUNREACH when the neighbour never answers ARP; EMSGSIZE;
// EADDRINUSE; EDESTADDRREQ; EINVAL for a non-UDP address), and
// net.ErrWriteToConnected. compat_test checks all of this side by side with
// the kernel.
//
// Reads block on the endpoint's receive queue; deadlines are timers that
// wake it, and moving a deadline while a read is blocked takes effect at
// once. A datagram longer than the read buffer is truncated (ReadMsgUDP
// reports MSG_TRUNC); empty datagrams are delivered. Writes build the
// headers in the caller's goroutine and block while the link's transmit
// queue is full instead of failing.
//
// # Differences from net.UDPConn
//
//   - No SyscallConn or File: a userspace socket has no file descriptor.
//     quic-go detects this and takes its portable path: no GSO, no ECN and
//     no path-MTU discovery of its own (it sends 1280-byte packets; they
//     leave with DF by the IPv4 default, IP_PMTUDISC_WANT). It
//     still sizes the buffers through SetReadBuffer and SetWriteBuffer, and
//     logs nothing.
//   - IPv6 sockets follow net on Linux (see "IPv6 and dual stack" below).
//     No jumbograms, no flow labels, no IPV6_RECVERR, no IPV6_NEXTHOP
//     (accepted in a control message and left to the routes), and a hop
//     limit of 0 means the default rather than 0.
//   - Host names other than "localhost" are not resolved by Dial and
//     ListenUDP: look them up first with Resolver, a *net.Resolver whose
//     queries go over the stack (LookupNetIPSearch adds a search list).
//   - SetReadBuffer(n) gives a 2n-byte queue, as Linux does, but without the
//     rmem_max cap (the limit is 64 MiB). SetWriteBuffer is recorded; sends
//     are not queued per socket but handed to the link.
//   - A write deadline is checked when a write starts; a write blocked on a
//     full link queue completes when the queue drains.
//   - ReadMsgUDP returns no control messages and WriteMsgUDP ignores oob; use
//     the ipv4-style PacketConn of this package for TTL, destination address
//     and interface.
//
// # IPv6 and dual stack
//
// The networks are net's: "udp4" opens an AF_INET socket, "udp6" an
// AF_INET6 one with IPV6_V6ONLY, and "udp" picks as net's
// favoriteAddrFamily does on Linux: a dual-stack AF_INET6 socket when
// listening on the wildcard (nil, 0.0.0.0 or ::), AF_INET when the
// addresses are IPv4, AF_INET6 otherwise. So, as with net:
//
//   - A "udp" listener on the wildcard reports [::]:port and receives IPv4
//     too, from IPv4-mapped addresses (ReadFromUDPAddrPort gives
//     Is4In6 addresses, ReadFromUDP 16-byte IPs); it answers to either
//     spelling of an IPv4 peer. It holds the port for both families: an
//     IPv4 bind of the port fails with EADDRINUSE, as on Linux, while a
//     "udp6" (V6ONLY) wildcard and a "udp4" one share a port.
//   - Binding a specific IPv6 address makes the socket IPv6-only; an
//     IPv4-mapped address on a "udp6" socket is EINVAL, an IPv4 peer of
//     one ENETUNREACH, an IPv6 peer of a socket bound to IPv4
//     EAFNOSUPPORT. IPv6 payloads go up to 65527 bytes (no jumbograms),
//     IPv4 ones up to 65507 whatever the socket.
//   - Zones: link-local addresses take %name (a NIC name, as listed by
//     stack.Interfaces) or %index (a NIC ID); bind and connect need one
//     (or a NIC binding), else EINVAL. Link-local peers read back carry
//     the zone of the NIC they came through, by name.
//   - A dual-stack socket's IPv4 datagrams use the IPv4 options (TTL,
//     TOS, IP_MULTICAST_*), its IPv6 ones the IPv6 options, kept apart as
//     Linux keeps them.
//   - Connecting to a link-local peer binds the socket to its NIC, as
//     Linux's connect sets sk_bound_dev_if: LocalAddr shows the zone.
//   - An address still in duplicate address detection cannot be bound
//     (EADDRNOTAVAIL, as on Linux); stack.NIC.WaitAddress waits for it.
//
// PacketConn6 maps x/net/ipv6 onto an AF_INET6 socket the same way:
// HopLimit, TrafficClass, MulticastHopLimit, MulticastLoopback and
// MulticastInterface are the IPV6_* options; group joins (ff0e::, ff3e::
// with sources, ff02:: with a NIC) are reported with MLD; ReadFrom and
// ReadBatch return IPV6_PKTINFO, IPV6_HOPLIMIT and IPV6_TCLASS as Linux
// does, with the system's numbers (an IPv4 datagram of a dual-stack
// socket gets IPV6_PKTINFO only, with the IPv4-mapped destination, as
// udpv6_recvmsg gives it);
// WriteTo and WriteBatch take the traffic class, hop limit, source and
// interface per datagram. ICMPFilter and Checksum fail with ENOPROTOOPT,
// as they do on a Linux UDP socket; on an AF_INET socket every IPv6
// option fails as x/net's do there.
//
// # Multicast
//
// A stack's NICs are visible as net.Interface values through
// stack.Interfaces, InterfaceByName and InterfaceByIndex: index (lo is 1,
// the first added NIC 2), name, MTU, MAC and flags (up, running, multicast,
// and broadcast or loopback). Every method taking an *net.Interface accepts
// them; nil means the default NIC for the group (the route table's choice
// for it, else the first NIC after lo). An interface whose index is not a
// NIC of the stack, or whose name differs from that NIC's, is refused with
// ENODEV (EADDRNOTAVAIL for SetMulticastInterface, as on Linux).
//
// PacketConn maps x/net/ipv4 onto the socket like Linux does:
//
//   - JoinGroup, LeaveGroup, JoinSourceSpecificGroup,
//     LeaveSourceSpecificGroup, ExcludeSourceSpecificGroup and
//     IncludeSourceSpecificGroup are MCAST_JOIN_GROUP, MCAST_LEAVE_GROUP,
//     MCAST_JOIN_SOURCE_GROUP, MCAST_LEAVE_SOURCE_GROUP, MCAST_BLOCK_SOURCE
//     and MCAST_UNBLOCK_SOURCE, with Linux's errors as
//     *os.SyscallError{"setsockopt", errno}: EINVAL (not a multicast group,
//     no prior join, mixing any-source and source-specific filters), ENODEV,
//     EADDRINUSE (joined twice), EADDRNOTAVAIL (not joined, source already
//     listed or not listed), ENOBUFS (more than 20 groups or 10 sources per
//     group on one socket, Linux's igmp_max_memberships and igmp_max_msf).
//     A group or source that is not an IPv4 *net.UDPAddr or *net.IPAddr
//     gives "missing address", as x/net does.
//   - A socket receives a group's datagrams on its port if it joined the
//     group on the arriving NIC and its source filter admits the sender,
//     or, as with Linux's default IP_MULTICAST_ALL, if it joined nothing
//     there and any socket of the stack joined the group on that NIC.
//     Listeners sharing a port need SO_REUSEADDR, which ListenMulticastUDP
//     sets; each gets its own copy.
//   - The stack answers IGMPv3 queries, and IGMPv2/v1 ones by falling
//     back to that version (see igmp.Config).
//   - MulticastTTL (default 1, -1 resets, 0 keeps datagrams on the host),
//     MulticastLoopback (default on), MulticastInterface, TTL (default 64,
//     -1 resets) and TOS are the IP_MULTICAST_* / IP_TTL / IP_TOS options.
//   - SetControlMessage: FlagTTL delivers the received TTL; FlagSrc,
//     FlagDst and FlagInterface turn on IP_PKTINFO together, which gives
//     Dst and IfIndex. ReadFrom returns a ControlMessage (with Src set to
//     the sender) only when a flag is on. ReadBatch fills Message.OOB with
//     the same bytes Linux writes (IP_PKTINFO, then IP_TTL), so
//     ControlMessage.Parse reads them, and flags MSG_CTRUNC when OOB is too
//     small.
//   - WriteTo's ControlMessage chooses the source (Src, which must be an
//     address of the stack: ENETUNREACH otherwise), the interface (IfIndex:
//     ENODEV for an unknown one) and the TTL. Without Src a reply leaves
//     from the route's source, the primary address of the prefix, so a
//     wildcard server on a host with several addresses answers from the
//     queried one by echoing ReadFrom's Dst as Src, as with IP_PKTINFO.
//     WriteBatch reads the same from IP_PKTINFO and IP_TTL control
//     messages in Message.OOB (others: EINVAL).
//   - Errors have the shapes x/net gives on Linux: option calls on a closed
//     socket fail with *net.OpError{Op: "raw-control"} wrapping
//     net.ErrClosed; reads and writes wrap "raw-read"/"raw-write" OpErrors
//     for closing and deadlines, and SyscallErrors ("recvmsg", "sendmsg",
//     "recvmmsg", "sendmmsg") for errnos. ReadBatch and WriteBatch return
//     n = -1 when the first message fails with an errno or deadline, as
//     x/net passes on recvmmsg's result.
//
// Differences from the kernel, on purpose:
//
//   - JoinGroup and friends with a nil interface use the default NIC even
//     without a route for the group; Linux fails with ENODEV then.
//   - MulticastInterface returns the interface set by
//     SetMulticastInterface; on Linux x/net always returns nil (it reads
//     an address where it expects an index).
//   - WriteTo honours ControlMessage.TTL; x/net on Linux ignores it.
//
// # Other systems
//
// gonet builds everywhere Go runs and gives errors the shape net gives on
// that system: the system's errnos on macOS and the BSDs; on Windows
// Winsock's (WSAECONNREFUSED, WSAEMSGSIZE, ...) from calls named like
// net's ("wsarecv", "wsasendto"). The flags MsgPeek, MsgDontWait, MsgTrunc
// and MsgCtrunc carry the system's values (Linux's for flags Windows
// lacks). Control messages are encoded as x/net's ControlMessage marshals
// and parses them on the system, in its cmsghdr layout with its levels,
// types and sizes: on macOS the TTL as a byte in IP_RECVTTL and
// IP_PKTINFO; on FreeBSD, NetBSD, OpenBSD, DragonFly and AIX
// IP_RECVDSTADDR, IP_RECVTTL and IP_RECVIF (a sockaddr_dl carrying the
// index), in the kernel's order; RFC 3542's IPv6 types with the system's
// numbers. Sends take what x/net marshals there (IP_PKTINFO where it
// exists, nothing for IPv4 on the BSDs) and an int TTL in IP_TTL, as
// Linux does. Where x/net has none (Windows, in the WSACMSGHDR layout;
// js, wasip1) they keep Linux's numbers.
//
// Not supported: ICMPFilter, SetICMPFilter and SetBPF fail with
// *os.SyscallError{"setsockopt" or "getsockopt", EOPNOTSUPP}, which
// matches errors.ErrUnsupported; ReadBatch flags other than MSG_PEEK,
// MSG_DONTWAIT and MSG_WAITFORONE, and WriteBatch flags other than
// MSG_DONTWAIT, fail with EOPNOTSUPP. Two Linux quirks are not copied:
// leaving a source of an any-source membership fails with EADDRNOTAVAIL
// without switching the membership to an empty INCLUDE filter, and an
// any-source membership whose blocked sources were all unblocked again
// accepts JoinSourceSpecificGroup (Linux gives EINVAL once a block list
// was ever allocated).
package gonet
