package tap

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/link"
)

// DefaultQueueLen is the receive queue length, in frames, of in-memory links
// when their options leave it zero.
const DefaultQueueLen = 1024

// DefaultMTU is the MTU of in-memory links when their options leave it zero.
const DefaultMTU = 1500

// memBatchSize is the batch size in-memory links report: how many queued
// frames one ReadFrames may hand over.
const memBatchSize = 64

// PipeOptions configure Pipe. The zero value gives an Ethernet link whose
// two ends have random MACs, MTU 1500, 1024-frame queues and no impairments.
type PipeOptions struct {
	// Layer is what the pipe carries: Ethernet frames (the zero value), or
	// with link.LayerIP bare IP packets, a point-to-point link like a TUN
	// device's with a stack at each end instead of a kernel at one.
	Layer link.Layer
	// MACs are the addresses of the two ends; zero ones are made up. An
	// IP pipe has none.
	MACs [2]ethernet.MAC
	// MTU of both ends; 0 means DefaultMTU.
	MTU int
	// QueueLen bounds each direction's queue in frames; 0 means
	// DefaultQueueLen. WriteFrames blocks while the peer's queue is full.
	QueueLen int
	// Impairments apply initially to both directions; change them per end
	// with SetImpairments.
	Impairments Impairments
	// Seed makes impairments reproducible; 0 picks a random seed.
	Seed uint64
}

// PipeEnd is one end of an in-memory link made by Pipe, a link.Device.
// A frame written to one end is copied straight into the frames of the other
// end's ReadFrames when that is waiting with nothing queued and no
// impairments to apply; otherwise it is copied into the other end's queue
// and out again by its ReadFrames.
type PipeEnd struct {
	mac   ethernet.MAC
	mtu   int
	layer link.Layer
	pair  *pipePair
	peer  *PipeEnd
	in    *frameQueue // frames for this end
	out   *frameQueue // the peer's in
	// imp governs the frames arriving at this end (sent by the peer); only
	// this end's reader draws from its random source.
	imp   atomic.Pointer[Impairments]
	rd    *reader
	stats counters

	closing atomic.Bool // this end's Close started
}

var (
	_ link.Device    = (*PipeEnd)(nil)
	_ link.TryWriter = (*PipeEnd)(nil)
)

type pipePair struct {
	once sync.Once
	done chan struct{}
}

// Pipe returns the two ends of an in-memory link, Ethernet or (with
// opts.Layer) IP. Writing to one delivers to the other; closing either end
// stops both. It panics on an MTU or layer out of range.
func Pipe(opts PipeOptions) (*PipeEnd, *PipeEnd) {
	opts.Impairments.validate()
	mtu := opts.MTU
	if mtu == 0 {
		mtu = DefaultMTU
	}
	if mtu < 0 || mtu+headerLen(opts.Layer) > buffer.MaxSize() {
		panic("tap: pipe MTU out of range")
	}
	if opts.Layer != link.LayerEthernet && opts.Layer != link.LayerIP {
		panic("tap: unknown pipe layer")
	}
	qlen := opts.QueueLen
	if qlen <= 0 {
		qlen = DefaultQueueLen
	}
	seed := opts.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	pair := &pipePair{done: make(chan struct{})}
	var ends [2]*PipeEnd
	for i := range ends {
		e := &PipeEnd{mtu: mtu, layer: opts.Layer, pair: pair}
		if opts.Layer == link.LayerEthernet {
			e.mac = orRandom(opts.MACs[i])
		}
		e.in = newFrameQueue(qlen, pair.done, &e.stats, &e.imp)
		// Each direction draws from its own stream so that one
		// direction's traffic does not perturb the other's outcomes.
		e.rd = newReader(e.in, rand.New(rand.NewPCG(seed, uint64(i))))
		im := opts.Impairments
		e.imp.Store(&im)
		ends[i] = e
	}
	ends[0].out, ends[1].out = ends[1].in, ends[0].in
	ends[0].peer, ends[1].peer = ends[1], ends[0]
	return ends[0], ends[1]
}

// orRandom returns m, or a random address when m is zero.
func orRandom(m ethernet.MAC) ethernet.MAC {
	if m == (ethernet.MAC{}) {
		return ethernet.RandomMAC()
	}
	return m
}

// Info implements link.Device.
func (e *PipeEnd) Info() link.Info {
	return link.Info{MTU: e.mtu, Layer: e.layer, MAC: e.mac, BatchSize: memBatchSize}
}

// MAC returns the end's own address (zero on an IP pipe).
func (e *PipeEnd) MAC() ethernet.MAC { return e.mac }

// SetImpairments changes the impairments of the frames this end sends. It is
// safe to call at any time; frames already queued get the new settings.
func (e *PipeEnd) SetImpairments(im Impairments) {
	im.validate()
	e.peer.imp.Store(&im)
}

// Impairments returns the impairments of the frames this end sends.
func (e *PipeEnd) Impairments() Impairments { return *e.peer.imp.Load() }

// ReadFrames implements link.Device. It waits for the first frame, then
// takes the frames already queued without waiting (one at a time while
// impairments are set). Once either end closed the pipe it returns an error
// wrapping net.ErrClosed.
func (e *PipeEnd) ReadFrames(frames []link.Frame) (int, error) {
	return e.rd.read(frames, e.closedErr)
}

func (e *PipeEnd) closedErr() error {
	if e.closing.Load() {
		return errClosed
	}
	return errPeerClosed
}

// WriteFrames implements link.Device: it copies each frame into the peer's
// queue, blocking while the queue is full.
func (e *PipeEnd) WriteFrames(frames []link.Frame) (int, error) {
	for i := range frames {
		if err := e.write(&frames[i], true); err != nil {
			return i, err
		}
	}
	return len(frames), nil
}

// TryWriteFrames implements link.TryWriter: it queues the frames that fit in
// the peer's queue at once, drops the others, and returns how many it
// queued.
func (e *PipeEnd) TryWriteFrames(frames []link.Frame) int {
	n := 0
	for i := range frames {
		if e.write(&frames[i], false) == nil {
			n++
		}
	}
	return n
}

func (e *PipeEnd) write(f *link.Frame, block bool) error {
	if err := vetFrame(f, e.mtu, e.layer); err != nil {
		e.stats.txErrors.Add(1)
		return err
	}
	switch e.out.put(f.Bytes(), block) {
	case putDone:
		e.stats.tx(f.Len)
		return nil
	case putClosed:
		e.stats.txErrors.Add(1)
		return errClosed
	default:
		e.stats.txDrops.Add(1)
		return errQueueFull
	}
}

// Close implements link.Device. Closing either end closes the pipe: both
// ends' writes fail, reads return an error, and queued frames are released.
func (e *PipeEnd) Close() error {
	e.closing.Store(true)
	e.pair.once.Do(func() { close(e.pair.done) })
	e.in.close()
	e.out.close()
	e.rd.close()
	return nil
}

// Stats returns the end's frame counters.
func (e *PipeEnd) Stats() Stats { return e.stats.snapshot() }
