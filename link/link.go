// Package link is the seam between a tapnet stack and whatever carries its
// frames: a TAP or TUN device, an in-memory pipe or hub, or a link you write
// yourself (a tunnel, a VM's virtio queue, frames carried in UDP datagrams,
// a test harness).
//
// A link is a Device: it reads and writes batches of frames. The stack runs
// one goroutine per queue that calls ReadFrames in a loop, and writes from
// whichever goroutine is sending (a socket's writer, or the receive
// goroutine answering ARP and ping). A minimal Device over a datagram
// socket is a few dozen lines; see the package example.
//
// Why this shape: batches of plain byte slices, filled in place, are the
// shape wireguard-go's tun.Device proved (Read(bufs, sizes, offset) /
// Write(bufs, offset)): a device that moves one frame per call implements
// it trivially, while one that can move many (recvmmsg, a ring, a virtio
// queue, GSO super-frames) fills the whole batch in one call. The caller
// owns the memory, so the stack reads straight into its pooled buffers and
// writes straight from them, with no copy and no allocation. Each Frame
// carries the space in front of it (headroom), so a link that wraps frames
// in its own header (a virtio-net header, a tunnel header) prepends it
// without copying. Per-frame flags and the Offloads in Info leave room for
// checksum and segmentation offload and for multi-queue devices without
// another change to this interface.
package link

import (
	"github.com/tapnet/tapnet/ethernet"
)

// Layer says what a link's frames start with.
type Layer uint8

const (
	// LayerEthernet links carry Ethernet II frames (a TAP device, a
	// virtual switch); the stack resolves neighbours with ARP.
	LayerEthernet Layer = iota
	// LayerIP links carry bare IP packets with no link header (a TUN
	// device, a point-to-point tunnel); there is no ARP.
	LayerIP
)

// String returns "ethernet" or "ip".
func (l Layer) String() string {
	if l == LayerIP {
		return "ip"
	}
	return "ethernet"
}

// Info describes a link to the stack. It is read once, when the link is
// added to a stack.
type Info struct {
	// MTU is the largest IP packet the link carries, without any link
	// header (1500 on Ethernet).
	MTU int
	// Layer says whether frames carry an Ethernet header.
	Layer Layer
	// MAC is the stack's own address on an Ethernet link (not the address
	// of the host at the other end). Unused on LayerIP links.
	MAC ethernet.MAC
	// BatchSize is how many frames the link can move per ReadFrames or
	// WriteFrames call; the stack offers batches up to this size. Zero
	// means 1.
	BatchSize int
	// Queues is the number of independent receive/transmit queues. A link
	// with more than one implements Queuer; zero means 1.
	Queues int
	// Offloads are the jobs the link does for the stack.
	Offloads Offloads
}

// Offloads are optional jobs a link takes over from the stack. A link that
// offers none leaves them zero, and the stack does everything itself.
type Offloads struct {
	// TxChecksum: the link completes transport checksums of frames
	// written with FlagChecksumPartial.
	TxChecksum bool
	// MaxGSOSize is the largest frame the link accepts with GSOSize set
	// (UDP segmentation offload); 0 means no segmentation offload, and
	// the stack never writes a frame longer than the MTU allows.
	MaxGSOSize int
}

// Flags carry per-frame offload state.
type Flags uint8

const (
	// FlagChecksumValid, on a received frame, says the link (or the
	// device behind it) verified the transport checksum, so the stack
	// need not.
	FlagChecksumValid Flags = 1 << iota
	// FlagChecksumPartial, on a written frame, says the transport
	// checksum field holds only the pseudo-header sum: the link must
	// complete it by summing from CsumStart to the end of the frame and
	// storing the result at CsumStart+CsumOffset. Only written to links
	// whose Offloads.TxChecksum is set.
	FlagChecksumPartial
)

// Frame is one frame of a batch. The frame itself is Buf[Off:Off+Len];
// Buf[:Off] is headroom the link may use to prepend a header of its own,
// and Buf[Off+Len:] is spare room.
//
// On ReadFrames the stack sets Buf and Off (Len, Flags and the offload
// fields are zero) and the link stores the frame at Buf[Off:], then sets
// Len and, if it knows them, Flags. On WriteFrames the stack sets every
// field and the link must not modify Buf[Off:Off+Len] beyond completing a
// partial checksum.
type Frame struct {
	Buf   []byte
	Off   int
	Len   int
	Flags Flags
	// CsumStart and CsumOffset locate the checksum of a frame with
	// FlagChecksumPartial: offsets from the start of the frame.
	CsumStart, CsumOffset uint16
	// GSOSize, when not zero, marks a UDP super-frame: its payload is to
	// be split (on write) or was coalesced (on read) into segments of
	// GSOSize bytes, each becoming one datagram with its own IP and UDP
	// headers. Only written to links whose Offloads.MaxGSOSize is set.
	GSOSize uint16
}

// Bytes returns the frame, Buf[Off:Off+Len].
func (f *Frame) Bytes() []byte { return f.Buf[f.Off : f.Off+f.Len] }

// Device is a link the stack sends and receives frames on. A Device
// belongs to one NIC of one stack.
type Device interface {
	// Info describes the link.
	Info() Info
	// ReadFrames blocks until at least one frame has arrived, stores up
	// to len(frames) of them in frames (see Frame) and returns how many
	// it stored. A frame longer than the room it is given is dropped, not
	// truncated. Once the link is closed, or when it fails for good (the
	// device vanished), ReadFrames returns an error and the stack stops
	// reading from it; transient errors are the link's to retry. The
	// stack calls ReadFrames from one goroutine per queue.
	ReadFrames(frames []Frame) (n int, err error)
	// WriteFrames sends frames in order and returns how many it sent,
	// with an error for the first it could not send. It may block while
	// the link's transmit queue is full, like a socket with a full send
	// buffer, but must not keep the frames' memory after it returns (copy
	// what it queues). It is called from many goroutines at once.
	WriteFrames(frames []Frame) (n int, err error)
	// Close stops the link: a blocked ReadFrames returns, and further
	// reads and writes fail. The stack calls it when the NIC or the
	// stack is closed.
	Close() error
}

// TryWriter is implemented by links whose WriteFrames can wait for the
// stack at the other end to read (an in-memory pipe between two stacks).
// The stack's receive goroutine, which must never wait on its peer (the
// peer may be waiting on it), writes its replies through TryWriteFrames,
// which drops what does not fit at once and returns how many frames it
// sent.
type TryWriter interface {
	TryWriteFrames(frames []Frame) (n int)
}

// Queuer is implemented by links with Info().Queues > 1 (a multi-queue
// TAP). Queue(0) is the Device itself; each queue gets its own reading
// goroutine, and the stack spreads writes across queues by flow.
type Queuer interface {
	Queue(i int) Device
}
