package tap_test

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync/atomic"
	"testing"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/link"
	"github.com/tapnet/tapnet/tap"
)

// sink reads a device in batches, as the stack does, counting frames and
// signalling every batch on a channel with room for all of them, so it
// never blocks.
type sink struct {
	n    atomic.Int64
	done chan struct{}
}

func newSink() *sink { return &sink{done: make(chan struct{}, 1<<16)} }

// attach reads d until it closes.
func (s *sink) attach(d link.Device) {
	go func() {
		frames := make([]link.Frame, 64)
		for i := range frames {
			frames[i] = link.Frame{Buf: make([]byte, 2048+96), Off: 96}
		}
		for {
			n, err := d.ReadFrames(frames)
			if err != nil {
				return
			}
			s.n.Add(int64(n))
			select {
			case s.done <- struct{}{}:
			default:
			}
		}
	}()
}

// wait blocks until n frames in all were read.
func (s *sink) wait(n int64) {
	for s.n.Load() < n {
		<-s.done
	}
}

// writer sends numbered frames from one reused batch, so that the
// benchmark itself does not allocate.
type writer struct {
	frames [1]link.Frame
}

func newWriter(dst, src ethernet.MAC, size int) *writer {
	w := &writer{}
	w.frames[0] = link.Frame{Buf: frame(dst, src, 0, size), Len: size}
	return w
}

func (w *writer) send(d link.Device, seq uint32) error {
	binary.BigEndian.PutUint32(w.frames[0].Buf[ethernet.HeaderLen:], seq)
	_, err := d.WriteFrames(w.frames[:])
	return err
}

func TestPipeZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	a, b := tap.Pipe(tap.PipeOptions{})
	defer a.Close()
	s := newSink()
	s.attach(b)
	w := newWriter(b.MAC(), a.MAC(), 64)
	var sent int64
	allocs := testing.AllocsPerRun(1000, func() {
		w.send(a, uint32(sent))
		sent++
		s.wait(sent)
	})
	if allocs != 0 {
		t.Errorf("pipe write→read: %v allocs per frame, want 0", allocs)
	}
}

func benchLink(b *testing.B, d link.Device, dst ethernet.MAC, s *sink, receivers int64) {
	b.ReportAllocs()
	b.SetBytes(64)
	w := newWriter(dst, d.Info().MAC, 64)
	for i := 0; b.Loop(); i++ {
		if err := w.send(d, uint32(i)); err != nil {
			b.Fatal(err)
		}
	}
	s.wait(int64(b.N) * receivers)
}

func BenchmarkPipeWriteDeliver(b *testing.B) {
	x, y := tap.Pipe(tap.PipeOptions{})
	defer x.Close()
	s := newSink()
	s.attach(y)
	benchLink(b, x, y.MAC(), s, 1)
}

func BenchmarkPipeImpaired(b *testing.B) {
	// Every frame draws from the random source; a few are copied or held.
	x, y := tap.Pipe(tap.PipeOptions{Impairments: tap.Impairments{Duplicate: 0.01, Reorder: 0.01}, Seed: 1})
	defer x.Close()
	s := newSink()
	s.attach(y)
	benchLink(b, x, y.MAC(), s, 1)
}

func BenchmarkHubUnicast(b *testing.B) {
	h := tap.NewHub()
	defer h.Close()
	x, y := h.Port(tap.HubPortOptions{}), h.Port(tap.HubPortOptions{})
	h.Port(tap.HubPortOptions{})
	s := newSink()
	s.attach(y)
	write(y, frame(ethernet.Broadcast, y.MAC(), 0, 64)) // learn y
	benchLink(b, x, y.MAC(), s, 1)
}

func BenchmarkHubFlood(b *testing.B) {
	h := tap.NewHub()
	defer h.Close()
	x := h.Port(tap.HubPortOptions{})
	s := newSink()
	for range 2 {
		s.attach(h.Port(tap.HubPortOptions{}))
	}
	benchLink(b, x, ethernet.Broadcast, s, 2)
}

func BenchmarkCapture(b *testing.B) {
	x, y := tap.Pipe(tap.PipeOptions{})
	c, err := tap.Capture(x, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	s := newSink()
	s.attach(y)
	benchLink(b, c, y.MAC(), s, 1)
}

// BenchmarkPipePingPong measures a round trip over a pipe with a reader at
// each end, as two stacks exchanging requests and answers use it: each
// frame finds the other end's ReadFrames waiting.
func BenchmarkPipePingPong(b *testing.B) {
	for _, size := range []int{64, 1400} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			x, y := tap.Pipe(tap.PipeOptions{})
			defer x.Close()
			go echoFrames(y)
			frames := readFrames(1)
			w := newWriter(y.MAC(), x.MAC(), size)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for i := 0; b.Loop(); i++ {
				if err := w.send(x, uint32(i)); err != nil {
					b.Fatal(err)
				}
				if _, err := x.ReadFrames(frames); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// readFrames returns a batch of n frames with room for any frame of a
// 1500-byte MTU behind headroom, as the stack offers them.
func readFrames(n int) []link.Frame {
	frames := make([]link.Frame, n)
	for i := range frames {
		frames[i] = link.Frame{Buf: make([]byte, 96+2048), Off: 96}
	}
	return frames
}

// echoFrames writes every frame d reads back into d until d closes.
func echoFrames(d link.Device) {
	frames := readFrames(64)
	for {
		n, err := d.ReadFrames(frames)
		if err != nil {
			return
		}
		if _, err := d.WriteFrames(frames[:n]); err != nil {
			return
		}
		for i := range frames[:n] {
			frames[i].Len = 0
		}
	}
}
