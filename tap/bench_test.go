package tap_test

import (
	"io"
	"sync/atomic"
	"testing"

	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/tap"
)

// sink is a deliver function that releases frames and signals every one on
// a channel with room for all of them, so it never blocks.
type sink struct {
	n    atomic.Int64
	done chan struct{}
}

func newSink() *sink { return &sink{done: make(chan struct{}, 1<<16)} }

func (s *sink) deliver(b *buffer.Buffer) {
	if b == nil {
		return
	}
	b.Release()
	s.n.Add(1)
	select {
	case s.done <- struct{}{}:
	default:
	}
}

// wait blocks until n frames in all were delivered.
func (s *sink) wait(n int64) {
	for s.n.Load() < n {
		<-s.done
	}
}

func TestPipeZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	a, b := tap.Pipe(tap.PipeOptions{})
	defer a.Close()
	s := newSink()
	b.Attach(s.deliver)
	var sent int64
	allocs := testing.AllocsPerRun(1000, func() {
		a.WritePacket(frame(b.LinkAddress(), a.LinkAddress(), 0, 64))
		sent++
		s.wait(sent)
	})
	if allocs != 0 {
		t.Errorf("pipe write→deliver: %v allocs per frame, want 0", allocs)
	}
}

func benchLink(b *testing.B, w tap.Link, dst tap.MAC, s *sink, receivers int64) {
	b.ReportAllocs()
	b.SetBytes(64)
	src := w.LinkAddress()
	for i := 0; b.Loop(); i++ {
		if err := w.WritePacket(frame(dst, src, uint32(i), 64)); err != nil {
			b.Fatal(err)
		}
	}
	s.wait(int64(b.N) * receivers)
}

func BenchmarkPipeWriteDeliver(b *testing.B) {
	x, y := tap.Pipe(tap.PipeOptions{})
	defer x.Close()
	s := newSink()
	y.Attach(s.deliver)
	benchLink(b, x, y.LinkAddress(), s, 1)
}

func BenchmarkPipeImpaired(b *testing.B) {
	// Every frame draws from the random source; a few are copied or held.
	x, y := tap.Pipe(tap.PipeOptions{Impairments: tap.Impairments{Duplicate: 0.01, Reorder: 0.01}, Seed: 1})
	defer x.Close()
	s := newSink()
	y.Attach(s.deliver)
	benchLink(b, x, y.LinkAddress(), s, 1)
}

func BenchmarkHubUnicast(b *testing.B) {
	h := tap.NewHub()
	defer h.Close()
	x, y := h.Port(tap.HubPortOptions{}), h.Port(tap.HubPortOptions{})
	h.Port(tap.HubPortOptions{})
	s := newSink()
	y.Attach(s.deliver)
	y.WritePacket(frame(tap.BroadcastMAC, y.LinkAddress(), 0, 64)) // learn y
	benchLink(b, x, y.LinkAddress(), s, 1)
}

func BenchmarkHubFlood(b *testing.B) {
	h := tap.NewHub()
	defer h.Close()
	x := h.Port(tap.HubPortOptions{})
	s := newSink()
	for range 2 {
		h.Port(tap.HubPortOptions{}).Attach(s.deliver)
	}
	benchLink(b, x, tap.BroadcastMAC, s, 2)
}

func BenchmarkCapture(b *testing.B) {
	x, y := tap.Pipe(tap.PipeOptions{})
	c, err := tap.Capture(x, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	s := newSink()
	y.Attach(s.deliver)
	benchLink(b, c, y.LinkAddress(), s, 1)
}
