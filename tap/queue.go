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

// frameQueue is the bounded receive queue of an in-memory link endpoint: a
// channel gives blocking and non-blocking sends without a lock of our own.
type frameQueue struct {
	ch   chan entry
	done <-chan struct{} // closed when the queue stops accepting frames
	rx   *counters       // the receiving endpoint's counters
}

func newFrameQueue(n int, done <-chan struct{}, rx *counters) *frameQueue {
	return &frameQueue{ch: make(chan entry, n), done: done, rx: rx}
}

func (q *frameQueue) closed() bool {
	select {
	case <-q.done:
		return true
	default:
		return false
	}
}

// put queues b, taking ownership, and reports whether it was queued. With
// block it waits for space or close; otherwise a full queue drops b.
func (q *frameQueue) put(b *buffer.Buffer, block bool) bool {
	if q.closed() {
		b.Release()
		return false
	}
	e := entry{b, now()}
	if block {
		select {
		case q.ch <- e:
		case <-q.done:
			b.Release()
			return false
		}
	} else {
		select {
		case q.ch <- e:
		default:
			b.Release()
			return false
		}
	}
	// A send racing with close may land after the closer drained the
	// queue; whoever notices the close drains again so nothing leaks.
	if q.closed() {
		q.drain()
		return false
	}
	return true
}

// drain releases every queued frame, counting them as receive drops.
func (q *frameQueue) drain() {
	for {
		select {
		case e := <-q.ch:
			e.b.Release()
			q.rx.rxDrops.Add(1)
		default:
			return
		}
	}
}

// reader is the receiving side of an in-memory endpoint: ReadFrames takes
// queued frames, applies the impairments, if any, and copies the frames out.
// mu is held for a whole ReadFrames and by Close while it tidies up, so the
// fields below it belong to one goroutine at a time.
type reader struct {
	q   *frameQueue
	imp *atomic.Pointer[Impairments] // nil: none (hub ports)
	rng *rand.Rand

	mu    sync.Mutex
	timer *time.Timer
	held  *buffer.Buffer   // frame held back for reordering
	ready []*buffer.Buffer // frames due and not yet handed out, in order
}

func newReader(q *frameQueue, imp *atomic.Pointer[Impairments], rng *rand.Rand) *reader {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &reader{q: q, imp: imp, rng: rng, timer: t}
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
		for len(r.ready) == 0 {
			e, ok := r.next()
			if !ok {
				r.releaseLocked()
				return 0, closedErr()
			}
			r.handle(e)
		}
		r.takeQueued(len(frames))
		if n := r.copyOut(frames); n > 0 {
			return n, nil
		}
	}
}

// takeQueued moves frames already queued to ready without waiting, up to
// max in all. Impaired links move one frame per call instead, so that a
// delayed frame does not hold back the ones before it.
func (r *reader) takeQueued(max int) {
	for len(r.ready) < max && r.held == nil && r.impairments() == nil {
		select {
		case e := <-r.q.ch:
			r.handle(e)
		default:
			return
		}
	}
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
// closed, counting them, and empties the queue.
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
	r.q.drain()
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
// reordering once it waited reorderHold for a successor.
func (r *reader) next() (entry, bool) {
	for {
		if r.held == nil {
			select {
			case e := <-r.q.ch:
				return e, true
			case <-r.q.done:
				return entry{}, false
			}
		}
		r.timer.Reset(reorderHold)
		select {
		case e := <-r.q.ch:
			r.timer.Stop()
			return e, true
		case <-r.timer.C:
			b := r.held
			r.held = nil
			r.emit(b, r.impairments())
			return entry{}, true // nothing new, but a frame is ready
		case <-r.q.done:
			r.timer.Stop()
			return entry{}, false
		}
	}
}

func (r *reader) impairments() *Impairments {
	if r.imp == nil {
		return nil
	}
	im := r.imp.Load()
	if im == nil || im.none() {
		return nil
	}
	return im
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

// copyFrame vets a frame written to an in-memory link of layer l with the
// given MTU and copies it into a pooled buffer, which the caller then owns.
func copyFrame(f *link.Frame, mtu int, l link.Layer) (*buffer.Buffer, error) {
	if f.Off < 0 || f.Len < 0 || f.Off+f.Len > len(f.Buf) {
		return nil, errFrameBounds
	}
	if !checkFrame(f.Len, mtu, l) {
		return nil, errFrameSize
	}
	b := buffer.Get(f.Len)
	b.Append(f.Bytes())
	return b, nil
}
