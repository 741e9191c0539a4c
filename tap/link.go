package tap

import (
	"github.com/tapnet/tapnet/internal/buffer"
)

// Link is an Ethernet link a stack sends and receives frames on:
// a TAP device, one end of an in-memory pipe, a port of an in-memory hub, or
// a wrapper around one of those (a packet capture). A Link belongs to exactly
// one NIC of one stack.
type Link interface {
	// MTU is the largest IP packet (without the Ethernet header) the link
	// carries.
	MTU() int
	// LinkAddress is the link's own MAC address.
	LinkAddress() MAC
	// Attach starts delivery: every frame received from now on is handed to
	// deliver, which takes ownership of the buffer. Frames are delivered
	// from one goroutine per link, in order. Attach is called once. If
	// delivery stops on its own (the device vanished), the link calls
	// deliver(nil) once; Err then tells why.
	Attach(deliver func(frame *buffer.Buffer))
	// WritePacket sends one Ethernet frame and takes ownership of the buffer.
	// It blocks while the link's transmit queue is full, like a kernel
	// socket with a full send buffer, and fails once the link is closed.
	WritePacket(frame *buffer.Buffer) error
	// TryWritePacket is WritePacket for the receive path: it never blocks and
	// drops the frame (returning false) when the queue is full, so that the
	// goroutine delivering frames cannot deadlock against its own peer.
	TryWritePacket(frame *buffer.Buffer) bool
	// Close stops delivery, waits for the delivering goroutine to return
	// and releases the link's resources. Further writes fail.
	Close() error
	// Err reports why delivery stopped on its own (the device vanished), or
	// nil while the link runs or after a plain Close.
	Err() error
}
