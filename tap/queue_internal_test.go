package tap

import (
	"testing"

	"github.com/tapnet/tapnet/link"
)

// TestQueueBoundCountsDirectFrames checks that frames stored straight into
// a parked reader's batch count against the queue's bound until the reader
// takes them, so QueueLen bounds the frames in flight either way.
func TestQueueBoundCountsDirectFrames(t *testing.T) {
	var c counters
	q := newFrameQueue(2, make(chan struct{}), &c, nil)
	frames := make([]link.Frame, 8)
	for i := range frames {
		frames[i] = link.Frame{Buf: make([]byte, 128)}
	}
	// Park a reader by hand, as takeBatch does, without a goroutine that
	// could wake and take the frames meanwhile.
	q.mu.Lock()
	q.direct, q.filled, q.waiting = frames, 0, true
	q.mu.Unlock()
	f := make([]byte, 64)
	for i := range 2 {
		if r := q.put(f, false); r != putDone {
			t.Fatalf("put %d = %v, want it stored", i, r)
		}
	}
	if r := q.put(f, false); r != putFull {
		t.Errorf("third put = %v, want putFull with 2 frames in the reader's hands", r)
	}
	if q.filled != 2 || q.n != 0 || frames[0].Len != 64 || frames[1].Len != 64 {
		t.Errorf("filled %d queued %d lens %d %d; want both frames in the batch", q.filled, q.n, frames[0].Len, frames[1].Len)
	}
	select {
	case <-q.wake:
	default:
		t.Error("the first frame did not wake the reader")
	}
	if s := c.snapshot(); s.RxFrames != 2 || s.RxDrops != 0 {
		t.Errorf("stats %+v", s)
	}
}
