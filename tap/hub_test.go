package tap_test

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/tap"
)

type hubPort struct {
	*tap.HubPort
	r *rx
}

func newHub(t *testing.T, n int) (*tap.Hub, []hubPort) {
	h := tap.NewHub()
	t.Cleanup(func() { h.Close() })
	var ps []hubPort
	for range n {
		p := hubPort{h.Port(tap.HubPortOptions{}), newRx(16)}
		p.r.attach(p)
		ps = append(ps, p)
	}
	return h, ps
}

// expect checks which ports receive frame seq: want[i] tells for port i.
func expect(t *testing.T, ps []hubPort, seq uint32, want ...bool) {
	t.Helper()
	for i, p := range ps {
		if want[i] {
			f := p.r.next(t)
			if seqOf(f) != seq {
				t.Errorf("port %d got seq %d, want %d", i, seqOf(f), seq)
			}
		}
	}
	for i, p := range ps {
		if !want[i] {
			p.r.none(t, 20*time.Millisecond)
		}
	}
}

func TestHubLearningAndFlooding(t *testing.T) {
	_, ps := newHub(t, 3)
	a, b, c := ps[0], ps[1], ps[2]

	// Broadcast floods to every other port.
	f := frame(ethernet.Broadcast, a.MAC(), 1, 64)
	if err := write(a, f); err != nil {
		t.Fatal(err)
	}
	if fb, fc := b.r.next(t), c.r.next(t); seqOf(fb) != 1 || seqOf(fc) != 1 {
		t.Errorf("flooded frame arrived as %d and %d", seqOf(fb), seqOf(fc))
	}
	a.r.none(t, 20*time.Millisecond)

	// Unknown unicast floods; b has not sent yet.
	write(a, frame(b.MAC(), a.MAC(), 2, 64))
	expect(t, ps, 2, false, true, true)

	// Once b has spoken (a was learned from the broadcast), unicast
	// goes to one port only, both ways.
	write(b, frame(a.MAC(), b.MAC(), 3, 64))
	expect(t, ps, 3, true, false, false)
	write(a, frame(b.MAC(), a.MAC(), 4, 64))
	expect(t, ps, 4, false, true, false)

	// Multicast floods even though it cannot be learned.
	group := ethernet.MulticastIPv4([4]byte{239, 1, 2, 3})
	write(c, frame(group, c.MAC(), 5, 64))
	expect(t, ps, 5, true, true, false)

	if s := c.Stats(); s.TxFrames != 1 || s.RxFrames != 2 {
		t.Errorf("port c stats %+v", s)
	}
}

func TestHubMACMoves(t *testing.T) {
	_, ps := newHub(t, 3)
	a, b, c := ps[0], ps[1], ps[2]
	m := ethernet.MAC{2, 0, 0, 0, 0, 9}
	write(b, frame(ethernet.Broadcast, m, 1, 64)) // m learned on b
	expect(t, ps, 1, true, false, true)
	write(c, frame(ethernet.Broadcast, m, 2, 64)) // m moved to c
	expect(t, ps, 2, true, true, false)
	write(a, frame(m, a.MAC(), 3, 64))
	expect(t, ps, 3, false, false, true)
}

func TestHubPortClose(t *testing.T) {
	_, ps := newHub(t, 3)
	a, b, c := ps[0], ps[1], ps[2]
	write(b, frame(ethernet.Broadcast, b.MAC(), 1, 64))
	expect(t, ps, 1, true, false, true)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := write(b, frame(ethernet.Broadcast, b.MAC(), 0, 64)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write on closed port: %v", err)
	}
	if err := b.r.stopped(t); !errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "hub closed") {
		t.Errorf("closed port's ReadFrames = %v, want the port closed", err)
	}
	// b's address is forgotten: frames for it flood to who is left.
	write(a, frame(b.MAC(), a.MAC(), 2, 64))
	if f := c.r.next(t); seqOf(f) != 2 {
		t.Errorf("c got %d", seqOf(f))
	}
}

func TestHubTryWriteAndClose(t *testing.T) {
	h := tap.NewHub()
	a := h.Port(tap.HubPortOptions{})
	b := h.Port(tap.HubPortOptions{QueueLen: 1}) // never attached
	if !tryWrite(a, frame(b.MAC(), a.MAC(), 1, 64)) {
		t.Fatal("first TryWritePacket dropped")
	}
	if tryWrite(a, frame(b.MAC(), a.MAC(), 2, 64)) {
		t.Error("TryWritePacket to a full port succeeded")
	}
	done := make(chan error, 1)
	go func() { done <- write(a, frame(b.MAC(), a.MAC(), 3, 64)) }()
	select {
	case err := <-done:
		t.Fatalf("write to a full port returned %v; want it blocked", err)
	case <-time.After(30 * time.Millisecond):
	}
	r := newRx(1)
	r.attach(a)
	h.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("hub Close did not unblock a writer")
	}
	if err := r.stopped(t); !errors.Is(err, net.ErrClosed) || !strings.Contains(err.Error(), "hub closed") {
		t.Errorf("ReadFrames after hub close = %v", err)
	}
	if s := b.Stats(); s.RxDrops != 1 {
		t.Errorf("queued frame not released at close: %+v", s)
	}
	p := h.Port(tap.HubPortOptions{})
	if err := write(p, frame(ethernet.Broadcast, p.MAC(), 0, 64)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("port of a closed hub: %v", err)
	}
}

func TestHubDropsFramesOverPortMTU(t *testing.T) {
	h := tap.NewHub()
	defer h.Close()
	big := h.Port(tap.HubPortOptions{MTU: 9000})
	small := h.Port(tap.HubPortOptions{MTU: 1500})
	r := newRx(4)
	r.attach(small)
	if err := write(big, frame(ethernet.Broadcast, big.MAC(), 1, 3000)); err != nil {
		t.Fatal(err)
	}
	write(big, frame(ethernet.Broadcast, big.MAC(), 2, 1514))
	if f := r.next(t); seqOf(f) != 2 {
		t.Errorf("got frame %d, want only the one that fits", seqOf(f))
	}
	if s := small.Stats(); s.RxDrops != 1 {
		t.Errorf("giant not counted: %+v", s)
	}
}
