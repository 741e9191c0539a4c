// Package buffer provides the pooled packet buffers that carry frames through
// tapnet, from the link reader up to a socket's receive queue and from a
// writer down to the link.
//
// A Buffer is one contiguous byte slice with headroom in front of the packet,
// so that each layer on the send path prepends its header (UDP, then IPv4,
// then Ethernet) by moving the start of the packet backwards, without copying
// the payload. On the receive path the layers instead consume headers from
// the front with TrimFront, leaving the payload in place.
//
// Ownership rules:
//   - A buffer has exactly one owner at a time. Get returns a buffer owned by
//     the caller.
//   - Passing a buffer to a function documented as taking ownership (the
//     stack's writePacket, a stack.Payload queued on a socket, the ARP
//     cache's queue of packets awaiting resolution) hands it over: the
//     caller must not touch the buffer afterwards.
//   - The owner calls Release once, which returns the buffer to its pool. A
//     second Release is a bug, caught with a panic unless the pool has
//     handed the buffer out again meanwhile.
//   - Buffers are never shared. A datagram that goes to several owners (a
//     broadcast or multicast datagram to several sockets, the looped-back
//     copy of a multicast datagram we send) is copied for each extra owner
//     with Clone, so every owner may modify its own.
//   - The parts of a chain (Next) belong to whoever owns the head, and
//     ReleaseChain releases them all.
//   - Bytes returns a view into the buffer; it is valid only while the caller
//     owns the buffer.
package buffer

import (
	"sync"
	"sync/atomic"
)

// Headroom is the space reserved in front of a packet for headers: enough for
// Ethernet (14), a maximal IPv4 header (60) and UDP (8), rounded up.
const Headroom = 96

// Size classes of pooled buffers, counted without headroom. The small class
// holds a standard Ethernet frame with room to spare; the large one holds a
// maximal IPv4 datagram plus its Ethernet header.
var classes = [...]int{2048, 16384, 65536 + 64}

var pools [len(classes)]sync.Pool

func init() {
	for i := range pools {
		size := classes[i] + Headroom
		pools[i].New = func() any {
			return &Buffer{data: make([]byte, size), class: int8(i)}
		}
	}
}

// Buffer is a packet with headroom in front of it. The zero value is not
// usable; obtain buffers from Get.
type Buffer struct {
	data  []byte
	start int          // first byte of the packet
	end   int          // one past the last byte
	refs  atomic.Int32 // 1 while owned, 0 once released: catches a double Release
	class int8         // pool index, or -1 when allocated outside the pools

	// Offload is what the link did, or is asked to do, for this packet's
	// transport checksum and segmentation. Get clears it.
	Offload Offload

	// Next links the parts of a datagram reassembled from fragments: the
	// head holds the first part and each Next the following one, in order,
	// so that a reader copies them straight into its buffer without a
	// coalescing copy. Whoever owns the head owns the whole chain.
	Next *Buffer
}

// MaxSize is the largest packet (without headroom) a Buffer can hold.
func MaxSize() int { return classes[len(classes)-1] }

// Get returns a buffer able to hold size bytes after Headroom, with an empty
// packet positioned at Headroom and one reference. Sizes above MaxSize are
// served by a fresh allocation that Release leaves to the garbage collector.
func Get(size int) *Buffer {
	var b *Buffer
	for i, c := range classes {
		if size <= c {
			b = pools[i].Get().(*Buffer)
			break
		}
	}
	if b == nil {
		b = &Buffer{data: make([]byte, size+Headroom), class: -1}
	}
	b.start, b.end = Headroom, Headroom
	b.refs.Store(1)
	b.Next = nil
	b.Offload = Offload{}
	return b
}

// Offload is a packet's checksum and segmentation offload state, the
// stack's copy of a link.Frame's flags.
type Offload struct {
	// ChecksumValid (received): the link verified the transport checksum.
	ChecksumValid bool
	// ChecksumPartial (sent): the transport checksum field holds only the
	// pseudo-header sum, for the link to complete.
	ChecksumPartial bool
	// GSOSize (sent): a UDP super-frame to be cut into datagrams of this
	// many payload bytes.
	GSOSize uint16
}

// Bytes returns the packet.
func (b *Buffer) Bytes() []byte { return b.data[b.start:b.end] }

// Len returns the packet length.
func (b *Buffer) Len() int { return b.end - b.start }

// Cap returns how many bytes the packet may grow to at its end.
func (b *Buffer) Cap() int { return len(b.data) - b.start }

// Truesize is the memory the buffer occupies, used for accounting against
// receive-buffer limits the way the kernel counts skb truesize.
func (b *Buffer) Truesize() int { return len(b.data) }

// Backing returns the buffer's whole memory, headroom included, so that a
// link can read a frame straight into it; Start locates the packet in it.
func (b *Buffer) Backing() []byte { return b.data }

// Start returns the offset of the packet's first byte within Backing.
func (b *Buffer) Start() int { return b.start }

// SetBounds makes Backing()[start:end] the packet, after a link stored a
// frame there. It panics if the bounds are out of range, which is a
// programming error.
func (b *Buffer) SetBounds(start, end int) {
	if start < 0 || start > end || end > len(b.data) {
		panic("buffer: SetBounds out of range")
	}
	b.start, b.end = start, end
}

// Tail returns the free space after the packet, for readers that fill the
// buffer in place (a link reading a frame). Call SetLen afterwards.
func (b *Buffer) Tail() []byte { return b.data[b.end:] }

// SetLen sets the packet length, keeping its start. It panics if n exceeds
// the space available, which is a programming error.
func (b *Buffer) SetLen(n int) {
	if n < 0 || b.start+n > len(b.data) {
		panic("buffer: SetLen out of range")
	}
	b.end = b.start + n
}

// Append copies p to the end of the packet and reports whether it fitted.
func (b *Buffer) Append(p []byte) bool {
	if len(p) > len(b.data)-b.end {
		return false
	}
	b.end += copy(b.data[b.end:], p)
	return true
}

// Prepend grows the packet by n bytes at the front and returns them, or nil
// when the headroom is exhausted.
func (b *Buffer) Prepend(n int) []byte {
	if n > b.start {
		return nil
	}
	b.start -= n
	return b.data[b.start : b.start+n]
}

// TrimFront drops n bytes from the front of the packet (a consumed header).
func (b *Buffer) TrimFront(n int) {
	if n > b.end-b.start {
		n = b.end - b.start
	}
	b.start += n
}

// Truncate shortens the packet to n bytes (removing link padding).
func (b *Buffer) Truncate(n int) {
	if n < b.end-b.start {
		b.end = b.start + n
	}
}

// Reset empties the packet and restores the full headroom.
func (b *Buffer) Reset() { b.start, b.end = Headroom, Headroom }

// Release returns the buffer to its pool. It panics if the buffer was
// already released, which is a programming error. It does not release the
// parts linked after it: see ReleaseChain.
func (b *Buffer) Release() {
	if b.refs.Add(-1) != 0 {
		panic("buffer: Release of a released buffer")
	}
	b.Next = nil // let the garbage collector have parts no one released
	if b.class >= 0 {
		pools[b.class].Put(b)
	}
}

// Clone returns a new buffer holding a copy of the packet.
func (b *Buffer) Clone() *Buffer {
	c := Get(b.Len())
	c.Append(b.Bytes())
	return c
}

// ChainLen returns the total packet length of b and the parts linked after it.
func (b *Buffer) ChainLen() int {
	n := 0
	for p := b; p != nil; p = p.Next {
		n += p.Len()
	}
	return n
}

// ChainTruesize returns the memory b and the parts linked after it
// occupy: a reassembled datagram pins every fragment's buffer, however few
// bytes each still holds.
func (b *Buffer) ChainTruesize() int {
	n := 0
	for p := b; p != nil; p = p.Next {
		n += p.Truesize()
	}
	return n
}

// CopyChain copies the packets of b and its following parts into dst and
// returns how many bytes were copied (at most len(dst)).
func (b *Buffer) CopyChain(dst []byte) int {
	n := 0
	for p := b; p != nil && n < len(dst); p = p.Next {
		n += copy(dst[n:], p.Bytes())
	}
	return n
}

// ReleaseChain releases b and every part linked after it.
func (b *Buffer) ReleaseChain() {
	for b != nil {
		next := b.Next
		b.Next = nil
		b.Release()
		b = next
	}
}
