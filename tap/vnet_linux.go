package tap

import (
	"fmt"
	"sync"

	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/link"
)

// This file is the Linux TAP's side of virtio-net headers: negotiating
// offloads with the kernel, reading (and splitting) frames that carry a
// header, and writing frames with one.

// TUNSETOFFLOAD flags (linux/if_tun.h); x/sys/unix does not have them.
const (
	tunFCsum = 0x01 // TUN_F_CSUM: the kernel may send partial checksums
	tunFUSO4 = 0x20 // TUN_F_USO4: ... and UDP super-frames over IPv4
	tunFUSO6 = 0x40 // TUN_F_USO6: Linux grants USO only with both
)

// maxSuperFrame is the longest frame with a virtio-net header either way:
// an Ethernet header and a maximal IPv4 packet.
const maxSuperFrame = ethernet.HeaderLen + 65535

// offloads are what a device negotiated with the kernel.
type offloads struct {
	vnet     bool   // frames carry a virtio-net header
	csum     bool   // the kernel may hand us partial checksums
	uso      bool   // UDP segmentation offload both ways
	fallback string // why something asked for is off
}

// negotiate sets the header size and asks for checksum and UDP
// segmentation offload, falling back to less when the kernel refuses.
func (o *offloads) negotiate(fd int, noUSO bool) {
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, vnetHdrLen); err != nil {
		o.fallback = fmt.Sprintf("TUNSETVNETHDRSZ: %v", err)
	}
	want := tunFCsum | tunFUSO4 | tunFUSO6
	if noUSO {
		want = tunFCsum
		o.fallback = "UDP segmentation offload disabled by option"
	}
	err := ioctlSetOffload(fd, want)
	if err != nil && want&tunFUSO4 != 0 {
		o.fallback = fmt.Sprintf("UDP segmentation offload refused (kernel before 6.2?): %v", err)
		want = tunFCsum
		err = ioctlSetOffload(fd, want)
	}
	if err != nil {
		o.fallback = fmt.Sprintf("checksum offload refused: %v", err)
		return
	}
	// Linux grants USO4 and USO6 together: IPv6 super-frames are split
	// and sent like IPv4 ones.
	o.csum, o.uso = true, want&tunFUSO4 != 0
}

// resetOffloads turns the kernel's offloads off again, so that a
// persistent device does not keep sending partial checksums and
// super-frames to whoever attaches next without virtio-net headers.
func (d *Device) resetOffloads() {
	if !d.off.csum || len(d.queues) == 0 {
		return
	}
	_ = d.queues[0].rc.Control(func(fd uintptr) {
		_ = ioctlSetOffload(int(fd), 0)
	})
}

func (o *offloads) status() OffloadStatus {
	return OffloadStatus{VnetHdr: o.vnet, Checksum: o.csum, USO: o.uso, Fallback: o.fallback}
}

// vnetReader reads frames with a virtio-net header for one queue. A frame
// that fits the stack's buffer is read into it directly, its header landing
// in the headroom; a longer one (a UDP super-frame) spills into big, is
// split there into datagrams, one per stack buffer, and what does not fit
// the batch waits for the next ReadFrames.
type vnetReader struct {
	mtu     int
	l2      int    // link header length: 14 on a TAP, 0 on a TUN
	big     []byte // header, then the longest frame, then one byte to detect truncation
	iov     [2]unix.Iovec
	inPlace bool // the last read went to the frame's buffer first
	limit   int  // room of the frame's buffer in the last read

	sup   udpSuper // the super-frame being split, in big
	frame []byte   // its bytes (without header), nil when none is pending
	next  int      // its next segment
}

func newVnetReader(mtu, l2 int) *vnetReader {
	return &vnetReader{mtu: mtu, l2: l2, big: make([]byte, vnetHdrLen+maxSuperFrame+1)}
}

func (r *vnetReader) pending() bool { return r.frame != nil }

// read reads one frame with its header, into f's headroom and room when f
// has enough headroom, spilling into big.
func (r *vnetReader) read(fd int, f *link.Frame) (int, error) {
	room := roomOf(f)
	if len(room) == 0 {
		return 0, errFrameBounds
	}
	r.limit = min(len(room), r.mtu+r.l2)
	r.inPlace = f.Off >= vnetHdrLen
	n := 1
	if r.inPlace {
		setIovec(&r.iov[0], f.Buf[f.Off-vnetHdrLen:f.Off+r.limit])
		setIovec(&r.iov[1], r.big[vnetHdrLen+r.limit:])
		n = 2
	} else {
		setIovec(&r.iov[0], r.big)
	}
	m, _, errno := unix.Syscall(unix.SYS_READV, uintptr(fd), uintptr(unsafe.Pointer(&r.iov[0])), uintptr(n))
	if errno != 0 {
		return 0, errno
	}
	return int(m), nil
}

func setIovec(v *unix.Iovec, b []byte) {
	v.Base = &b[0]
	v.SetLen(len(b))
}

// finish takes the frame the last read returned (m bytes with header):
// it checks the header, stores a plain frame in frames[0], or splits a
// super-frame into frames. It returns how many frames it filled; a bad
// frame is counted and fills none.
func (r *vnetReader) finish(c *counters, frames []link.Frame, m int) int {
	f := &frames[0]
	if m < vnetHdrLen {
		c.rxBadHeaders.Add(1)
		return 0
	}
	var pkt []byte // header and frame
	if r.inPlace && m-vnetHdrLen <= r.limit {
		pkt = f.Buf[f.Off-vnetHdrLen : f.Off+m-vnetHdrLen]
	} else {
		if r.inPlace {
			copy(r.big, f.Buf[f.Off-vnetHdrLen:f.Off+r.limit])
		}
		pkt = r.big[:m]
	}
	if m == len(r.big) {
		c.rxDrops.Add(1) // truncated: longer than any valid frame
		return 0
	}
	h := decodeVnetHdr(pkt)
	frame := pkt[vnetHdrLen:]
	sup, err := checkRxFrame(h, frame, r.mtu, r.l2)
	if err != nil {
		c.rxBadHeaders.Add(1)
		return 0
	}
	if sup.segs > 0 {
		c.rxSuperFrames.Add(1)
		r.sup, r.frame, r.next = sup, frame, 0
		return r.emit(c, frames)
	}
	if len(frame) > r.mtu+r.l2 {
		c.rxDrops.Add(1)
		return 0
	}
	if &pkt[0] == &r.big[0] {
		room := roomOf(f)
		if len(frame) > len(room) {
			c.rxDrops.Add(1)
			return 0
		}
		copy(room, frame)
	}
	f.Len, f.Flags = len(frame), 0
	if h.flags&(vnetNeedsCsum|vnetDataValid) != 0 {
		f.Flags = link.FlagChecksumValid
	}
	if h.flags&vnetNeedsCsum != 0 {
		clearPartialChecksum(h, f.Bytes(), r.l2)
	}
	c.rx(f.Len)
	return 1
}

// emit stores the pending super-frame's next segments in frames and
// returns how many it filled.
func (r *vnetReader) emit(c *counters, frames []link.Frame) int {
	i := 0
	for ; i < len(frames) && r.next < r.sup.segs; r.next++ {
		f := &frames[i]
		room := roomOf(f)
		if r.sup.segmentLen(r.next) > len(room) {
			c.rxDrops.Add(1)
			continue
		}
		f.Len = r.sup.putSegment(room, r.frame, r.next)
		f.Flags = link.FlagChecksumValid
		c.rx(f.Len)
		i++
	}
	if r.next == r.sup.segs {
		r.frame = nil
	}
	return i
}

// writeVnet writes f behind a virtio-net header that carries its offload
// requests, built in f's headroom when there is room for it.
func (q *queue) writeVnet(f *link.Frame) error {
	h, err := q.d.vnetHeaderFor(f, &q.stats)
	if err != nil {
		return err
	}
	if f.Off >= vnetHdrLen {
		b := f.Buf[f.Off-vnetHdrLen : f.Off+f.Len]
		h.encode(b)
		_, err = q.f.Write(b)
		return err
	}
	p := scratchFrames.Get().(*[]byte)
	b := (*p)[:vnetHdrLen+f.Len]
	h.encode(b)
	copy(b[vnetHdrLen:], f.Bytes())
	_, err = q.f.Write(b)
	scratchFrames.Put(p)
	return err
}

// scratchFrames hold frames written without headroom for their header.
var scratchFrames = sync.Pool{New: func() any { b := make([]byte, vnetHdrLen+maxSuperFrame); return &b }}

// vnetHeaderFor checks f's offload requests against what the device has
// and returns the header that carries them, counting a super-frame in c.
func (d *Device) vnetHeaderFor(f *link.Frame, c *counters) (vnetHdr, error) {
	var h vnetHdr
	if f.Flags&link.FlagChecksumPartial != 0 {
		if int(f.CsumStart)+int(f.CsumOffset)+2 > f.Len {
			return h, errFrameBounds
		}
		h.flags, h.csumStart, h.csumOffset = vnetNeedsCsum, f.CsumStart, f.CsumOffset
	}
	if f.GSOSize == 0 {
		if !checkFrame(f.Len, d.mtu, d.layer) {
			return h, errFrameSize
		}
		return h, nil
	}
	// A super-frame: UDP behind the checksum start, segments of GSOSize
	// bytes that each fit the MTU, and more than one of them (Linux
	// refuses a super-frame that is a single segment).
	hdrEnd := int(f.CsumStart) + 8
	if !d.off.uso || h.flags == 0 || f.CsumOffset != 6 || f.Len > headerLen(d.layer)+65535 ||
		hdrEnd-headerLen(d.layer)+int(f.GSOSize) > d.mtu || f.Len <= hdrEnd+int(f.GSOSize) {
		return h, errFrameSize
	}
	h.gsoType, h.gsoSize, h.hdrLen = vnetGSOUDPL4, f.GSOSize, uint16(hdrEnd)
	c.txSuperFrames.Add(1)
	return h, nil
}
