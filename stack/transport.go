package stack

import (
	"errors"
	"net/netip"
	"sync"
	"syscall"

	"github.com/tapnet/tapnet/internal/buffer"
)

// TransportProtocol is what the stack needs to know of a transport (UDP):
// how to validate its header and find its ports. Protocols register
// themselves with RegisterTransportProtocol, usually from an init function,
// so that every stack made afterwards carries them.
type TransportProtocol interface {
	// Number is the IPv4 protocol number the transport is demultiplexed
	// by (17 for UDP).
	Number() uint8
	// Parse validates the transport header that starts off bytes into pkt
	// (after the IP header). A datagram reassembled from fragments
	// continues in pkt.Next. It returns the ports, the header length and
	// the transport payload length.
	Parse(pkt *buffer.Buffer, off int, src, dst netip.Addr) (srcPort, dstPort uint16, hdrLen, payloadLen int, err error)
}

// ErrBadChecksum is returned by TransportProtocol.Parse for a checksum
// mismatch; any other error counts as a malformed header.
var ErrBadChecksum = errors.New("bad transport checksum")

var (
	registryMu sync.Mutex // guards registry; taken alone
	registry   [256]TransportProtocol
)

// RegisterTransportProtocol makes p available to stacks created afterwards.
func RegisterTransportProtocol(p TransportProtocol) {
	registryMu.Lock()
	defer registryMu.Unlock()
	registry[p.Number()] = p
}

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
