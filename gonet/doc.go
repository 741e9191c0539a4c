// Package gonet gives tapnet's UDP endpoints the shape of the standard
// library's sockets, so that code written for net runs on a tapnet stack by
// changing one call:
//
//	conn, err := net.ListenUDP("udp", &net.UDPAddr{Port: 53})       // kernel
//	conn, err := gonet.ListenUDP(s, "udp", &net.UDPAddr{Port: 53})  // tapnet stack s
//
// ListenUDP, DialUDP, ListenPacket and Dial mirror their net counterparts.
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
//     quic-go detects this and takes its portable path: no GSO, no ECN, no
//     DF bit and so no path-MTU discovery (it sends 1280-byte packets). It
//     still sizes the buffers through SetReadBuffer and SetWriteBuffer, and
//     logs nothing.
//   - IPv4 only. "udp6" (and any other network but "udp" and "udp4") is an
//     unknown network; IPv6 addresses give *net.AddrError "non-IPv4
//     address". A conn on "udp" without an address reports 0.0.0.0:port
//     where the kernel's dual-stack socket reports [::]:port.
//   - Host names other than "localhost" are not resolved: use numeric
//     addresses.
//   - SetReadBuffer(n) gives a 2n-byte queue, as Linux does, but without the
//     rmem_max cap (the limit is 64 MiB). SetWriteBuffer is recorded; sends
//     are not queued per socket but handed to the link.
//   - A write deadline is checked when a write starts; a write blocked on a
//     full link queue completes when the queue drains.
//   - ReadMsgUDP returns no control messages and WriteMsgUDP ignores oob; use
//     the ipv4-style PacketConn of this package for TTL, destination address
//     and interface.
package gonet
