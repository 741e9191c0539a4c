package tap

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/link"
)

// Hub is an in-memory learning Ethernet switch. It learns which port each
// source MAC lives behind, forwards unicast to a known destination's port
// only, and floods broadcast, multicast and unknown unicast to every other
// port. Forwarding happens in the writer's goroutine, into each destination
// port's queue; each port's ReadFrames then copies frames out of its queue.
type Hub struct {
	// mu guards the fields below. Taken alone: forward copies ports and
	// queues frames after releasing it.
	mu     sync.RWMutex
	macs   map[ethernet.MAC]*HubPort
	ports  []*HubPort // replaced, never modified, so readers may keep it
	closed bool
}

// HubPortOptions configure a hub port. The zero value gives a random MAC,
// MTU 1500 and a 1024-frame queue.
type HubPortOptions struct {
	MAC      ethernet.MAC
	MTU      int
	QueueLen int
}

// HubPort is a link.Device plugged into a Hub.
type HubPort struct {
	hub   *Hub
	mac   ethernet.MAC
	mtu   int
	in    *frameQueue
	rd    *reader
	done  chan struct{}
	once  sync.Once
	stats counters

	closing atomic.Bool // the port's own Close started
}

var (
	_ link.Device    = (*HubPort)(nil)
	_ link.TryWriter = (*HubPort)(nil)
)

// NewHub returns a hub with no ports.
func NewHub() *Hub { return &Hub{macs: make(map[ethernet.MAC]*HubPort)} }

// Port plugs a new port into the hub. A port added to a closed hub is
// closed.
func (h *Hub) Port(opts HubPortOptions) *HubPort {
	mtu := opts.MTU
	if mtu == 0 {
		mtu = DefaultMTU
	}
	if mtu < 0 || mtu+ethernet.HeaderLen > buffer.MaxSize() {
		panic("tap: hub port MTU out of range")
	}
	qlen := opts.QueueLen
	if qlen <= 0 {
		qlen = DefaultQueueLen
	}
	p := &HubPort{hub: h, mac: orRandom(opts.MAC), mtu: mtu, done: make(chan struct{})}
	p.in = newFrameQueue(qlen, p.done, &p.stats, nil)
	p.rd = newReader(p.in, nil)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		p.shut()
		return p
	}
	h.ports = append(slices.Clip(h.ports), p)
	return p
}

// Close closes every port; their reads then return an error wrapping
// net.ErrClosed.
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
		p.rd.close()
	}
	return nil
}

// forward sends frame from port src and reports whether no copy of it was
// dropped on a full queue.
func (h *Hub) forward(src *HubPort, frame []byte, block bool) bool {
	eth := ethernet.Header(frame)
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
			return true
		}
		return dst.accept(frame, block)
	}
	ok := true
	for _, p := range ports {
		if p != src {
			ok = p.accept(frame, block) && ok
		}
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

// accept copies a frame to p and reports whether it was not dropped on a
// full queue. A frame longer than p's MTU allows is dropped and counted,
// as a NIC drops giants; a port closing meanwhile is not the sender's
// failure.
func (p *HubPort) accept(frame []byte, block bool) bool {
	if len(frame) > p.mtu+ethernet.HeaderLen {
		p.stats.rxDrops.Add(1)
		return true
	}
	return p.in.put(frame, block) != putFull
}

// shut stops p's queue.
func (p *HubPort) shut() {
	p.once.Do(func() {
		close(p.done)
		p.in.close()
	})
}

// Info implements link.Device.
func (p *HubPort) Info() link.Info {
	return link.Info{MTU: p.mtu, Layer: link.LayerEthernet, MAC: p.mac, BatchSize: memBatchSize}
}

// MAC returns the port's own address.
func (p *HubPort) MAC() ethernet.MAC { return p.mac }

// ReadFrames implements link.Device. It waits for the first frame, then
// takes the frames already queued without waiting. Once the port or the
// hub closed it returns an error wrapping net.ErrClosed.
func (p *HubPort) ReadFrames(frames []link.Frame) (int, error) {
	return p.rd.read(frames, p.closedErr)
}

func (p *HubPort) closedErr() error {
	if p.closing.Load() {
		return errClosed
	}
	return errHubClosed
}

// WriteFrames implements link.Device. It blocks while a destination port's
// queue is full (for a flooded frame, each full queue in turn).
func (p *HubPort) WriteFrames(frames []link.Frame) (int, error) {
	for i := range frames {
		if err := p.write(&frames[i], true); err != nil {
			return i, err
		}
	}
	return len(frames), nil
}

// TryWriteFrames implements link.TryWriter: it returns how many frames were
// forwarded with no copy dropped on a full queue.
func (p *HubPort) TryWriteFrames(frames []link.Frame) int {
	n := 0
	for i := range frames {
		if p.write(&frames[i], false) == nil {
			n++
		}
	}
	return n
}

func (p *HubPort) write(f *link.Frame, block bool) error {
	if p.isClosed() {
		p.stats.txErrors.Add(1)
		return errClosed
	}
	if err := vetFrame(f, p.mtu, link.LayerEthernet); err != nil {
		p.stats.txErrors.Add(1)
		return err
	}
	n := f.Len
	if !p.hub.forward(p, f.Bytes(), block) {
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

// Close implements link.Device: it unplugs the port, makes its reads and
// writes fail and releases its queued frames.
func (p *HubPort) Close() error {
	p.closing.Store(true)
	p.shut()
	p.hub.remove(p)
	p.rd.close()
	return nil
}

// Stats returns the port's frame counters.
func (p *HubPort) Stats() Stats { return p.stats.snapshot() }
