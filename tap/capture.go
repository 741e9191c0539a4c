package tap

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapnet/tapnet/internal/buffer"
)

// CaptureLink wraps a Link and records every frame it sends and receives to
// a pcap stream, like tcpdump on an interface. Sent frames are recorded as
// they are handed to the link, including any the link then drops. The first
// write error stops capturing for good; the link itself carries on.
type CaptureLink struct {
	Link
	mu      sync.Mutex
	pw      pcapWriter
	err     error
	records atomic.Uint64
	missed  atomic.Uint64
	stopped atomic.Bool
}

// CaptureStats reports how a capture went.
type CaptureStats struct {
	Records uint64 // frames written
	Missed  uint64 // frames not written because capturing stopped
	Err     error  // the write error that stopped capturing
}

// Capture writes a pcap file header to w and returns l wrapped so that its
// traffic is appended to w. Use the wrapper in place of l. Writes to w are
// serialized; Close flushes w if it has a Flush() error method (a
// bufio.Writer) but does not close it.
func Capture(l Link, w io.Writer) (*CaptureLink, error) {
	if l == nil || w == nil {
		return nil, errors.New("tap: Capture needs a link and a writer")
	}
	c := &CaptureLink{Link: l, pw: pcapWriter{w: w}}
	if err := c.pw.writeHeader(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *CaptureLink) record(frame []byte) {
	if c.stopped.Load() {
		c.missed.Add(1)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		c.missed.Add(1)
		return
	}
	// Stamped under the lock so the file's timestamps never go backwards.
	if err := c.pw.writeRecord(time.Now(), frame); err != nil {
		c.err = err
		c.stopped.Store(true)
		c.missed.Add(1)
		return
	}
	c.records.Add(1)
}

// Attach implements Link, recording each received frame before delivering it.
func (c *CaptureLink) Attach(deliver func(*buffer.Buffer)) {
	c.Link.Attach(func(b *buffer.Buffer) {
		if b != nil {
			c.record(b.Bytes())
		}
		deliver(b)
	})
}

// WritePacket implements Link.
func (c *CaptureLink) WritePacket(frame *buffer.Buffer) error {
	c.record(frame.Bytes())
	return c.Link.WritePacket(frame)
}

// TryWritePacket implements Link.
func (c *CaptureLink) TryWritePacket(frame *buffer.Buffer) bool {
	c.record(frame.Bytes())
	return c.Link.TryWritePacket(frame)
}

// Close closes the wrapped link and then flushes the capture.
func (c *CaptureLink) Close() error {
	err := c.Link.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.pw.w.(interface{ Flush() error }); ok && c.err == nil {
		if ferr := f.Flush(); ferr != nil {
			c.err = ferr
			c.stopped.Store(true)
		}
	}
	return err
}

// Stats returns the wrapped link's counters, or zero ones when it has none.
func (c *CaptureLink) Stats() Stats {
	if s, ok := c.Link.(interface{ Stats() Stats }); ok {
		return s.Stats()
	}
	return Stats{}
}

// CaptureStats returns how many frames were recorded and missed, and the
// error that stopped capturing, if any.
func (c *CaptureLink) CaptureStats() CaptureStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CaptureStats{Records: c.records.Load(), Missed: c.missed.Load(), Err: c.err}
}
