package stack

import (
	"net/netip"
	"syscall"

	"github.com/tapnet/tapnet/internal/buffer"
)

// Packet is a received transport datagram handed to an endpoint.
type Packet struct {
	// Buf holds the transport payload (header removed); a datagram
	// reassembled from fragments continues in Buf.Next. The endpoint owns
	// it and must treat its bytes as read-only: a broadcast or multicast
	// datagram is shared between endpoints.
	Buf      *buffer.Buffer
	Src, Dst netip.AddrPort
	TTL, TOS uint8
	NIC      NICID
}

// ControlError is an ICMP error (or a local resolution failure) concerning a
// datagram an endpoint sent.
type ControlError struct {
	Errno  syscall.Errno
	Hard   bool // reported to connected sockets, as Linux does
	Type   uint8
	Code   uint8
	Info   uint32         // next-hop MTU for "fragmentation needed"
	Remote netip.AddrPort // where the offending datagram was going
	From   netip.Addr     // who reported the error
}

// TransportEndpoint receives what the demultiplexer finds for it.
type TransportEndpoint interface {
	// HandlePacket takes ownership of p.Buf.
	HandlePacket(p Packet)
	// HandleError reports an error about a datagram the endpoint sent.
	HandleError(e ControlError)
	// AcceptMulticast reports whether the endpoint wants datagrams sent to
	// group from src arriving on nic (its memberships and source filters).
	AcceptMulticast(group, src netip.Addr, nic NICID) bool
	// StackClosed tells the endpoint that its stack is gone, so blocked
	// callers wake up.
	StackClosed()
}

// TransportID names an endpoint's binding. Zero addresses and ports match
// anything.
type TransportID struct {
	LocalAddr  netip.Addr
	LocalPort  uint16
	RemoteAddr netip.Addr
	RemotePort uint16
}

// Ephemeral port range, as Linux's ip_local_port_range.
const (
	EphemeralMin = 32768
	EphemeralMax = 60999
)
