package tap_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/tap"
)

// frame returns a buffer holding an Ethernet frame whose payload starts with
// a 4-byte sequence number, padded to size bytes in all.
func frame(dst, src tap.MAC, seq uint32, size int) *buffer.Buffer {
	b := buffer.Get(size)
	b.SetLen(size)
	p := b.Bytes()
	tap.PutEthernetHeader(p, dst, src, 0x88b5) // IEEE local experimental
	binary.BigEndian.PutUint32(p[tap.EthernetHeaderLen:], seq)
	for i := tap.EthernetHeaderLen + 4; i < size; i++ {
		p[i] = byte(i)
	}
	return b
}

func seqOf(b *buffer.Buffer) uint32 {
	return binary.BigEndian.Uint32(b.Bytes()[tap.EthernetHeaderLen:])
}

// rx is a deliver function recording frames on a channel.
type rx struct {
	frames chan *buffer.Buffer
	stop   chan struct{} // closed on deliver(nil)
}

func newRx(n int) *rx { return &rx{frames: make(chan *buffer.Buffer, n), stop: make(chan struct{})} }

func (r *rx) deliver(b *buffer.Buffer) {
	if b == nil {
		close(r.stop)
		return
	}
	r.frames <- b
}

// next returns the next frame or fails the test after a generous bound.
func (r *rx) next(t testing.TB) *buffer.Buffer {
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
		t.Fatalf("unexpected frame %x", b.Bytes())
	case <-time.After(d):
	}
}

func (r *rx) stopped(t testing.TB) {
	t.Helper()
	select {
	case <-r.stop:
	case <-time.After(5 * time.Second):
		t.Fatal("deliver(nil) not called within 5s")
	}
}
