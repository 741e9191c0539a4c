package tap

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/tapnet/tapnet/internal/buffer"
)

// Options configure Open.
type Options struct {
	// MAC is the stack's own address on the link. The kernel side of a TAP
	// is a different host with its own MAC; zero picks a random locally
	// administered address.
	MAC MAC
	// MTU overrides the interface's MTU; 0 reads it from the interface.
	MTU int
}

// Device is a Linux TAP device (IFF_TAP|IFF_NO_PI). The kernel side of the
// device is configured by the user, for example:
//
//	ip addr add 192.0.2.1/24 dev tap0
//	ip link set tap0 up
//
// Frames the kernel sends out of the interface arrive here and frames written
// here arrive at the kernel as if from a host on the link.
//
// The file descriptor is non-blocking and registered with Go's poller, so a
// blocked read returns as soon as Close is called.
type Device struct {
	name  string
	mac   MAC
	mtu   int
	f     *os.File
	stats counters

	closed  atomic.Bool
	mu      sync.Mutex
	started bool
	err     error
	wg      sync.WaitGroup
}

// maxTransientErrors bounds consecutive read errors tolerated as passing
// (out of memory) before the reader gives up.
const maxTransientErrors = 100

// Open attaches to the TAP device called name in the calling thread's
// network namespace, creating it if absent (a device created here is removed
// when closed; a persistent one made with `ip tuntap add dev NAME mode tap`
// stays). An empty name lets the kernel choose one (see Name).
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
	return d, nil
}

func setup(fd int, name string, opts Options) (*Device, error) {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return nil, fmt.Errorf("tap: %q: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return nil, fmt.Errorf("tap: TUNSETIFF %q: %w", name, err)
	}
	d := &Device{name: ifr.Name(), mac: orRandom(opts.MAC), mtu: opts.MTU}
	if d.mtu == 0 {
		if d.mtu, err = interfaceMTU(d.name); err != nil {
			return nil, err
		}
	}
	if d.mtu < 68 || d.mtu+EthernetHeaderLen >= buffer.MaxSize() {
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

// MTU implements Link.
func (d *Device) MTU() int { return d.mtu }

// LinkAddress implements Link: the stack's MAC, not the kernel interface's.
func (d *Device) LinkAddress() MAC { return d.mac }

// Attach implements Link. It starts the device's one reader goroutine.
func (d *Device) Attach(deliver func(*buffer.Buffer)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.started {
		panic(errAttachTwice)
	}
	d.started = true
	if d.closed.Load() {
		return
	}
	d.wg.Add(1)
	go d.read(deliver)
}

func (d *Device) read(deliver func(*buffer.Buffer)) {
	defer d.wg.Done()
	// One byte beyond the largest valid frame, so that a frame the kernel
	// truncated to fit shows up as too long rather than as valid.
	size := d.mtu + EthernetHeaderLen + 1
	transient := 0
	for {
		b := buffer.Get(size)
		n, err := d.f.Read(b.Tail())
		if err != nil {
			b.Release()
			if d.closed.Load() {
				return
			}
			d.stats.rxErrors.Add(1)
			if transient++; transient < maxTransientErrors &&
				(errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.ENOMEM)) {
				continue
			}
			if err == io.EOF {
				err = fmt.Errorf("tap: %s: read returned no data: %w", d.name, io.ErrUnexpectedEOF)
			}
			d.mu.Lock()
			d.err = err
			d.mu.Unlock()
			deliver(nil)
			return
		}
		transient = 0
		if n > d.mtu+EthernetHeaderLen {
			b.Release()
			d.stats.rxDrops.Add(1)
			continue
		}
		b.SetLen(n)
		d.stats.rx(n)
		deliver(b)
	}
}

// WritePacket implements Link. A TAP write never waits for queue space (the
// kernel takes the frame or drops it), so it does not block.
func (d *Device) WritePacket(frame *buffer.Buffer) error {
	n := frame.Len()
	if !checkFrame(n, d.mtu) {
		frame.Release()
		d.stats.txErrors.Add(1)
		return errFrameSize
	}
	_, err := d.f.Write(frame.Bytes())
	frame.Release()
	if err != nil {
		d.stats.txErrors.Add(1)
		if errors.Is(err, os.ErrClosed) {
			return errClosed
		}
		return err
	}
	d.stats.tx(n)
	return nil
}

// TryWritePacket implements Link; for a TAP it is WritePacket.
func (d *Device) TryWritePacket(frame *buffer.Buffer) bool {
	return d.WritePacket(frame) == nil
}

// Close implements Link: it interrupts the reader, waits for it to return and
// closes the file descriptor. It is idempotent.
func (d *Device) Close() error {
	d.mu.Lock()
	first := !d.closed.Swap(true)
	d.mu.Unlock()
	var err error
	if first {
		err = d.f.Close()
	}
	d.wg.Wait()
	return err
}

// Err implements Link: the read error that stopped delivery, for example
// EBADFD once the interface was deleted.
func (d *Device) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// Stats returns the device's frame counters.
func (d *Device) Stats() Stats { return d.stats.snapshot() }
