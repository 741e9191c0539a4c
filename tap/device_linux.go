package tap

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/link"
)

// Options configure Open.
type Options struct {
	// Mode chooses a TAP (the zero value) or a TUN device.
	Mode Mode
	// MAC is the stack's own address on a TAP. The kernel side of a TAP
	// is a different host with its own MAC; zero picks a random locally
	// administered address. A TUN has none.
	MAC ethernet.MAC
	// MTU overrides the interface's MTU; 0 reads it from the interface.
	MTU int
}

// Device is a Linux TAP device (IFF_TAP|IFF_NO_PI) or, with ModeTUN, a TUN
// device (IFF_TUN|IFF_NO_PI) carrying bare IP packets. The kernel side of
// the device is configured by the user, for example:
//
//	ip addr add 192.0.2.1/24 dev tap0
//	ip link set tap0 up
//
// Frames the kernel sends out of the interface arrive here and frames written
// here arrive at the kernel as if from a host on the link (on a TUN, as if
// from the far end of a point-to-point link).
//
// Device is a link.Device. Its file descriptor is non-blocking and
// registered with Go's poller, so a blocked read returns as soon as Close is
// called.
type Device struct {
	name  string
	mac   ethernet.MAC
	mtu   int
	layer link.Layer
	f     *os.File
	rc    syscall.RawConn
	stats counters

	closed atomic.Bool

	// rmu serialises ReadFrames; the fields below it are the state of the
	// read in progress, kept here so that the poller callback (readFn, made
	// once) does not allocate a closure per call.
	rmu       sync.Mutex
	readFn    func(fd uintptr) bool
	rframes   []link.Frame
	rn        int
	rerr      error
	transient int
}

var _ link.Device = (*Device)(nil)

// devBatchSize is how many frames a Device hands over per ReadFrames at
// most: those the kernel has queued when the reader wakes up.
const devBatchSize = 64

// maxTransientErrors bounds consecutive read errors tolerated as passing
// (out of memory) before the reader gives up.
const maxTransientErrors = 100

// Open attaches to the TAP (or, with opts.Mode, TUN) device called name in
// the calling thread's network namespace, creating it if absent (a device
// created here is removed when closed; a persistent one made with
// `ip tuntap add dev NAME mode tap` stays). An empty name lets the kernel
// choose one (see Name).
func Open(name string, opts Options) (*Device, error) {
	if len(name) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("tap: interface name %q longer than %d bytes", name, unix.IFNAMSIZ-1)
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("tap: open /dev/net/tun: %w", err)
	}
	d, err := setup(fd, name, opts)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	// A non-blocking fd makes os.NewFile register it with the poller.
	d.f = os.NewFile(uintptr(fd), "tap:"+d.name)
	if d.rc, err = d.f.SyscallConn(); err != nil {
		d.f.Close()
		return nil, fmt.Errorf("tap: %s: %w", d.name, err)
	}
	d.readFn = d.readBatch
	return d, nil
}

func setup(fd int, name string, opts Options) (*Device, error) {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return nil, fmt.Errorf("tap: %q: %w", name, err)
	}
	kind := uint16(unix.IFF_TAP)
	if opts.Mode == ModeTUN {
		kind = unix.IFF_TUN
	}
	ifr.SetUint16(kind | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return nil, fmt.Errorf("tap: TUNSETIFF %s %q: %w", opts.Mode, name, err)
	}
	d := &Device{name: ifr.Name(), mtu: opts.MTU, layer: opts.Mode.Layer()}
	if opts.Mode != ModeTUN {
		d.mac = orRandom(opts.MAC)
	}
	if d.mtu == 0 {
		if d.mtu, err = interfaceMTU(d.name); err != nil {
			return nil, err
		}
	}
	if d.mtu < 68 || d.mtu+headerLen(d.layer) >= buffer.MaxSize() {
		return nil, fmt.Errorf("tap: %s: MTU %d out of range", d.name, d.mtu)
	}
	return d, nil
}

func interfaceMTU(name string) (int, error) {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("tap: socket: %w", err)
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(s, unix.SIOCGIFMTU, ifr); err != nil {
		return 0, fmt.Errorf("tap: SIOCGIFMTU %s: %w", name, err)
	}
	return int(ifr.Uint32()), nil
}

// Name returns the interface name.
func (d *Device) Name() string { return d.name }

// Info implements link.Device.
func (d *Device) Info() link.Info {
	return link.Info{MTU: d.mtu, Layer: d.layer, MAC: d.mac, BatchSize: devBatchSize}
}

// MAC returns the stack's address on the link, not the kernel interface's
// (zero on a TUN).
func (d *Device) MAC() ethernet.MAC { return d.mac }

// ReadFrames implements link.Device. It waits on Go's poller for the first
// frame, then takes the frames the kernel already queued without waiting, up
// to len(frames). Frames longer than the MTU allows, or than their room, are
// dropped and counted. It returns an error once the device is closed or
// gone (EBADFD after the interface was deleted).
func (d *Device) ReadFrames(frames []link.Frame) (int, error) {
	if len(frames) == 0 {
		return 0, nil
	}
	d.rmu.Lock()
	defer d.rmu.Unlock()
	d.rframes, d.rn, d.rerr = frames, 0, nil
	err := d.rc.Read(d.readFn)
	n, rerr := d.rn, d.rerr
	d.rframes = nil
	switch {
	case n > 0:
		return n, nil // a lasting error shows again on the next call
	case err != nil:
		if d.closed.Load() || errors.Is(err, os.ErrClosed) {
			return 0, errClosed
		}
		return 0, fmt.Errorf("tap: %s: %w", d.name, err)
	}
	return 0, rerr
}

// readBatch is the poller callback of ReadFrames: it reads frames until the
// batch is full or the kernel has none left, and returns false to wait on
// the poller when it got none yet.
func (d *Device) readBatch(fd uintptr) bool {
	for d.rn < len(d.rframes) {
		f := &d.rframes[d.rn]
		room := roomOf(f)
		// One byte beyond the largest valid frame, so that a frame the
		// kernel truncated to fit shows up as too long rather than as
		// valid.
		limit := min(len(room), d.mtu+headerLen(d.layer)+1)
		if limit == 0 {
			d.rerr = errFrameBounds
			return true
		}
		m, err := unix.Read(int(fd), room[:limit])
		if err != nil {
			switch {
			case err == unix.EAGAIN:
				return d.rn > 0
			case err == unix.EINTR:
				continue
			}
			d.stats.rxErrors.Add(1)
			if d.transient++; d.transient < maxTransientErrors && (err == unix.ENOBUFS || err == unix.ENOMEM) {
				continue
			}
			d.rerr = fmt.Errorf("tap: %s: read: %w", d.name, err)
			return true
		}
		d.transient = 0
		if m == 0 {
			d.rerr = fmt.Errorf("tap: %s: read returned no data: %w", d.name, io.ErrUnexpectedEOF)
			return true
		}
		if m >= limit {
			d.stats.rxDrops.Add(1)
			continue
		}
		f.Len, f.Flags = m, 0
		d.stats.rx(m)
		d.rn++
	}
	return true
}

// WriteFrames implements link.Device. A TAP write never waits for queue
// space (the kernel takes the frame or drops it), so it does not block.
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
	if _, err := d.f.Write(f.Bytes()); err != nil {
		d.stats.txErrors.Add(1)
		if errors.Is(err, os.ErrClosed) {
			return errClosed
		}
		return err
	}
	d.stats.tx(f.Len)
	return nil
}

// Close implements link.Device: it interrupts a blocked ReadFrames, waits
// for it to return and closes the file descriptor. It is idempotent.
func (d *Device) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	return d.f.Close()
}

// Stats returns the device's frame counters.
func (d *Device) Stats() Stats { return d.stats.snapshot() }
