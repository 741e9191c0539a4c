package tap_test

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/link"
	"github.com/tapnet/tapnet/tap"
)

func TestPipeDefaults(t *testing.T) {
	a, b := tap.Pipe(tap.PipeOptions{})
	defer a.Close()
	if a.Info().MTU != 1500 || b.Info().MTU != 1500 {
		t.Errorf("MTU = %d, %d; want 1500", a.Info().MTU, b.Info().MTU)
	}
	if info := a.Info(); info.Layer != link.LayerEthernet || info.MAC != a.MAC() || info.BatchSize < 1 {
		t.Errorf("Info = %+v", info)
	}
	for _, m := range []ethernet.MAC{a.MAC(), b.MAC()} {
		if m[0]&1 != 0 || m[0]&2 == 0 {
			t.Errorf("MAC %v is not locally administered unicast", m)
		}
	}
	if a.MAC() == b.MAC() {
		t.Error("both ends got the same MAC")
	}
	m := ethernet.MAC{2, 0, 0, 0, 0, 1}
	c, d := tap.Pipe(tap.PipeOptions{MACs: [2]ethernet.MAC{m}, MTU: 9000})
	defer c.Close()
	if c.MAC() != m || d.Info().MTU != 9000 {
		t.Errorf("options ignored: %v %d", c.MAC(), d.Info().MTU)
	}
}

func TestPipeRoundTrip(t *testing.T) {
	a, b := tap.Pipe(tap.PipeOptions{})
	ra, rb := newRx(16), newRx(16)
	ra.attach(a)
	rb.attach(b)
	defer a.Close()

	for i := range uint32(5) {
		f := frame(b.MAC(), a.MAC(), i, 60+int(i))
		want := bytes.Clone(f)
		if err := write(a, f); err != nil {
			t.Fatal(err)
		}
		clear(f) // the pipe copied the frame: the writer may reuse its memory
		if got := rb.next(t); !bytes.Equal(got, want) {
			t.Errorf("frame %d = %x, want %x", i, got, want)
		}
	}
	if !tryWrite(b, frame(a.MAC(), b.MAC(), 99, 64)) {
		t.Fatal("TryWritePacket on an empty queue failed")
	}
	if got := ra.next(t); seqOf(got) != 99 {
		t.Errorf("reverse direction got seq %d", seqOf(got))
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
	r.attach(b)
	defer a.Close()
	const writers, each = 4, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := write(a, frame(b.MAC(), a.MAC(), uint32(w<<16|i), 64)); err != nil {
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
		err := write(a, make([]byte, n))
		if !errors.Is(err, syscall.EMSGSIZE) {
			t.Errorf("%d-byte frame: err = %v, want EMSGSIZE", n, err)
		}
	}
	// Off and Len must stay inside Buf.
	for _, f := range []link.Frame{{Buf: make([]byte, 64), Off: 10, Len: 60}, {Buf: make([]byte, 64), Off: -1, Len: 20}, {Buf: make([]byte, 64), Len: -1}} {
		if _, err := a.WriteFrames([]link.Frame{f}); err == nil {
			t.Errorf("frame Off %d Len %d in %d bytes accepted", f.Off, f.Len, len(f.Buf))
		}
	}
	if err := write(a, frame(b.MAC(), a.MAC(), 0, 114)); err != nil {
		t.Errorf("MTU-sized frame: %v", err)
	}
	// WriteFrames stops at the first frame it cannot send.
	good := frame(b.MAC(), a.MAC(), 1, 64)
	n, err := a.WriteFrames([]link.Frame{{Buf: good, Len: 64}, {Buf: good, Len: 10}, {Buf: good, Len: 64}})
	if n != 1 || !errors.Is(err, syscall.EMSGSIZE) {
		t.Errorf("batch with a runt second: n=%d err=%v, want 1 and EMSGSIZE", n, err)
	}
	if s := a.Stats(); s.TxErrors != 7 || s.TxFrames != 2 {
		t.Errorf("stats %+v", s)
	}
}

func TestPipeWriteBlocksWhileFull(t *testing.T) {
	a, b := tap.Pipe(tap.PipeOptions{QueueLen: 2})
	defer a.Close()
	for i := range uint32(2) {
		if err := write(a, frame(b.MAC(), a.MAC(), i, 64)); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- write(a, frame(b.MAC(), a.MAC(), 2, 64)) }()
	select {
	case err := <-done:
		t.Fatalf("third write returned %v with a full queue; want it blocked", err)
	case <-time.After(50 * time.Millisecond):
	}
	r := newRx(8)
	r.attach(b) // draining the queue makes room
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
	}
}

func TestPipeCloseUnblocksWriter(t *testing.T) {
	a, b := tap.Pipe(tap.PipeOptions{QueueLen: 1})
	if err := write(a, frame(b.MAC(), a.MAC(), 0, 64)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- write(a, frame(b.MAC(), a.MAC(), 1, 64)) }()
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
		got = append(got, tryWrite(a, frame(b.MAC(), a.MAC(), i, 64)))
	}
	if want := []bool{true, true, false, false}; !equal(got, want) {
		t.Errorf("TryWritePacket results %v, want %v", got, want)
	}
	if s := a.Stats(); s.TxFrames != 2 || s.TxDrops != 2 {
		t.Errorf("stats %+v", s)
	}
	r := newRx(8)
	r.attach(b)
	for i := range uint32(2) {
		if f := r.next(t); seqOf(f) != i {
			t.Errorf("got seq %d, want %d", seqOf(f), i)
		}
	}
	r.none(t, 20*time.Millisecond)
	// A batch: the frames that fit are queued, the rest dropped.
	f := frame(b.MAC(), a.MAC(), 7, 64)
	batch := []link.Frame{{Buf: f, Len: 64}, {Buf: f, Len: 64}, {Buf: f, Len: 64}}
	if n := a.TryWriteFrames(batch); n < 1 || n > 3 {
		t.Errorf("TryWriteFrames of 3 into a draining queue of 2 sent %d", n)
	}
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
	ra.attach(a)
	for i := range uint32(3) {
		if err := write(a, frame(b.MAC(), a.MAC(), i, 64)); err != nil {
			t.Fatal(err)
		}
	}
	b.Close() // nobody read b: its three frames are still queued
	if s := b.Stats(); s.RxDrops != 3 || s.RxFrames != 0 {
		t.Errorf("b stats after close %+v, want 3 drops", s)
	}
	// Both directions are closed and the other end is told.
	for _, e := range []*tap.PipeEnd{a, b} {
		err := write(e, frame(ethernet.Broadcast, e.MAC(), 0, 64))
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("write after close: %v, want net.ErrClosed", err)
		}
		if tryWrite(e, frame(ethernet.Broadcast, e.MAC(), 0, 64)) {
			t.Error("TryWriteFrames after close succeeded")
		}
	}
	if err := ra.stopped(t); !errors.Is(err, net.ErrClosed) || !strings.Contains(err.Error(), "peer") {
		t.Errorf("peer's ReadFrames = %v, want the peer closed (net.ErrClosed)", err)
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

func TestPipeReadAfterClose(t *testing.T) {
	a, b := tap.Pipe(tap.PipeOptions{})
	r := newRx(1)
	r.attach(a)
	a.Close()
	if err := r.stopped(t); !errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "peer") {
		t.Errorf("ReadFrames on a closed end = %v, want the link closed (net.ErrClosed)", err)
	}
	// b reads after its peer closed: it learns so at once.
	frames := []link.Frame{{Buf: make([]byte, 2048)}}
	if n, err := b.ReadFrames(frames); n != 0 || !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadFrames after the peer closed = %d, %v", n, err)
	}
	b.Close()
	if n, err := a.ReadFrames(frames); n != 0 || !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadFrames on an end closed before = %d, %v", n, err)
	}
}

func TestPipeReadBatch(t *testing.T) {
	a, b := tap.Pipe(tap.PipeOptions{})
	defer a.Close()
	for i := range uint32(5) {
		if err := write(a, frame(b.MAC(), a.MAC(), i, 64+int(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := write(a, frame(b.MAC(), a.MAC(), 5, 64)); err != nil {
		t.Fatal(err)
	}
	frames := make([]link.Frame, 3)
	for i := range frames {
		frames[i] = link.Frame{Buf: make([]byte, 200), Off: 32}
	}
	// One call takes what is queued, up to the batch size, in order,
	// each at its Off.
	n, err := b.ReadFrames(frames)
	if err != nil || n != 3 {
		t.Fatalf("ReadFrames = %d, %v; want the 3 of 5 queued that fit the batch", n, err)
	}
	for i := range n {
		f := &frames[i]
		if f.Off != 32 || f.Len != 64+i || seqOf(f.Bytes()) != uint32(i) {
			t.Errorf("frame %d: Off %d Len %d seq %d", i, f.Off, f.Len, seqOf(f.Bytes()))
		}
	}
	// A frame longer than its room is dropped, not truncated: frames 3
	// and 4 (67 and 68 bytes) do not fit, frame 5 (64) does.
	frames[0] = link.Frame{Buf: make([]byte, 40+64), Off: 40}
	if n, err := b.ReadFrames(frames[:1]); n != 1 || err != nil || frames[0].Len != 64 || seqOf(frames[0].Bytes()) != 5 {
		t.Errorf("ReadFrames into a 64-byte slot = %d, %v (Len %d); want frame 5 only", n, err, frames[0].Len)
	}
	if s := b.Stats(); s.RxFrames != 4 || s.RxDrops != 2 {
		t.Errorf("stats %+v, want 4 read and 2 dropped", s)
	}
	if n, err := b.ReadFrames(nil); n != 0 || err != nil {
		t.Errorf("ReadFrames(nil) = %d, %v", n, err)
	}
}

// readOne starts a ReadFrames of one frame with room bytes of room and
// returns its outcome; the pause lets it park, so that the next write is
// handed straight to it (the result must not depend on that).
func readOne(d link.Device, room int) <-chan link.Frame {
	got := make(chan link.Frame, 1)
	go func() {
		frames := []link.Frame{{Buf: make([]byte, 16+room), Off: 16}}
		if n, err := d.ReadFrames(frames); n == 1 && err == nil {
			got <- frames[0]
		}
		close(got)
	}()
	time.Sleep(10 * time.Millisecond)
	return got
}

func TestPipeWaitingReaderDropsFrameLongerThanRoom(t *testing.T) {
	a, b := tap.Pipe(tap.PipeOptions{})
	defer a.Close()
	got := readOne(b, 64)
	if err := write(a, frame(b.MAC(), a.MAC(), 1, 65)); err != nil {
		t.Fatal(err)
	}
	if err := write(a, frame(b.MAC(), a.MAC(), 2, 64)); err != nil {
		t.Fatal(err)
	}
	select {
	case f := <-got:
		if f.Off != 16 || f.Len != 64 || seqOf(f.Bytes()) != 2 {
			t.Errorf("read Off %d Len %d seq %d; want frame 2 at Off 16, frame 1 dropped", f.Off, f.Len, seqOf(f.Bytes()))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no frame read")
	}
	if s := b.Stats(); s.RxFrames != 1 || s.RxBytes != 64 || s.RxDrops != 1 {
		t.Errorf("stats %+v, want 1 frame read and 1 dropped", s)
	}
}

func TestPipeImpairmentsApplyToAWaitingReader(t *testing.T) {
	a, b := tap.Pipe(tap.PipeOptions{Seed: 9})
	defer a.Close()
	got := readOne(b, 2048)
	// Set after the reader parked: the frame must still be lost, not
	// handed straight over.
	a.SetImpairments(tap.Impairments{Loss: 1})
	write(a, frame(b.MAC(), a.MAC(), 1, 64))
	select {
	case f := <-got:
		t.Fatalf("frame %d delivered through a link losing every frame", seqOf(f.Bytes()))
	case <-time.After(30 * time.Millisecond):
	}
	if s := b.Stats(); s.RxDrops != 1 || s.RxFrames != 0 {
		t.Errorf("stats %+v, want the frame lost", s)
	}
	a.SetImpairments(tap.Impairments{})
	write(a, frame(b.MAC(), a.MAC(), 2, 64))
	select {
	case f := <-got:
		if seqOf(f.Bytes()) != 2 {
			t.Errorf("got frame %d, want 2", seqOf(f.Bytes()))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("frame not delivered once the loss was lifted")
	}
}

func TestPipeCloseWakesWaitingReader(t *testing.T) {
	a, b := tap.Pipe(tap.PipeOptions{})
	r := newRx(1)
	r.attach(b)
	time.Sleep(10 * time.Millisecond) // let it park (not required for correctness)
	a.Close()
	if err := r.stopped(t); !errors.Is(err, net.ErrClosed) || !strings.Contains(err.Error(), "peer") {
		t.Errorf("waiting ReadFrames = %v, want the peer closed", err)
	}
}

// TestPipeEchoZeroAllocs checks the path of a request and its answer, where
// each frame is handed straight to the waiting reader at the other end.
func TestPipeEchoZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	x, y := tap.Pipe(tap.PipeOptions{})
	defer x.Close()
	go echoFrames(y)
	frames := readFrames(1)
	w := newWriter(y.MAC(), x.MAC(), 1400)
	var seq uint32
	allocs := testing.AllocsPerRun(1000, func() {
		seq++
		if err := w.send(x, seq); err != nil {
			t.Fatal(err)
		}
		if n, err := x.ReadFrames(frames); n != 1 || err != nil || seqOf(frames[0].Bytes()) != seq {
			t.Fatalf("ReadFrames = %d, %v", n, err)
		}
	})
	if allocs != 0 {
		t.Errorf("pipe echo: %v allocs per round trip, want 0", allocs)
	}
}
