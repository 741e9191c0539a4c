package tap_test

import (
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/link"
	"github.com/tapnet/tapnet/tap"
)

// frame returns an Ethernet frame whose payload starts with a 4-byte
// sequence number, padded to size bytes in all.
func frame(dst, src ethernet.MAC, seq uint32, size int) []byte {
	p := make([]byte, size)
	if size < ethernet.HeaderLen+4 {
		return p
	}
	ethernet.PutHeader(p, dst, src, 0x88b5) // IEEE local experimental
	binary.BigEndian.PutUint32(p[ethernet.HeaderLen:], seq)
	for i := ethernet.HeaderLen + 4; i < size; i++ {
		p[i] = byte(i)
	}
	return p
}

func seqOf(f []byte) uint32 {
	return binary.BigEndian.Uint32(f[ethernet.HeaderLen:])
}

// write sends one frame with WriteFrames.
func write(d link.Device, f []byte) error {
	_, err := d.WriteFrames([]link.Frame{{Buf: f, Len: len(f)}})
	return err
}

// tryWrite sends one frame with TryWriteFrames.
func tryWrite(d link.TryWriter, f []byte) bool {
	return d.TryWriteFrames([]link.Frame{{Buf: f, Len: len(f)}}) == 1
}

// rx reads a device from its own goroutine, as a stack does, and hands
// copies of the frames over a channel.
type rx struct {
	frames chan []byte
	stop   chan struct{} // closed when ReadFrames failed
	mu     sync.Mutex
	err    error
}

func newRx(n int) *rx { return &rx{frames: make(chan []byte, n), stop: make(chan struct{})} }

// attach starts reading d in batches of up to 8 frames of 2048 bytes with
// 64 bytes of headroom; it stops when ReadFrames fails (the device closed).
func (r *rx) attach(d link.Device) {
	go func() {
		frames := make([]link.Frame, 8)
		for {
			for i := range frames {
				frames[i] = link.Frame{Buf: make([]byte, 64+2048), Off: 64}
			}
			n, err := d.ReadFrames(frames)
			for i := range n {
				r.frames <- frames[i].Bytes()
			}
			if err != nil {
				r.mu.Lock()
				r.err = err
				r.mu.Unlock()
				close(r.stop)
				return
			}
		}
	}()
}

// readErr returns the error that stopped the reader, or nil.
func (r *rx) readErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// next returns the next frame or fails the test after a generous bound.
func (r *rx) next(t testing.TB) []byte {
	t.Helper()
	select {
	case b := <-r.frames:
		return b
	case <-time.After(5 * time.Second):
		t.Fatal("no frame delivered within 5s")
		return nil
	}
}

// none checks that nothing arrives within d.
func (r *rx) none(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case b := <-r.frames:
		t.Fatalf("unexpected frame %x", b)
	case <-time.After(d):
	}
}

// stopped waits for the reader to stop and returns why.
func (r *rx) stopped(t testing.TB) error {
	t.Helper()
	select {
	case <-r.stop:
		return r.readErr()
	case <-time.After(5 * time.Second):
		t.Fatal("ReadFrames did not fail within 5s")
		return nil
	}
}

var (
	_ link.Device    = (*tap.PipeEnd)(nil)
	_ link.TryWriter = (*tap.PipeEnd)(nil)
	_ link.Device    = (*tap.HubPort)(nil)
	_ link.TryWriter = (*tap.HubPort)(nil)
)
