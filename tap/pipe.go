package tap

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/tapnet/tapnet/internal/buffer"
)

// DefaultQueueLen is the receive queue length, in frames, of in-memory links
// when their options leave it zero.
const DefaultQueueLen = 1024

// DefaultMTU is the MTU of in-memory links when their options leave it zero.
const DefaultMTU = 1500

// PipeOptions configure Pipe. The zero value gives two ends with random MACs,
// MTU 1500, 1024-frame queues and no impairments.
type PipeOptions struct {
	// MACs are the addresses of the two ends; zero ones are made up.
	MACs [2]MAC
	// MTU of both ends; 0 means DefaultMTU.
	MTU int
	// QueueLen bounds each direction's queue in frames; 0 means
	// DefaultQueueLen. WritePacket blocks while the peer's queue is full.
	QueueLen int
	// Impairments apply initially to both directions; change them per end
	// with SetImpairments.
	Impairments Impairments
	// Seed makes impairments reproducible; 0 picks a random seed.
	Seed uint64
}

// PipeEnd is one end of an in-memory Ethernet link made by Pipe. Frames
// written to one end are delivered, without copying, by the other end's
// delivering goroutine.
type PipeEnd struct {
	mac  MAC
	mtu  int
	pair *pipePair
	peer *PipeEnd
	in   *frameQueue // frames for this end
	out  *frameQueue // the peer's in
	// imp and rng govern the frames arriving at this end (sent by the
	// peer); only this end's deliverer draws from rng.
	imp   atomic.Pointer[Impairments]
	rng   *rand.Rand
	stats counters

	closing atomic.Bool // this end's Close started
	mu      sync.Mutex
	closed  bool
	started bool
	err     error
	wg      sync.WaitGroup
}

type pipePair struct {
	once sync.Once
	done chan struct{}
}

// Pipe returns two connected in-memory Ethernet links. Writing to one
// delivers to the other; closing either end stops both.
func Pipe(opts PipeOptions) (*PipeEnd, *PipeEnd) {
	opts.Impairments.validate()
	mtu := opts.MTU
	if mtu == 0 {
		mtu = DefaultMTU
	}
	if mtu < 0 || mtu+EthernetHeaderLen > buffer.MaxSize() {
		panic("tap: pipe MTU out of range")
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
		e := &PipeEnd{mac: orRandom(opts.MACs[i]), mtu: mtu, pair: pair}
		e.in = newFrameQueue(qlen, pair.done, &e.stats)
		// Each direction draws from its own stream so that one
		// direction's traffic does not perturb the other's outcomes.
		e.rng = rand.New(rand.NewPCG(seed, uint64(i)))
		im := opts.Impairments
		e.imp.Store(&im)
		ends[i] = e
	}
	ends[0].out, ends[1].out = ends[1].in, ends[0].in
	ends[0].peer, ends[1].peer = ends[1], ends[0]
	return ends[0], ends[1]
}

// MTU implements Link.
func (e *PipeEnd) MTU() int { return e.mtu }

// LinkAddress implements Link.
func (e *PipeEnd) LinkAddress() MAC { return e.mac }

// SetImpairments changes the impairments of the frames this end sends. It is
// safe to call at any time; frames already queued get the new settings.
func (e *PipeEnd) SetImpairments(im Impairments) {
	im.validate()
	e.peer.imp.Store(&im)
}

// Impairments returns the impairments of the frames this end sends.
func (e *PipeEnd) Impairments() Impairments { return *e.peer.imp.Load() }

// Attach implements Link.
func (e *PipeEnd) Attach(deliver func(*buffer.Buffer)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started {
		panic(errAttachTwice)
	}
	e.started = true
	if e.closed {
		return
	}
	d := newDeliverer(e.in, deliver, &e.imp, e.rng)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		d.run()
		if !e.closing.Load() {
			e.mu.Lock()
			e.err = errPeerClosed
			e.mu.Unlock()
			deliver(nil)
		}
	}()
}

// WritePacket implements Link: it queues frame for the peer, blocking while
// the peer's queue is full.
func (e *PipeEnd) WritePacket(frame *buffer.Buffer) error {
	return e.write(frame, true)
}

// TryWritePacket implements Link: it queues frame unless the peer's queue is
// full, in which case it drops it and returns false.
func (e *PipeEnd) TryWritePacket(frame *buffer.Buffer) bool {
	return e.write(frame, false) == nil
}

func (e *PipeEnd) write(frame *buffer.Buffer, block bool) error {
	n := frame.Len()
	if !checkFrame(n, e.mtu) {
		frame.Release()
		e.stats.txErrors.Add(1)
		return errFrameSize
	}
	if e.out.put(frame, block) {
		e.stats.tx(n)
		return nil
	}
	if e.out.closed() {
		e.stats.txErrors.Add(1)
		return errClosed
	}
	e.stats.txDrops.Add(1)
	return errQueueFull
}

// Close implements Link. Closing either end closes the pipe: both ends'
// writes fail, delivery stops, queued frames are released, and the other end
// reports the close through deliver(nil) and Err.
func (e *PipeEnd) Close() error {
	e.closing.Store(true)
	e.pair.once.Do(func() { close(e.pair.done) })
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.wg.Wait()
	e.in.drain()
	e.out.drain()
	return nil
}

// Err implements Link: after the peer closed the pipe it wraps net.ErrClosed.
func (e *PipeEnd) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// Stats returns the end's frame counters.
func (e *PipeEnd) Stats() Stats { return e.stats.snapshot() }
