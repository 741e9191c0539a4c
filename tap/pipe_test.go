package tap_test

import (
	"bytes"
	"errors"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/tap"
)

// Compile-time checks that every endpoint is a Link.
var (
	_ tap.Link = (*tap.PipeEnd)(nil)
	_ tap.Link = (*tap.HubPort)(nil)
	_ tap.Link = (*tap.CaptureLink)(nil)
)

func TestPipeDefaults(t *testing.T) {
	a, b := tap.Pipe(tap.PipeOptions{})
	defer a.Close()
	if a.MTU() != 1500 || b.MTU() != 1500 {
		t.Errorf("MTU = %d, %d; want 1500", a.MTU(), b.MTU())
	}
	for _, m := range []tap.MAC{a.LinkAddress(), b.LinkAddress()} {
		if m[0]&1 != 0 || m[0]&2 == 0 {
			t.Errorf("MAC %v is not locally administered unicast", m)
		}
	}
	if a.LinkAddress() == b.LinkAddress() {
		t.Error("both ends got the same MAC")
	}
	m := tap.MAC{2, 0, 0, 0, 0, 1}
	c, d := tap.Pipe(tap.PipeOptions{MACs: [2]tap.MAC{m}, MTU: 9000})
	defer c.Close()
	if c.LinkAddress() != m || d.MTU() != 9000 {
		t.Errorf("options ignored: %v %d", c.LinkAddress(), d.MTU())
	}
}

func TestPipeRoundTrip(t *testing.T) {
	a, b := tap.Pipe(tap.PipeOptions{})
	ra, rb := newRx(16), newRx(16)
	a.Attach(ra.deliver)
	b.Attach(rb.deliver)
	defer a.Close()

	for i := range uint32(5) {
		f := frame(b.LinkAddress(), a.LinkAddress(), i, 60+int(i))
		sent := f
		want := bytes.Clone(f.Bytes())
		if err := a.WritePacket(f); err != nil {
			t.Fatal(err)
		}
		got := rb.next(t)
		if got != sent {
			t.Error("frame was copied; want the same buffer handed over")
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("frame %d = %x, want %x", i, got.Bytes(), want)
		}
		got.Release()
	}
	if !b.TryWritePacket(frame(a.LinkAddress(), b.LinkAddress(), 99, 64)) {
		t.Fatal("TryWritePacket on an empty queue failed")
	}
	if got := ra.next(t); seqOf(got) != 99 {
		t.Errorf("reverse direction got seq %d", seqOf(got))
	} else {
		got.Release()
	}
	sa, sb := a.Stats(), b.Stats()
	wantBytes := uint64(60 + 61 + 62 + 63 + 64)
	if sa.TxFrames != 5 || sa.TxBytes != wantBytes || sb.RxFrames != 5 || sb.RxBytes != wantBytes {
		t.Errorf("stats a=%+v b=%+v", sa, sb)
	}
	if sb.TxFrames != 1 || sa.RxFrames != 1 || sa.RxBytes != 64 {
		t.Errorf("reverse stats a=%+v b=%+v", sa, sb)
	}
}

func TestPipeOrderUnderConcurrency(t *testing.T) {
	a, b := tap.Pipe(tap.PipeOptions{QueueLen: 8})
	r := newRx(4096)
	b.Attach(r.deliver)
	defer a.Close()
	const writers, each = 4, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := a.WritePacket(frame(b.LinkAddress(), a.LinkAddress(), uint32(w<<16|i), 64)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	last := map[uint32]int{}
	for range writers * each {
		f := r.next(t)
		s := seqOf(f)
		f.Release()
		w, i := s>>16, int(s&0xffff)
		if prev, ok := last[w]; ok && i != prev+1 {
			t.Fatalf("writer %d: frame %d after %d", w, i, prev)
		}
		last[w] = i
	}
}

func TestPipeFrameSize(t *testing.T) {
	a, b := tap.Pipe(tap.PipeOptions{MTU: 100})
	defer a.Close()
	for _, n := range []int{0, 13, 115} {
		f := buffer.Get(n)
		f.SetLen(n)
		err := a.WritePacket(f)
		if !errors.Is(err, syscall.EMSGSIZE) {
			t.Errorf("%d-byte frame: err = %v, want EMSGSIZE", n, err)
		}
	}
	if err := a.WritePacket(frame(b.LinkAddress(), a.LinkAddress(), 0, 114)); err != nil {
		t.Errorf("MTU-sized frame: %v", err)
	}
	if s := a.Stats(); s.TxErrors != 3 || s.TxFrames != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestPipeWriteBlocksWhileFull(t *testing.T) {
	a, b := tap.Pipe(tap.PipeOptions{QueueLen: 2})
	defer a.Close()
	for i := range uint32(2) {
		if err := a.WritePacket(frame(b.LinkAddress(), a.LinkAddress(), i, 64)); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- a.WritePacket(frame(b.LinkAddress(), a.LinkAddress(), 2, 64)) }()
	select {
	case err := <-done:
		t.Fatalf("third write returned %v with a full queue; want it blocked", err)
	case <-time.After(50 * time.Millisecond):
	}
	r := newRx(8)
	b.Attach(r.deliver) // draining the queue makes room
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("write still blocked after the queue drained")
	}
	for i := range uint32(3) {
		f := r.next(t)
		if seqOf(f) != i {
			t.Errorf("frame %d has seq %d", i, seqOf(f))
		}
		f.Release()
	}
}

func TestPipeCloseUnblocksWriter(t *testing.T) {
	a, b := tap.Pipe(tap.PipeOptions{QueueLen: 1})
	if err := a.WritePacket(frame(b.LinkAddress(), a.LinkAddress(), 0, 64)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.WritePacket(frame(b.LinkAddress(), a.LinkAddress(), 1, 64)) }()
	time.Sleep(20 * time.Millisecond) // let it block (not required for correctness)
	b.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("blocked write returned %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock the writer")
	}
}

func TestPipeTryWriteDropsWhenFull(t *testing.T) {
	a, b := tap.Pipe(tap.PipeOptions{QueueLen: 2})
	defer a.Close()
	var got []bool
	for i := range uint32(4) {
		got = append(got, a.TryWritePacket(frame(b.LinkAddress(), a.LinkAddress(), i, 64)))
	}
	if want := []bool{true, true, false, false}; !equal(got, want) {
		t.Errorf("TryWritePacket results %v, want %v", got, want)
	}
	if s := a.Stats(); s.TxFrames != 2 || s.TxDrops != 2 {
		t.Errorf("stats %+v", s)
	}
	r := newRx(8)
	b.Attach(r.deliver)
	for i := range uint32(2) {
		if f := r.next(t); seqOf(f) != i {
			t.Errorf("got seq %d, want %d", seqOf(f), i)
		}
	}
	r.none(t, 20*time.Millisecond)
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPipeCloseReleasesQueuedFrames(t *testing.T) {
	a, b := tap.Pipe(tap.PipeOptions{})
	ra := newRx(8)
	a.Attach(ra.deliver)
	var kept []*buffer.Buffer
	for i := range uint32(3) {
		f := frame(b.LinkAddress(), a.LinkAddress(), i, 64)
		f.IncRef() // our own reference, to observe the pipe dropping its one
		kept = append(kept, f)
		if err := a.WritePacket(f); err != nil {
			t.Fatal(err)
		}
	}
	b.Close() // b never attached: its three frames are still queued
	if s := b.Stats(); s.RxDrops != 3 || s.RxFrames != 0 {
		t.Errorf("b stats after close %+v, want 3 drops", s)
	}
	for i, f := range kept {
		f.Release() // the last reference, if the pipe released its own
		if !panics(f.Release) {
			t.Errorf("frame %d: pipe kept its reference after Close", i)
		}
	}
	// Both directions are closed and the other end is told.
	for _, e := range []*tap.PipeEnd{a, b} {
		err := e.WritePacket(frame(tap.BroadcastMAC, e.LinkAddress(), 0, 64))
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("write after close: %v, want net.ErrClosed", err)
		}
		if e.TryWritePacket(frame(tap.BroadcastMAC, e.LinkAddress(), 0, 64)) {
			t.Error("TryWritePacket after close succeeded")
		}
	}
	ra.stopped(t)
	if err := a.Err(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("peer Err = %v, want net.ErrClosed", err)
	}
	if b.Err() != nil {
		t.Errorf("closed end's Err = %v, want nil", b.Err())
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("repeated Close: %v", err)
	}
}

func panics(f func()) (p bool) {
	defer func() { p = recover() != nil }()
	f()
	return false
}

func TestPipeAttachAfterCloseAndTwice(t *testing.T) {
	a, b := tap.Pipe(tap.PipeOptions{})
	r := newRx(1)
	a.Attach(r.deliver)
	if !panics(func() { a.Attach(r.deliver) }) {
		t.Error("second Attach did not panic")
	}
	a.Close()
	r.none(t, 10*time.Millisecond) // a closed itself: no deliver(nil)

	// b attaches after its peer closed: it learns so at once.
	rb := newRx(1)
	b.Attach(rb.deliver)
	rb.stopped(t)
	b.Close()

	c, _ := tap.Pipe(tap.PipeOptions{})
	c.Close()
	c.Attach(func(*buffer.Buffer) { t.Error("deliver called on an end attached after its own Close") })
}
