package tap

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/link"
)

// epoch anchors the monotonic timestamps of queued frames.
var epoch = time.Now()

func now() time.Duration { return time.Since(epoch) }

type entry struct {
	b  *buffer.Buffer
	at time.Duration // when it was written, for Delay
}

// putResult says what became of a frame offered to a frameQueue.
type putResult uint8

const (
	putDone   putResult = iota // queued, or handed straight to the reader
	putFull                    // dropped: the queue was full and the put did not block
	putClosed                  // refused: the queue is closed
)

// frameQueue is the bounded receive queue of an in-memory link endpoint.
//
// A frame written while the endpoint's reader is parked in ReadFrames, with
// nothing queued ahead of it and no impairments to apply, is copied straight
// into the reader's frames: one copy per hop and no buffer of our own. A
// ping-pong exchange (a request, then its answer) always goes this way, and
// so does a burst (the fragments of a datagram) while it fits the reader's
// batch, which fills until the reader wakes. Other frames are copied into
// pooled buffers held in a ring, and the reader takes them in batches. One
// mutex guards it all; the reader parks on a one-token channel (so that it
// can also wait on a timer) and blocked writers on a condition variable.
type frameQueue struct {
	mu      sync.Mutex
	ring    []entry // len(ring) is the bound, in frames
	head, n int     // the queued frames are ring[head:head+n], wrapping
	closed  bool
	notFull sync.Cond // writers waiting for room; blocked counts them
	blocked int

	// The parked reader. Whoever changes the queue while waiting is set
	// clears it and sends the one token on wake. Frames stored in direct
	// count against the bound until the reader takes them.
	waiting bool
	direct  []link.Frame // the parked reader's frames, nil unless it takes frames directly
	filled  int          // frames stored in direct
	wake    chan struct{}

	done <-chan struct{}              // closed when the link closes, for sleeps on a timer
	imp  *atomic.Pointer[Impairments] // the impairments of frames to this queue, nil for none
	rx   *counters                    // the receiving endpoint's counters
}

func newFrameQueue(n int, done <-chan struct{}, rx *counters, imp *atomic.Pointer[Impairments]) *frameQueue {
	q := &frameQueue{ring: make([]entry, n), wake: make(chan struct{}, 1), done: done, imp: imp, rx: rx}
	q.notFull.L = &q.mu
	return q
}

// put copies f into the queue or straight to the parked reader. With block
// it waits for room or close; otherwise a full queue drops f.
func (q *frameQueue) put(f []byte, block bool) putResult {
	q.mu.Lock()
	for !q.closed && q.n+q.filled >= len(q.ring) {
		if !block {
			q.mu.Unlock()
			return putFull
		}
		q.blocked++
		q.notFull.Wait()
		q.blocked--
	}
	if q.closed {
		q.mu.Unlock()
		return putClosed
	}
	if q.n == 0 && q.filled < len(q.direct) && !impaired(q.imp) {
		q.handOff(f)
	} else {
		q.push(f)
	}
	wake := q.waiting
	q.waiting = false
	q.mu.Unlock()
	if wake {
		q.signal()
	}
	return putDone
}

// handOff stores f in the parked reader's next frame, dropping it if it
// does not fit there, as ReadFrames drops a frame longer than its room.
func (q *frameQueue) handOff(f []byte) {
	d := &q.direct[q.filled]
	room := roomOf(d)
	if len(f) > len(room) {
		q.rx.rxDrops.Add(1)
		return
	}
	d.Len = copy(room, f)
	d.Flags = 0
	q.filled++
	q.rx.rx(d.Len)
}

// push copies f into a pooled buffer at the tail of the ring.
func (q *frameQueue) push(f []byte) {
	b := buffer.Get(len(f))
	b.Append(f)
	i := q.head + q.n
	if i >= len(q.ring) {
		i -= len(q.ring)
	}
	q.ring[i] = entry{b, now()}
	q.n++
}

// popLocked takes the frame at the head of the ring; the queue must hold
// one.
func (q *frameQueue) popLocked() entry {
	e := q.ring[q.head]
	q.ring[q.head] = entry{}
	q.head++
	if q.head == len(q.ring) {
		q.head = 0
	}
	q.n--
	return e
}

// roomMadeLocked wakes the writers waiting for room.
func (q *frameQueue) roomMadeLocked() {
	if q.blocked > 0 {
		q.notFull.Broadcast()
	}
}

// signal hands the parked reader its token.
func (q *frameQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default: // cannot happen: only the one who cleared waiting sends
	}
}

// takeBatch appends up to max queued frames to dst or, if nothing is
// queued, parks the reader with frames as the place for writers to store
// the next ones directly. It reports how many frames writers stored in
// frames, and false once the queue is closed and empty.
func (q *frameQueue) takeBatch(dst []*buffer.Buffer, max int, frames []link.Frame) ([]*buffer.Buffer, int, bool) {
	q.mu.Lock()
	if q.n == 0 {
		if q.closed {
			q.mu.Unlock()
			return dst, 0, false
		}
		q.direct, q.filled, q.waiting = frames, 0, true
		q.mu.Unlock()
		<-q.wake
		q.mu.Lock()
		n := q.filled
		q.direct, q.filled = nil, 0
		if n > 0 {
			q.roomMadeLocked()
		}
		q.mu.Unlock()
		return dst, n, true
	}
	for q.n > 0 && max > 0 {
		dst = append(dst, q.popLocked().b)
		max--
	}
	q.roomMadeLocked()
	q.mu.Unlock()
	return dst, 0, true
}

// take returns the frame at the head of the queue. If there is none it
// returns ok false, having parked the reader unless the queue is closed
// (closed true); a parked reader then waits for its token.
func (q *frameQueue) take() (e entry, ok, closed bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n > 0 {
		e = q.popLocked()
		q.roomMadeLocked()
		return e, true, false
	}
	if q.closed {
		return entry{}, false, true
	}
	q.waiting = true
	return entry{}, false, false
}

// unpark withdraws a parked reader that stopped waiting (its timer fired).
// If someone already cleared waiting, their token is on its way and unpark
// takes it, so that the channel is empty for the next park.
func (q *frameQueue) unpark() {
	q.mu.Lock()
	w := q.waiting
	q.waiting = false
	q.mu.Unlock()
	if !w {
		<-q.wake
	}
}

// close stops the queue: queued frames are released and counted as receive
// drops, a parked reader and blocked writers wake, and further puts fail.
func (q *frameQueue) close() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.closed = true
	for q.n > 0 {
		q.popLocked().b.Release()
		q.rx.rxDrops.Add(1)
	}
	q.notFull.Broadcast()
	wake := q.waiting
	q.waiting = false
	q.mu.Unlock()
	if wake {
		q.signal()
	}
}

// impaired reports whether p holds impairments that do something.
func impaired(p *atomic.Pointer[Impairments]) bool {
	if p == nil {
		return false
	}
	im := p.Load()
	return im != nil && !im.none()
}

// reader is the receiving side of an in-memory endpoint: ReadFrames takes
// queued frames, applies the impairments, if any, and copies the frames out.
// mu is held for a whole ReadFrames and by Close while it tidies up, so the
// fields below it belong to one goroutine at a time.
type reader struct {
	q   *frameQueue
	rng *rand.Rand

	mu    sync.Mutex
	timer *time.Timer
	held  *buffer.Buffer   // frame held back for reordering
	ready []*buffer.Buffer // frames due and not yet handed out, in order
}

func newReader(q *frameQueue, rng *rand.Rand) *reader {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &reader{q: q, rng: rng, timer: t}
}

// read implements link.Device.ReadFrames. After the queue closed it tidies
// up and returns closedErr().
func (r *reader) read(frames []link.Frame, closedErr func() error) (int, error) {
	if len(frames) == 0 {
		return 0, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		if len(r.ready) == 0 && r.held == nil && r.impairments() == nil {
			n, ok := r.readPlain(frames)
			if !ok {
				r.releaseLocked()
				return 0, closedErr()
			}
			if n > 0 {
				return n, nil
			}
			continue // woken for a frame to impair, or every frame dropped
		}
		for len(r.ready) == 0 {
			e, ok := r.next()
			if !ok {
				r.releaseLocked()
				return 0, closedErr()
			}
			r.handle(e)
		}
		if n := r.copyOut(frames); n > 0 {
			return n, nil
		}
	}
}

// readPlain reads with no impairments: a batch of what is queued, or else
// the frames writers store directly while the reader waits.
func (r *reader) readPlain(frames []link.Frame) (int, bool) {
	var n int
	var ok bool
	r.ready, n, ok = r.q.takeBatch(r.ready, len(frames), frames)
	if n > 0 || !ok {
		return n, ok
	}
	return r.copyOut(frames), true
}

// copyOut copies ready frames into frames and returns how many it stored.
// A frame longer than the room it is given is dropped, as the Device
// contract says.
func (r *reader) copyOut(frames []link.Frame) int {
	n, used := 0, 0
	for _, b := range r.ready {
		if n == len(frames) {
			break
		}
		used++
		f := &frames[n]
		room := roomOf(f)
		if b.Len() > len(room) {
			b.Release()
			r.q.rx.rxDrops.Add(1)
			continue
		}
		f.Len = copy(room, b.Bytes())
		f.Flags = 0
		r.q.rx.rx(f.Len)
		b.Release()
		n++
	}
	rest := copy(r.ready, r.ready[used:])
	clear(r.ready[rest:])
	r.ready = r.ready[:rest]
	return n
}

// roomOf returns the space a link may fill in f, or nil if Off is invalid.
func roomOf(f *link.Frame) []byte {
	if f.Off < 0 || f.Off > len(f.Buf) {
		return nil
	}
	return f.Buf[f.Off:]
}

// releaseLocked drops the frames the reader still holds once the link is
// closed, counting them.
func (r *reader) releaseLocked() {
	if r.held != nil {
		r.held.Release()
		r.held = nil
		r.q.rx.rxDrops.Add(1)
	}
	for i, b := range r.ready {
		b.Release()
		r.ready[i] = nil
		r.q.rx.rxDrops.Add(1)
	}
	r.ready = r.ready[:0]
}

// close tidies up after the queue closed, waiting for a ReadFrames in
// progress to return.
func (r *reader) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.timer.Stop()
	r.releaseLocked()
}

// next waits for the next queued frame, releasing a frame held back for
// reordering once it waited reorderHold for a successor (then it returns an
// empty entry).
func (r *reader) next() (entry, bool) {
	for {
		e, ok, closed := r.q.take()
		if ok || closed {
			return e, ok
		}
		if r.held == nil {
			<-r.q.wake
			continue
		}
		r.timer.Reset(reorderHold)
		select {
		case <-r.q.wake:
			r.timer.Stop()
		case <-r.timer.C:
			r.q.unpark()
			b := r.held
			r.held = nil
			r.emit(b, r.impairments())
			return entry{}, true // nothing new, but a frame is ready
		}
	}
}

func (r *reader) impairments() *Impairments {
	if !impaired(r.q.imp) {
		return nil
	}
	return r.q.imp.Load()
}

// handle applies the impairments to one queued frame, making it ready,
// holding it back, or dropping it. An empty entry (from next, after it
// released a held frame) does nothing.
func (r *reader) handle(e entry) {
	if e.b == nil {
		return
	}
	im := r.impairments()
	if im == nil {
		r.emit(e.b, nil)
		r.flushHeld(nil)
		return
	}
	if im.Loss > 0 && r.rng.Float64() < im.Loss {
		e.b.Release()
		r.q.rx.rxDrops.Add(1)
		return
	}
	if im.Delay > 0 || im.Jitter > 0 {
		due := e.at + im.Delay
		if im.Jitter > 0 {
			due += time.Duration(r.rng.Int64N(2*int64(im.Jitter)+1)) - im.Jitter
		}
		if wait := due - now(); wait > 0 && !r.sleep(wait) {
			e.b.Release()
			r.q.rx.rxDrops.Add(1)
			return
		}
	}
	if r.held == nil && im.Reorder > 0 && r.rng.Float64() < im.Reorder {
		r.held = e.b
		return
	}
	r.emit(e.b, im)
	r.flushHeld(im)
}

func (r *reader) flushHeld(im *Impairments) {
	if b := r.held; b != nil {
		r.held = nil
		r.emit(b, im)
	}
}

// sleep waits for wait or close, reporting false on close.
func (r *reader) sleep(wait time.Duration) bool {
	r.timer.Reset(wait)
	select {
	case <-r.timer.C:
		return true
	case <-r.q.done:
		r.timer.Stop()
		return false
	}
}

// emit makes b ready, preceded by a copy when the Duplicate impairment
// fires.
func (r *reader) emit(b *buffer.Buffer, im *Impairments) {
	if im != nil && im.Duplicate > 0 && r.rng.Float64() < im.Duplicate {
		r.ready = append(r.ready, b.Clone())
	}
	r.ready = append(r.ready, b)
}

// vetFrame checks that a frame written to an in-memory link of layer l with
// the given MTU lies within its buffer and has a size the link carries.
func vetFrame(f *link.Frame, mtu int, l link.Layer) error {
	if f.Off < 0 || f.Len < 0 || f.Off+f.Len > len(f.Buf) {
		return errFrameBounds
	}
	if !checkFrame(f.Len, mtu, l) {
		return errFrameSize
	}
	return nil
}
