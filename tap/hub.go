package tap

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/tapnet/tapnet/internal/buffer"
)

// Hub is an in-memory learning Ethernet switch. It learns which port each
// source MAC lives behind, forwards unicast to a known destination's port
// only, and floods broadcast, multicast and unknown unicast to every other
// port. Flooded frames are copies (Clone): receivers own their buffer and may
// modify it. Forwarding happens in the writer's goroutine; each port then
// delivers from its own queue and goroutine.
type Hub struct {
	mu     sync.RWMutex
	macs   map[MAC]*HubPort
	ports  []*HubPort // replaced, never modified, so readers may keep it
	closed bool
}

// HubPortOptions configure a hub port. The zero value gives a random MAC,
// MTU 1500 and a 1024-frame queue.
type HubPortOptions struct {
	MAC      MAC
	MTU      int
	QueueLen int
}

// HubPort is a Link plugged into a Hub.
type HubPort struct {
	hub   *Hub
	mac   MAC
	mtu   int
	in    *frameQueue
	done  chan struct{}
	once  sync.Once
	stats counters

	closing atomic.Bool // the port's own Close started
	mu      sync.Mutex
	started bool
	err     error
	wg      sync.WaitGroup
}

// NewHub returns a hub with no ports.
func NewHub() *Hub { return &Hub{macs: make(map[MAC]*HubPort)} }

// Port plugs a new port into the hub. A port added to a closed hub is
// closed.
func (h *Hub) Port(opts HubPortOptions) *HubPort {
	mtu := opts.MTU
	if mtu == 0 {
		mtu = DefaultMTU
	}
	if mtu < 0 || mtu+EthernetHeaderLen > buffer.MaxSize() {
		panic("tap: hub port MTU out of range")
	}
	qlen := opts.QueueLen
	if qlen <= 0 {
		qlen = DefaultQueueLen
	}
	p := &HubPort{hub: h, mac: orRandom(opts.MAC), mtu: mtu, done: make(chan struct{})}
	p.in = newFrameQueue(qlen, p.done, &p.stats)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		p.shut()
		return p
	}
	h.ports = append(slices.Clip(h.ports), p)
	return p
}

// Close closes every port; their goroutines report it with deliver(nil).
func (h *Hub) Close() error {
	h.mu.Lock()
	h.closed = true
	ports := h.ports
	h.ports = nil
	clear(h.macs)
	h.mu.Unlock()
	for _, p := range ports {
		p.shut()
	}
	for _, p := range ports {
		p.wg.Wait()
		p.in.drain()
	}
	return nil
}

// forward sends frame from port src, taking ownership, and reports whether
// every copy was queued.
func (h *Hub) forward(src *HubPort, frame *buffer.Buffer, block bool) bool {
	eth := EthernetHeader(frame.Bytes())
	from, to := eth.Src(), eth.Dst()
	h.mu.RLock()
	learned := h.macs[from] == src
	var dst *HubPort
	if !to.IsMulticast() {
		dst = h.macs[to]
	}
	ports := h.ports
	h.mu.RUnlock()
	if !learned && !from.IsMulticast() {
		h.mu.Lock()
		if !h.closed && !src.closing.Load() {
			h.macs[from] = src
		}
		h.mu.Unlock()
	}
	if dst != nil {
		if dst == src { // the destination is on the sender's segment
			frame.Release()
			return true
		}
		return dst.accept(frame, block)
	}
	last := -1
	for i, p := range ports {
		if p != src {
			last = i
		}
	}
	ok := true
	for i, p := range ports {
		switch {
		case p == src:
		case i == last:
			ok = p.accept(frame, block) && ok
		default:
			ok = p.accept(frame.Clone(), block) && ok
		}
	}
	if last < 0 {
		frame.Release() // nobody else plugged in
	}
	return ok
}

// remove unplugs p and forgets the addresses learned on it.
func (h *Hub) remove(p *HubPort) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if i := slices.Index(h.ports, p); i >= 0 {
		h.ports = slices.Delete(slices.Clone(h.ports), i, i+1)
	}
	for m, q := range h.macs {
		if q == p {
			delete(h.macs, m)
		}
	}
}

// accept queues a frame for p, dropping (and counting) one longer than p's
// MTU allows, as a NIC drops giants.
func (p *HubPort) accept(frame *buffer.Buffer, block bool) bool {
	if frame.Len() > p.mtu+EthernetHeaderLen {
		frame.Release()
		p.stats.rxDrops.Add(1)
		return true
	}
	return p.in.put(frame, block)
}

// shut stops p's queue.
func (p *HubPort) shut() { p.once.Do(func() { close(p.done) }) }

// MTU implements Link.
func (p *HubPort) MTU() int { return p.mtu }

// LinkAddress implements Link.
func (p *HubPort) LinkAddress() MAC { return p.mac }

// Attach implements Link.
func (p *HubPort) Attach(deliver func(*buffer.Buffer)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started {
		panic(errAttachTwice)
	}
	p.started = true
	if p.closing.Load() {
		return
	}
	d := newDeliverer(p.in, deliver, nil, nil)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		d.run()
		if !p.closing.Load() {
			p.mu.Lock()
			p.err = errHubClosed
			p.mu.Unlock()
			deliver(nil)
		}
	}()
}

// WritePacket implements Link. It blocks while a destination port's queue is
// full (for a flooded frame, each full queue in turn).
func (p *HubPort) WritePacket(frame *buffer.Buffer) error {
	return p.write(frame, true)
}

// TryWritePacket implements Link; it returns false if any copy of the frame
// was dropped because a queue was full.
func (p *HubPort) TryWritePacket(frame *buffer.Buffer) bool {
	return p.write(frame, false) == nil
}

func (p *HubPort) write(frame *buffer.Buffer, block bool) error {
	n := frame.Len()
	switch {
	case p.isClosed():
		frame.Release()
		p.stats.txErrors.Add(1)
		return errClosed
	case !checkFrame(n, p.mtu):
		frame.Release()
		p.stats.txErrors.Add(1)
		return errFrameSize
	}
	if !p.hub.forward(p, frame, block) {
		// A destination closing under us is not the sender's failure;
		// a full queue is.
		if !block {
			p.stats.txDrops.Add(1)
			return errQueueFull
		}
	}
	p.stats.tx(n)
	return nil
}

func (p *HubPort) isClosed() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Close implements Link: it unplugs the port, stops its delivery and
// releases its queued frames.
func (p *HubPort) Close() error {
	p.mu.Lock()
	p.closing.Store(true)
	p.mu.Unlock()
	p.shut()
	p.hub.remove(p)
	p.wg.Wait()
	p.in.drain()
	return nil
}

// Err implements Link: after the hub closed it wraps net.ErrClosed.
func (p *HubPort) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Stats returns the port's frame counters.
func (p *HubPort) Stats() Stats { return p.stats.snapshot() }
