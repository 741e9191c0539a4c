package tap

import (
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/tapnet/tapnet/internal/buffer"
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

// deliverer is the one goroutine of an in-memory endpoint that hands queued
// frames to the attached deliver function, applying impairments if any.
type deliverer struct {
	q       *frameQueue
	deliver func(*buffer.Buffer)
	imp     *atomic.Pointer[Impairments] // nil: none (hub ports)
	rng     *rand.Rand
	timer   *time.Timer
	held    *buffer.Buffer // frame held back for reordering
}

func newDeliverer(q *frameQueue, deliver func(*buffer.Buffer), imp *atomic.Pointer[Impairments], rng *rand.Rand) *deliverer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &deliverer{q: q, deliver: deliver, imp: imp, rng: rng, timer: t}
}

// run delivers until the queue closes, then releases what is left.
func (d *deliverer) run() {
	for {
		e, ok := d.next()
		if !ok {
			break
		}
		d.handle(e)
	}
	if d.held != nil {
		d.held.Release()
		d.held = nil
		d.q.rx.rxDrops.Add(1)
	}
	d.q.drain()
}

func (d *deliverer) next() (entry, bool) {
	for {
		if d.held == nil {
			select {
			case e := <-d.q.ch:
				return e, true
			case <-d.q.done:
				return entry{}, false
			}
		}
		d.timer.Reset(reorderHold)
		select {
		case e := <-d.q.ch:
			d.timer.Stop()
			return e, true
		case <-d.timer.C:
			b := d.held
			d.held = nil
			d.emit(b, d.impairments())
		case <-d.q.done:
			d.timer.Stop()
			return entry{}, false
		}
	}
}

func (d *deliverer) impairments() *Impairments {
	if d.imp == nil {
		return nil
	}
	im := d.imp.Load()
	if im == nil || im.none() {
		return nil
	}
	return im
}

func (d *deliverer) handle(e entry) {
	im := d.impairments()
	if im == nil {
		d.emit(e.b, nil)
		d.flushHeld(nil)
		return
	}
	if im.Loss > 0 && d.rng.Float64() < im.Loss {
		e.b.Release()
		d.q.rx.rxDrops.Add(1)
		return
	}
	if im.Delay > 0 || im.Jitter > 0 {
		due := e.at + im.Delay
		if im.Jitter > 0 {
			due += time.Duration(d.rng.Int64N(2*int64(im.Jitter)+1)) - im.Jitter
		}
		if wait := due - now(); wait > 0 && !d.sleep(wait) {
			e.b.Release()
			d.q.rx.rxDrops.Add(1)
			return
		}
	}
	if d.held == nil && im.Reorder > 0 && d.rng.Float64() < im.Reorder {
		d.held = e.b
		return
	}
	d.emit(e.b, im)
	d.flushHeld(im)
}

func (d *deliverer) flushHeld(im *Impairments) {
	if b := d.held; b != nil {
		d.held = nil
		d.emit(b, im)
	}
}

// sleep waits for wait or close, reporting false on close.
func (d *deliverer) sleep(wait time.Duration) bool {
	d.timer.Reset(wait)
	select {
	case <-d.timer.C:
		return true
	case <-d.q.done:
		d.timer.Stop()
		return false
	}
}

// emit delivers b, preceded by a copy when the Duplicate impairment fires.
func (d *deliverer) emit(b *buffer.Buffer, im *Impairments) {
	if im != nil && im.Duplicate > 0 && d.rng.Float64() < im.Duplicate {
		c := b.Clone()
		d.q.rx.rx(c.Len())
		d.deliver(c)
	}
	d.q.rx.rx(b.Len())
	d.deliver(b)
}
