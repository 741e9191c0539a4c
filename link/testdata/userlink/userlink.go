// Package userlink is a link written outside the tapnet module, with only
// its public API: a pair of devices joined by Go channels. The test in
// link/external_test.go builds it and carries gonet traffic over it, to keep
// the link seam implementable from other modules.
package userlink

import (
	"net"
	"sync"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/link"
)

// End is one end of a channel link: frames written to one end are read from
// the other.
type End struct {
	mac  ethernet.MAC
	in   <-chan []byte
	out  chan<- []byte
	done chan struct{} // shared by both ends: closing either closes the link
	once *sync.Once
}

var (
	_ link.Device    = (*End)(nil)
	_ link.TryWriter = (*End)(nil)
)

// Pair returns the two ends of a link whose queues hold n frames each way.
func Pair(n int) (*End, *End) {
	ab, ba := make(chan []byte, n), make(chan []byte, n)
	done, once := make(chan struct{}), new(sync.Once)
	return &End{mac: ethernet.RandomMAC(), in: ba, out: ab, done: done, once: once},
		&End{mac: ethernet.RandomMAC(), in: ab, out: ba, done: done, once: once}
}

// Info implements link.Device.
func (e *End) Info() link.Info {
	return link.Info{MTU: 1500, Layer: link.LayerEthernet, MAC: e.mac, BatchSize: 8}
}

// ReadFrames waits for one frame, then takes those already queued.
func (e *End) ReadFrames(frames []link.Frame) (int, error) {
	select {
	case f := <-e.in:
		n := e.store(frames, 0, f)
		for n < len(frames) {
			select {
			case f := <-e.in:
				n = e.store(frames, n, f)
			default:
				return n, nil
			}
		}
		return n, nil
	case <-e.done:
		return 0, net.ErrClosed
	}
}

// store puts f in frames[i] if it fits (dropping it otherwise) and returns
// the next free index.
func (e *End) store(frames []link.Frame, i int, f []byte) int {
	dst := &frames[i]
	if len(f) > len(dst.Buf)-dst.Off {
		return i
	}
	dst.Len = copy(dst.Buf[dst.Off:], f)
	return i + 1
}

// WriteFrames copies each frame into the queue, waiting while it is full.
func (e *End) WriteFrames(frames []link.Frame) (int, error) {
	for i := range frames {
		select {
		case e.out <- append([]byte(nil), frames[i].Bytes()...):
		case <-e.done:
			return i, net.ErrClosed
		}
	}
	return len(frames), nil
}

// TryWriteFrames queues what fits at once, so the stack's receive loop never
// waits on the other end.
func (e *End) TryWriteFrames(frames []link.Frame) int {
	n := 0
	for i := range frames {
		select {
		case <-e.done:
			return n
		default:
		}
		select {
		case e.out <- append([]byte(nil), frames[i].Bytes()...):
			n++
		default:
		}
	}
	return n
}

// Close closes both ends.
func (e *End) Close() error {
	e.once.Do(func() { close(e.done) })
	return nil
}
