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
	// Offload opens the device with virtio-net headers (IFF_VNET_HDR) and
	// turns on the offloads the kernel has: checksum offload both ways and
	// UDP segmentation offload (Linux 6.2+), so that a burst the kernel
	// sends with UDP_SEGMENT arrives in one read and a batch of datagrams
	// leaves in one write. What was granted shows in Stats and Info.
	Offload bool
	// NoUSO keeps UDP segmentation offload off even where the kernel has
	// it, as on kernels before 6.2.
	NoUSO bool
	// Queues opens the device with IFF_MULTI_QUEUE and this many queues
	// (file descriptors), each read by its own goroutine; the kernel
	// spreads flows across them. 0 or 1 opens a single-queue device.
	Queues int
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
// Device is a link.Device. Its file descriptors are non-blocking and
// registered with Go's poller, so a blocked read returns as soon as Close is
// called. Opened with Options.Queues above 1 it is also a link.Queuer.
type Device struct {
	name  string
	mac   ethernet.MAC
	mtu   int
	layer link.Layer
	off   offloads

	closed atomic.Bool
	queues []*queue // queues[0] is the Device's own
}

// queue is one file descriptor of a device and the state of the read in
// progress on it.
type queue struct {
	d     *Device
	f     *os.File
	rc    syscall.RawConn
	stats counters // this queue's; the Device's Stats add them up

	// rmu serialises ReadFrames; the fields below it are the state of the
	// read in progress, kept here so that the poller callback (readFn, made
	// once) does not allocate a closure per call.
	rmu       sync.Mutex
	readFn    func(fd uintptr) bool
	rframes   []link.Frame
	rn        int
	rerr      error
	transient int
	vr        *vnetReader // nil without virtio-net headers
}

var (
	_ link.Device = (*Device)(nil)
	_ link.Queuer = (*Device)(nil)
)

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
	if err := checkQueues(opts.Queues); err != nil {
		return nil, err
	}
	d := &Device{name: name, mtu: opts.MTU, layer: opts.Mode.Layer()}
	if opts.Mode != ModeTUN {
		d.mac = orRandom(opts.MAC)
	}
	for i := range max(opts.Queues, 1) {
		if err := d.openQueue(opts); err != nil {
			d.closeQueues()
			if i > 0 {
				err = fmt.Errorf("queue %d: %w", i, err)
			}
			return nil, err
		}
	}
	return d, nil
}

// openQueue opens one file descriptor on the device, the first of which
// names it, sets the MTU and negotiates offloads.
func (d *Device) openQueue(opts Options) error {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("tap: open /dev/net/tun: %w", err)
	}
	first := len(d.queues) == 0
	if err := d.attach(fd, opts, first); err != nil {
		unix.Close(fd)
		return err
	}
	return d.addQueue(fd)
}

// addQueue makes fd, bound to the device, its next queue.
func (d *Device) addQueue(fd int) error {
	var err error
	q := &queue{d: d}
	// A non-blocking fd makes os.NewFile register it with the poller.
	q.f = os.NewFile(uintptr(fd), "tap:"+d.name)
	if q.rc, err = q.f.SyscallConn(); err != nil {
		q.f.Close()
		return fmt.Errorf("tap: %s: %w", d.name, err)
	}
	q.readFn = q.readBatch
	if d.off.vnet {
		q.vr = newVnetReader(d.mtu, headerLen(d.layer))
	}
	d.queues = append(d.queues, q)
	return nil
}

// attach binds fd to the device. The first queue decides what the device
// is; the others join it with the same flags.
func (d *Device) attach(fd int, opts Options, first bool) error {
	flags := uint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if opts.Mode == ModeTUN {
		flags = unix.IFF_TUN | unix.IFF_NO_PI
	}
	if opts.Queues > 1 {
		flags |= unix.IFF_MULTI_QUEUE
	}
	if first {
		d.off = offloads{}
		if opts.Offload {
			flags |= unix.IFF_VNET_HDR
		}
	} else if d.off.vnet {
		flags |= unix.IFF_VNET_HDR
	}
	name, err := setIff(fd, d.name, flags, opts.Mode)
	if err != nil && first && flags&unix.IFF_VNET_HDR != 0 {
		// A kernel or device refusing virtio-net headers: go without.
		d.off.fallback = fmt.Sprintf("IFF_VNET_HDR refused (%v)", err)
		flags &^= unix.IFF_VNET_HDR
		name, err = setIff(fd, d.name, flags, opts.Mode)
	}
	if err != nil {
		return err
	}
	if !first {
		return nil
	}
	d.name = name
	d.off.vnet = flags&unix.IFF_VNET_HDR != 0
	if d.mtu == 0 {
		if d.mtu, err = interfaceMTU(d.name); err != nil {
			return err
		}
	}
	if d.mtu < 68 || d.mtu+headerLen(d.layer) >= buffer.MaxSize() {
		return fmt.Errorf("tap: %s: MTU %d out of range", d.name, d.mtu)
	}
	if d.off.vnet {
		d.off.negotiate(fd, opts.NoUSO)
	}
	return nil
}

// The ioctls a kernel may refuse when asked for offloads. Tests replace
// them to play a kernel before 6.2, or one without virtio-net headers.
var (
	ioctlSetIff     = func(fd int, ifr *unix.Ifreq) error { return unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr) }
	ioctlSetOffload = func(fd, flags int) error { return unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, flags) }
)

// setIff binds fd to the interface name with flags and returns the name the
// kernel gave it.
func setIff(fd int, name string, flags uint16, mode Mode) (string, error) {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return "", fmt.Errorf("tap: %q: %w", name, err)
	}
	ifr.SetUint16(flags)
	if err := ioctlSetIff(fd, ifr); err != nil {
		return "", fmt.Errorf("tap: TUNSETIFF %s %q: %w", mode, name, err)
	}
	return ifr.Name(), nil
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
	info := link.Info{MTU: d.mtu, Layer: d.layer, MAC: d.mac, BatchSize: devBatchSize,
		Queues: len(d.queues)}
	if d.off.vnet {
		info.Offloads.TxChecksum = true
		if d.off.uso {
			info.Offloads.MaxGSOSize = maxSuperFrame
		}
	}
	return info
}

// MAC returns the stack's address on the link, not the kernel interface's
// (zero on a TUN).
func (d *Device) MAC() ethernet.MAC { return d.mac }

// Queue implements link.Queuer: queue i of a multi-queue device, or nil
// when there is no such queue. Queue(0) is d.
func (d *Device) Queue(i int) link.Device {
	switch {
	case i == 0:
		return d
	case i > 0 && i < len(d.queues):
		return queueDevice{d.queues[i]}
	}
	return nil
}

// ReadFrames implements link.Device. It waits on Go's poller for the first
// frame, then takes the frames the kernel already queued without waiting, up
// to len(frames). Frames longer than the MTU allows, or than their room, are
// dropped and counted. It returns an error once the device is closed or
// gone (EBADFD after the interface was deleted).
func (d *Device) ReadFrames(frames []link.Frame) (int, error) {
	return d.queues[0].readFrames(frames)
}

// WriteFrames implements link.Device. A TAP write never waits for queue
// space (the kernel takes the frame or drops it), so it does not block.
func (d *Device) WriteFrames(frames []link.Frame) (int, error) {
	return d.queues[0].writeFrames(frames)
}

// Close implements link.Device: it interrupts blocked reads on every queue,
// waits for them to return and closes the file descriptors. It is
// idempotent.
func (d *Device) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	d.resetOffloads()
	return d.closeQueues()
}

func (d *Device) closeQueues() error {
	var first error
	for _, q := range d.queues {
		if err := q.f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Stats returns the device's frame counters, summed over its queues, and
// the offloads it runs with.
func (d *Device) Stats() Stats {
	var s Stats
	for _, q := range d.queues {
		s.add(q.stats.snapshot())
	}
	s.Offloads = d.off.status()
	return s
}

// add adds o's counters to s's.
func (s *Stats) add(o Stats) {
	s.RxFrames += o.RxFrames
	s.RxBytes += o.RxBytes
	s.RxDrops += o.RxDrops
	s.RxErrors += o.RxErrors
	s.TxFrames += o.TxFrames
	s.TxBytes += o.TxBytes
	s.TxDrops += o.TxDrops
	s.TxErrors += o.TxErrors
	s.RxSuperFrames += o.RxSuperFrames
	s.TxSuperFrames += o.TxSuperFrames
	s.RxBadHeaders += o.RxBadHeaders
}

// QueueStats returns the frame counters of queue i alone (as Queue numbers
// them) and the device's offloads; zero for no such queue. It shows how
// the kernel spreads flows across the queues.
func (d *Device) QueueStats(i int) Stats {
	if i < 0 || i >= len(d.queues) {
		return Stats{}
	}
	s := d.queues[i].stats.snapshot()
	s.Offloads = d.off.status()
	return s
}

// queueDevice is queue i > 0 of a multi-queue Device. Closing it is a
// no-op: the queues live and die with the Device.
type queueDevice struct{ q *queue }

func (qd queueDevice) Info() link.Info                              { return qd.q.d.Info() }
func (qd queueDevice) ReadFrames(frames []link.Frame) (int, error)  { return qd.q.readFrames(frames) }
func (qd queueDevice) WriteFrames(frames []link.Frame) (int, error) { return qd.q.writeFrames(frames) }
func (qd queueDevice) Close() error                                 { return nil }

func (q *queue) readFrames(frames []link.Frame) (int, error) {
	if len(frames) == 0 {
		return 0, nil
	}
	q.rmu.Lock()
	defer q.rmu.Unlock()
	q.rframes, q.rn, q.rerr = frames, 0, nil
	if q.vr != nil && q.vr.pending() {
		// Segments of a super-frame read earlier come first, without a
		// system call; read more only if they leave room.
		q.rn = q.vr.emit(&q.stats, frames)
		if q.rn == len(frames) || q.vr.pending() {
			q.rframes = nil
			return q.rn, nil
		}
	}
	err := q.rc.Read(q.readFn)
	n, rerr := q.rn, q.rerr
	q.rframes = nil
	switch {
	case n > 0:
		return n, nil // a lasting error shows again on the next call
	case err != nil:
		if q.d.closed.Load() || errors.Is(err, os.ErrClosed) {
			return 0, errClosed
		}
		return 0, fmt.Errorf("tap: %s: %w", q.d.name, err)
	}
	return 0, rerr
}

// readBatch is the poller callback of ReadFrames: it reads frames until the
// batch is full or the kernel has none left, and returns false to wait on
// the poller when it got none yet.
func (q *queue) readBatch(fd uintptr) bool {
	d := q.d
	for q.rn < len(q.rframes) {
		f := &q.rframes[q.rn]
		var m int
		var err error
		if q.vr != nil {
			m, err = q.vr.read(int(fd), f)
		} else {
			m, err = q.readPlain(int(fd), f)
		}
		if err != nil {
			switch {
			case err == errFrameBounds:
				q.rerr = err
				return true
			case err == unix.EAGAIN:
				return q.rn > 0
			case err == unix.EINTR:
				continue
			}
			q.stats.rxErrors.Add(1)
			if q.transient++; q.transient < maxTransientErrors && (err == unix.ENOBUFS || err == unix.ENOMEM) {
				continue
			}
			q.rerr = fmt.Errorf("tap: %s: read: %w", d.name, err)
			return true
		}
		q.transient = 0
		if m == 0 {
			q.rerr = fmt.Errorf("tap: %s: read returned no data: %w", d.name, io.ErrUnexpectedEOF)
			return true
		}
		if q.vr == nil {
			if m >= min(len(roomOf(f)), d.mtu+headerLen(d.layer)+1) {
				q.stats.rxDrops.Add(1)
				continue
			}
			f.Len, f.Flags = m, 0
			q.stats.rx(m)
			q.rn++
			continue
		}
		q.rn += q.vr.finish(&q.stats, q.rframes[q.rn:], m)
		if q.vr.pending() {
			return true // the rest of a super-frame waits for the next call
		}
	}
	return true
}

// readPlain reads one frame without a virtio-net header into f, asking for
// one byte beyond the largest valid frame, so that a frame the kernel
// truncated to fit shows up as too long rather than as valid.
func (q *queue) readPlain(fd int, f *link.Frame) (int, error) {
	room := roomOf(f)
	limit := min(len(room), q.d.mtu+headerLen(q.d.layer)+1)
	if limit == 0 {
		return 0, errFrameBounds
	}
	return unix.Read(fd, room[:limit])
}

func (q *queue) writeFrames(frames []link.Frame) (int, error) {
	for i := range frames {
		if err := q.write(&frames[i]); err != nil {
			return i, err
		}
	}
	return len(frames), nil
}

func (q *queue) write(f *link.Frame) error {
	d := q.d
	if f.Off < 0 || f.Len < 0 || f.Off+f.Len > len(f.Buf) {
		q.stats.txErrors.Add(1)
		return errFrameBounds
	}
	var err error
	if d.off.vnet {
		err = q.writeVnet(f)
	} else if !checkFrame(f.Len, d.mtu, d.layer) || f.GSOSize != 0 {
		err = errFrameSize
	} else {
		_, err = q.f.Write(f.Bytes())
	}
	if err != nil {
		q.stats.txErrors.Add(1)
		if errors.Is(err, os.ErrClosed) {
			return errClosed
		}
		return err
	}
	q.stats.tx(f.Len)
	return nil
}
