package stack

import (
	"errors"
	"fmt"
	"sync"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/link"
)

// This file is the stack's side of the link seam: the receive loop that
// reads batches of frames into pooled buffers, and the write path that hands
// built frames to the device.

// maxRxBatch caps the frames one ReadFrames call may fill, and so the
// buffers each receive loop keeps ready.
const maxRxBatch = 64

// errTxDropped reports a frame a non-blocking write could not queue.
var errTxDropped = errors.New("stack: link queue full")

// linkHeaderLen is the one place that decides whether a NIC's frames carry
// an Ethernet header, from the layer its device says it carries; the rest
// of the stack asks the NIC (hasEthernet).
func linkHeaderLen(l link.Layer) int {
	if l == link.LayerIP {
		return 0
	}
	return ethernet.HeaderLen
}

// minIPv4MTU is the smallest MTU IPv4 allows (RFC 791: every host must
// take a 68-byte datagram whole).
const minIPv4MTU = 68

// checkLink vets what a device says about itself before a NIC is made.
func checkLink(info link.Info) error {
	switch info.Layer {
	case link.LayerEthernet, link.LayerIP:
	default:
		return fmt.Errorf("stack: unknown link layer %d", info.Layer)
	}
	if info.MTU < minIPv4MTU {
		return fmt.Errorf("stack: link MTU %d below the IPv4 minimum of %d", info.MTU, minIPv4MTU)
	}
	if info.MTU+linkHeaderLen(info.Layer) > buffer.MaxSize() {
		return fmt.Errorf("stack: link MTU %d above the largest frame of %d bytes", info.MTU, buffer.MaxSize())
	}
	return nil
}

// txQueue is one transmit queue of a device, with its non-blocking writer
// if it has one.
type txQueue struct {
	dev link.Device
	try link.TryWriter // nil: writes from the receive path use WriteFrames
}

// linkQueues returns the device's queues: itself, or each queue of a
// multi-queue device.
func linkQueues(dev link.Device, info link.Info) []txQueue {
	devs := []link.Device{dev}
	if q, ok := dev.(link.Queuer); ok && info.Queues > 1 {
		for i := 1; i < info.Queues; i++ {
			if d := q.Queue(i); d != nil {
				devs = append(devs, d)
			}
		}
	}
	qs := make([]txQueue, len(devs))
	for i, d := range devs {
		qs[i].dev = d
		qs[i].try, _ = d.(link.TryWriter)
	}
	return qs
}

// startReceiving starts one receive loop per queue.
func (n *NIC) startReceiving(batch int) {
	batch = min(max(batch, 1), maxRxBatch)
	for _, q := range n.txq {
		r := newRxLoop(n, q.dev, batch)
		n.rxWG.Add(1)
		go r.run()
	}
}

// rxLoop reads one queue of a device. It keeps a batch of pooled buffers
// whose memory ReadFrames fills in place; each frame read leaves with its
// buffer up the stack, and a fresh buffer takes its slot.
type rxLoop struct {
	n      *NIC
	dev    link.Device
	size   int // buffer size: the largest frame the NIC accepts
	bufs   []*buffer.Buffer
	frames []link.Frame
}

func newRxLoop(n *NIC, dev link.Device, batch int) *rxLoop {
	r := &rxLoop{n: n, dev: dev, size: n.linkMTU + n.hdrLen,
		bufs: make([]*buffer.Buffer, batch), frames: make([]link.Frame, batch)}
	for i := range r.bufs {
		r.refill(i)
	}
	return r
}

// refill puts a fresh buffer in slot i.
func (r *rxLoop) refill(i int) {
	b := buffer.Get(r.size)
	r.bufs[i] = b
	r.frames[i] = link.Frame{Buf: b.Backing(), Off: b.Start()}
}

// run reads until the device fails or is closed.
func (r *rxLoop) run() {
	defer r.n.rxWG.Done()
	defer r.release()
	for {
		k, err := r.dev.ReadFrames(r.frames)
		for i := range min(max(k, 0), len(r.frames)) {
			r.deliver(i)
		}
		if err != nil {
			r.n.linkFailed(err)
			return
		}
	}
}

// deliver hands the frame in slot i to the NIC and refills the slot.
func (r *rxLoop) deliver(i int) {
	n, f, b := r.n, &r.frames[i], r.bufs[i]
	st := &n.s.stats.Link
	raw := b.Backing()
	switch {
	case f.Off < 0 || f.Len < 0 || f.Off+f.Len > len(f.Buf):
		st.BadFrames.Add(1)
	case f.Len > n.linkMTU+n.hdrLen:
		st.TooLong.Add(1)
	case len(f.Buf) != len(raw) || &f.Buf[0] != &raw[0]:
		// The link stored the frame in memory of its own, against the
		// contract; take it anyway, by copying.
		b.Reset()
		if !b.Append(f.Bytes()) {
			st.TooLong.Add(1)
			break
		}
		b.Offload.ChecksumValid = f.Flags&link.FlagChecksumValid != 0
		r.handOver(i, b)
		return
	default:
		b.SetBounds(f.Off, f.Off+f.Len)
		b.Offload.ChecksumValid = f.Flags&link.FlagChecksumValid != 0
		r.handOver(i, b)
		return
	}
	r.frames[i] = link.Frame{Buf: raw, Off: b.Start()}
}

// handOver delivers b, the buffer of slot i, and then refills the slot, so
// that the pool lookup is off the path to the socket.
func (r *rxLoop) handOver(i int, b *buffer.Buffer) {
	r.n.deliver(b)
	r.refill(i)
}

// release returns the batch's buffers to their pool.
func (r *rxLoop) release() {
	for i, b := range r.bufs {
		b.Release()
		r.bufs[i] = nil
		r.frames[i] = link.Frame{}
	}
}

// linkFailed records why a device stopped reading. Unless the stack closed
// it, the link failed on its own (a TAP device deleted, the peer of a pipe
// closed): a stack whose only link died can do nothing more, so it closes,
// waking blocked sockets instead of leaving them hanging.
func (n *NIC) linkFailed(err error) {
	if n.closing.Load() {
		return
	}
	n.errMu.Lock()
	first := n.err == nil
	if first {
		n.err = err
	}
	n.errMu.Unlock()
	if !first {
		return
	}
	n.s.log.Error("tapnet: link failed", "nic", n.name, "err", err)
	if len(*n.s.nics.Load()) == 2 {
		go n.s.Close()
	}
}

// Err reports why the NIC's link stopped on its own (the device vanished,
// the other end of a pipe closed), or nil while it runs or after the stack
// closed it.
func (n *NIC) Err() error {
	n.errMu.Lock()
	defer n.errMu.Unlock()
	return n.err
}

// txBatches hold the one-frame batch of a write, so that passing it to an
// interface method does not allocate.
var txBatches = sync.Pool{New: func() any { return new([1]link.Frame) }}

// writeFrame writes the frame in b to the device and releases b. With
// block unset (the receive path, timers) it uses the device's TryWriter if
// it has one, which drops the frame rather than wait for the other end.
func (n *NIC) writeFrame(b *buffer.Buffer, block bool) error {
	defer b.Release()
	q := n.queueFor(b.Bytes())
	batch := txBatches.Get().(*[1]link.Frame)
	n.frameOf(&batch[0], b)
	var err error
	if !block && q.try != nil {
		if q.try.TryWriteFrames(batch[:]) != 1 {
			err = errTxDropped
		}
	} else {
		_, err = q.dev.WriteFrames(batch[:])
	}
	batch[0] = link.Frame{}
	txBatches.Put(batch)
	return err
}

// queueFor picks the transmit queue of a frame: by its IPv4 addresses and
// protocol on a multi-queue device, so a flow (fragments included) keeps
// one queue and its order.
func (n *NIC) queueFor(frame []byte) *txQueue {
	if len(n.txq) == 1 {
		return &n.txq[0]
	}
	h := uint32(2166136261) // FNV-1a over the protocol and both addresses
	ip := frame[n.hdrLen:]
	switch {
	case len(ip) >= 40 && ip[0]>>4 == 6:
		// Next header and flow label as well as the addresses: a flow
		// and its fragments keep one queue.
		h = (h ^ uint32(ip[6])) * 16777619
		for _, c := range ip[1:4] {
			h = (h ^ uint32(c&0x0f)) * 16777619
		}
		for _, c := range ip[8:40] {
			h = (h ^ uint32(c)) * 16777619
		}
	case len(ip) >= 20:
		h = (h ^ uint32(ip[9])) * 16777619
		for _, c := range ip[12:20] {
			h = (h ^ uint32(c)) * 16777619
		}
	}
	return &n.txq[h%uint32(len(n.txq))]
}

// frameOf describes b to the link, with its offload requests: a partial
// UDP checksum (the field's offset is 6 in the UDP header behind the IP
// header and, on IPv6, any extension headers) and the segment size of a
// super-frame.
func (n *NIC) frameOf(f *link.Frame, b *buffer.Buffer) {
	*f = link.Frame{Buf: b.Backing(), Off: b.Start(), Len: b.Len()}
	if !b.Offload.ChecksumPartial {
		return
	}
	f.Flags = link.FlagChecksumPartial
	f.CsumStart = uint16(n.hdrLen + transportOffset(b.Bytes()[n.hdrLen:]))
	f.CsumOffset = 6
	f.GSOSize = b.Offload.GSOSize
}
