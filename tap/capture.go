package tap

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapnet/tapnet/link"
)

// CaptureDevice is a link.Device that records every frame it reads and
// writes to a pcap stream, like tcpdump on an interface; Capture makes one.
// It implements link.TryWriter and link.Queuer exactly when the device it
// wraps does, so the stack treats it as it would the device itself.
type CaptureDevice interface {
	link.Device
	// Stats returns the wrapped device's counters, or zero ones when it
	// has none.
	Stats() Stats
	// CaptureStats returns how many frames were recorded and missed, and
	// the error that stopped capturing, if any.
	CaptureStats() CaptureStats
}

// CaptureStats reports how a capture went.
type CaptureStats struct {
	Records uint64 // frames written
	Missed  uint64 // frames not written because capturing stopped
	Err     error  // the write error that stopped capturing
}

// Capture writes a pcap file header to w and returns d wrapped so that its
// traffic is appended to w. The file's link type follows d's layer:
// Ethernet, or LinkTypeRaw for an IP link. Use the wrapper in place of d; any link.Device
// can be captured, including one written outside this package. Written
// frames are recorded as they are handed to d, including any d then drops.
// The first write error stops capturing for good; the device itself carries
// on. Writes to w are serialized; Close flushes w if it has a Flush() error
// method (a bufio.Writer) but does not close it.
func Capture(d link.Device, w io.Writer) (CaptureDevice, error) {
	if d == nil || w == nil {
		return nil, errors.New("tap: Capture needs a device and a writer")
	}
	rec := &recorder{pw: pcapWriter{w: w}}
	if err := rec.pw.writeHeader(pcapLinkType(d.Info().Layer)); err != nil {
		return nil, err
	}
	return wrapCapture(d, rec), nil
}

// wrapCapture returns d wrapped in the capture type whose method set
// matches d's optional interfaces.
func wrapCapture(d link.Device, rec *recorder) CaptureDevice {
	c := &capture{dev: d, rec: rec}
	_, try := d.(link.TryWriter)
	_, queues := d.(link.Queuer)
	switch {
	case try && queues:
		return captureTryQueuer{c}
	case try:
		return captureTry{c}
	case queues:
		return captureQueuer{c}
	}
	return c
}

// recorder is the pcap stream shared by a capture and its queues.
type recorder struct {
	mu      sync.Mutex // guards pw and err, so records never interleave; never held while calling the device
	pw      pcapWriter
	err     error
	records atomic.Uint64
	missed  atomic.Uint64
	stopped atomic.Bool
}

func (r *recorder) record(f *link.Frame) {
	if f.Off < 0 || f.Len < 0 || f.Off+f.Len > len(f.Buf) {
		return // not a frame; the device rejects it
	}
	if r.stopped.Load() {
		r.missed.Add(1)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		r.missed.Add(1)
		return
	}
	// Stamped under the lock so the file's timestamps never go backwards.
	if err := r.pw.writeRecord(time.Now(), f.Bytes()); err != nil {
		r.err = err
		r.stopped.Store(true)
		r.missed.Add(1)
		return
	}
	r.records.Add(1)
}

func (r *recorder) flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.pw.w.(interface{ Flush() error }); ok && r.err == nil {
		if err := f.Flush(); err != nil {
			r.err = err
			r.stopped.Store(true)
		}
	}
}

// capture is a CaptureDevice over a device with no optional interfaces.
type capture struct {
	dev link.Device
	rec *recorder
}

// Info implements link.Device.
func (c *capture) Info() link.Info { return c.dev.Info() }

// ReadFrames implements link.Device, recording each frame read.
func (c *capture) ReadFrames(frames []link.Frame) (int, error) {
	n, err := c.dev.ReadFrames(frames)
	for i := range min(n, len(frames)) {
		c.rec.record(&frames[i])
	}
	return n, err
}

// WriteFrames implements link.Device, recording each frame written.
func (c *capture) WriteFrames(frames []link.Frame) (int, error) {
	c.recordAll(frames)
	return c.dev.WriteFrames(frames)
}

func (c *capture) recordAll(frames []link.Frame) {
	for i := range frames {
		c.rec.record(&frames[i])
	}
}

// Close closes the wrapped device and then flushes the capture.
func (c *capture) Close() error {
	err := c.dev.Close()
	c.rec.flush()
	return err
}

// Stats implements CaptureDevice.
func (c *capture) Stats() Stats {
	if s, ok := c.dev.(interface{ Stats() Stats }); ok {
		return s.Stats()
	}
	return Stats{}
}

// CaptureStats implements CaptureDevice.
func (c *capture) CaptureStats() CaptureStats {
	c.rec.mu.Lock()
	defer c.rec.mu.Unlock()
	return CaptureStats{Records: c.rec.records.Load(), Missed: c.rec.missed.Load(), Err: c.rec.err}
}

func (c *capture) tryWrite(frames []link.Frame) int {
	c.recordAll(frames)
	return c.dev.(link.TryWriter).TryWriteFrames(frames)
}

// queue wraps the device's queue i, recording to the same stream; queue 0
// is the capture itself.
func (c *capture) queue(i int, self link.Device) link.Device {
	if i == 0 {
		return self
	}
	q := c.dev.(link.Queuer).Queue(i)
	if q == nil {
		return nil
	}
	return wrapCapture(q, c.rec)
}

type captureTry struct{ *capture }

// TryWriteFrames implements link.TryWriter, recording each frame.
func (c captureTry) TryWriteFrames(frames []link.Frame) int { return c.tryWrite(frames) }

type captureQueuer struct{ *capture }

// Queue implements link.Queuer: queue i of the wrapped device, captured to
// the same stream.
func (c captureQueuer) Queue(i int) link.Device { return c.queue(i, c) }

type captureTryQueuer struct{ *capture }

// TryWriteFrames implements link.TryWriter, recording each frame.
func (c captureTryQueuer) TryWriteFrames(frames []link.Frame) int { return c.tryWrite(frames) }

// Queue implements link.Queuer: queue i of the wrapped device, captured to
// the same stream.
func (c captureTryQueuer) Queue(i int) link.Device { return c.queue(i, c) }

// pcapLinkType is the pcap link type of a layer's frames.
func pcapLinkType(l link.Layer) uint32 {
	if l == link.LayerIP {
		return LinkTypeRaw
	}
	return LinkTypeEthernet
}
