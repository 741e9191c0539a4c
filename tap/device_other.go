//go:build !linux

package tap

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/link"
)

// Options configure Open.
type Options struct {
	// Mode chooses a TAP (the zero value) or a TUN device.
	Mode Mode
	// MAC is the stack's own address on a TAP; zero picks a random
	// locally administered address. A TUN has none.
	MAC ethernet.MAC
	// MTU overrides the interface's MTU; 0 reads it from the interface.
	MTU int
	// Network is the system side's address and prefix on a Windows TUN
	// (such as 192.0.2.1/24): tap-windows6 emulates a TUN by answering
	// the system's ARP for the far side of that prefix, so it must know
	// it. Unused elsewhere.
	Network netip.Prefix
	// Offload, NoUSO and Queues ask for virtio-net offloads and several
	// queues, which only Linux's driver has. Elsewhere the device runs
	// without offloads and with one queue (Info().Queues 1), and
	// Stats().Offloads.Fallback says so when Offload or Queues above 1 was
	// asked for. Queues outside 0..64 is an error, as on Linux.
	Offload, NoUSO bool
	Queues         int
}

// Device is a TAP or TUN device opened through the system's driver (see
// the package doc for which, and what is known to work). It moves one
// frame per ReadFrames and per write; the driver's descriptor does the
// rest.
type Device struct {
	name  string
	mac   ethernet.MAC
	mtu   int
	layer link.Layer
	rw    io.ReadWriteCloser
	stats counters
	off   OffloadStatus // none, and why when some were asked for

	closed atomic.Bool
	rmu    sync.Mutex // one reader at a time
}

var _ link.Device = (*Device)(nil)

// newDevice wraps an opened driver descriptor. It closes rw if it fails.
func newDevice(name string, rw io.ReadWriteCloser, opts Options) (*Device, error) {
	d := &Device{name: name, mtu: opts.MTU, layer: opts.Mode.Layer(), rw: rw,
		off: withoutVnet(opts.Offload, opts.Queues)}
	if opts.Mode != ModeTUN {
		d.mac = orRandom(opts.MAC)
	}
	if d.mtu == 0 {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			rw.Close()
			return nil, fmt.Errorf("tap: MTU of %q (set Options.MTU): %w", name, err)
		}
		d.mtu = ifi.MTU
	}
	if d.mtu < 68 || d.mtu+headerLen(d.layer) >= buffer.MaxSize() {
		rw.Close()
		return nil, fmt.Errorf("tap: %s: MTU %d out of range", name, d.mtu)
	}
	return d, nil
}

// Name returns the interface name.
func (d *Device) Name() string { return d.name }

// Info implements link.Device.
func (d *Device) Info() link.Info {
	return link.Info{MTU: d.mtu, Layer: d.layer, MAC: d.mac, BatchSize: 1}
}

// MAC returns the stack's address on the link, not the system interface's
// (zero on a TUN).
func (d *Device) MAC() ethernet.MAC { return d.mac }

// ReadFrames implements link.Device: it blocks until the driver hands over
// a frame and stores it in frames[0]. Frames longer than the MTU allows, or
// than their room, are dropped and counted.
func (d *Device) ReadFrames(frames []link.Frame) (int, error) {
	if len(frames) == 0 {
		return 0, nil
	}
	d.rmu.Lock()
	defer d.rmu.Unlock()
	f := &frames[0]
	room := roomOf(f)
	// One byte beyond the largest valid frame, so that a frame cut to
	// fit shows up as too long rather than as valid.
	limit := min(len(room), d.mtu+headerLen(d.layer)+1)
	if limit == 0 {
		return 0, errFrameBounds
	}
	for {
		m, err := d.rw.Read(room[:limit])
		switch {
		case err != nil:
			if d.closed.Load() || errors.Is(err, os.ErrClosed) {
				return 0, errClosed
			}
			d.stats.rxErrors.Add(1)
			return 0, fmt.Errorf("tap: %s: read: %w", d.name, err)
		case m <= 0: // water's utun reader can return -4 when it read nothing
			d.stats.rxErrors.Add(1)
			return 0, fmt.Errorf("tap: %s: read returned no data: %w", d.name, io.ErrUnexpectedEOF)
		case m >= limit:
			d.stats.rxDrops.Add(1)
			continue
		}
		f.Len, f.Flags = m, 0
		d.stats.rx(m)
		return 1, nil
	}
}

// WriteFrames implements link.Device, one write per frame.
func (d *Device) WriteFrames(frames []link.Frame) (int, error) {
	for i := range frames {
		if err := d.write(&frames[i]); err != nil {
			return i, err
		}
	}
	return len(frames), nil
}

func (d *Device) write(f *link.Frame) error {
	if f.Off < 0 || f.Len < 0 || f.Off+f.Len > len(f.Buf) {
		d.stats.txErrors.Add(1)
		return errFrameBounds
	}
	if !checkFrame(f.Len, d.mtu, d.layer) {
		d.stats.txErrors.Add(1)
		return errFrameSize
	}
	if d.closed.Load() {
		d.stats.txErrors.Add(1)
		return errClosed
	}
	if _, err := d.rw.Write(f.Bytes()); err != nil {
		d.stats.txErrors.Add(1)
		if d.closed.Load() || errors.Is(err, os.ErrClosed) {
			return errClosed
		}
		return err
	}
	d.stats.tx(f.Len)
	return nil
}

// Close implements link.Device: it closes the driver's descriptor, which
// interrupts a blocked ReadFrames where the driver allows it (see the
// package doc). It is idempotent.
func (d *Device) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	return d.rw.Close()
}

// Stats returns the device's frame counters, and in Offloads.Fallback
// why the offloads or queues asked for are not in use.
func (d *Device) Stats() Stats {
	s := d.stats.snapshot()
	s.Offloads = d.off
	return s
}

// Queue returns d for queue 0 and nil otherwise: off Linux a device has one
// queue. It keeps code written for Linux's multi-queue devices portable.
func (d *Device) Queue(i int) link.Device {
	if i == 0 {
		return d
	}
	return nil
}

// QueueStats returns Stats for queue 0, the only one, and zero otherwise.
func (d *Device) QueueStats(i int) Stats {
	if i != 0 {
		return Stats{}
	}
	return d.Stats()
}
