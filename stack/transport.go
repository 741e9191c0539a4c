package stack

import (
	"net/netip"
	"syscall"

	"github.com/tapnet/tapnet/internal/buffer"
)

// Packet is a received UDP datagram handed to an endpoint.
type Packet struct {
	// Payload is the datagram's payload (UDP header removed). The
	// endpoint owns it and releases it once read or dropped. Every
	// endpoint a broadcast or multicast datagram reaches gets its own.
	Payload  Payload
	Src, Dst netip.AddrPort
	TTL, TOS uint8
	NIC      NICID
}

// Payload is a received datagram's bytes in the stack's pooled buffers. A
// datagram reassembled from fragments spans several buffers; CopyTo gathers
// them. It is a small value: pass it by value, and call Release exactly
// once, after which it must not be used. The zero Payload is empty.
type Payload struct {
	b *buffer.Buffer // first part; a reassembled datagram continues in b.Next
}

// Len returns the payload length in bytes.
func (p Payload) Len() int { return p.b.ChainLen() }

// CopyTo copies the payload into dst and returns the bytes copied: all of
// them, or len(dst) when dst is shorter (the rest is not copied).
func (p Payload) CopyTo(dst []byte) int { return p.b.CopyChain(dst) }

// Truesize returns what the datagram counts against a receive buffer, the
// way Linux charges an skb's truesize: its data plus headers rounded up to
// a kmalloc size class, plus the sk_buff itself (768 bytes for a small
// datagram, 2304 for 1000 bytes). A datagram reassembled from fragments is
// charged at least the memory of every fragment buffer it pins, as Linux
// charges each fragment, so that tiny fragments cannot pin memory far
// beyond SO_RCVBUF.
func (p Payload) Truesize() int {
	c := skbTruesize(p.Len())
	if p.b != nil && p.b.Next != nil {
		c = max(c, p.b.ChainTruesize())
	}
	return c
}

// skbTruesize approximates the memory Linux charges for a received
// datagram of n bytes.
func skbTruesize(n int) int {
	const headers, skb = 448, 256
	d := n + headers
	if d > 4096 {
		return (d+4095)&^4095 + skb
	}
	c := 512
	for c < d {
		c <<= 1
	}
	return c + skb
}

// Release returns the payload's buffers to their pools.
func (p Payload) Release() { p.b.ReleaseChain() }

// Delivery is what an endpoint did with a datagram handed to it; the stack
// counts it in Stats.UDP.
type Delivery uint8

// Deliveries, each counted under its own name.
const (
	Delivered         Delivery = iota // queued for reading (UDP.Delivered)
	ReceiveBufferFull                 // dropped: receive buffer full (UDP.BufferErrors)
	NotReceiving                      // dropped: closing or shut for reading, as if no socket had the port (UDP.NoPort)
)

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
	// HandlePacket takes ownership of p.Payload, queueing or releasing
	// it, and says which it did. It runs on the link's reader goroutine
	// and must not block.
	HandlePacket(p Packet) Delivery
	// HandleError reports an error about a datagram the endpoint sent.
	HandleError(e ControlError)
	// AcceptMulticast reports whether the endpoint wants datagrams sent to
	// group from src arriving on nic (its memberships and source filters).
	AcceptMulticast(group, src netip.Addr, nic NICID) bool
	// StackClosed tells the endpoint that its stack is gone, so blocked
	// callers wake up.
	StackClosed()
}

// TransportID names an endpoint's binding. Zero ports and remote
// addresses match anything. The local address chooses the datagrams, as a
// socket's family and IPV6_V6ONLY do: the zero (invalid) address takes
// both families (a dual-stack wildcard socket), 0.0.0.0 any IPv4 address,
// :: any IPv6 address, another address only itself. Sockets unmap
// IPv4-mapped addresses before binding.
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
