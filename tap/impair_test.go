package tap_test

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/tapnet/tapnet/tap"
)

// sendAll writes n numbered frames from a to b and returns the sequence
// numbers b delivers, in delivery order.
func sendAll(t *testing.T, opts tap.PipeOptions, n int) []uint32 {
	t.Helper()
	a, b := tap.Pipe(opts)
	defer a.Close()
	r := newRx(2 * n)
	r.attach(b)
	for i := range n {
		if err := write(a, frame(b.MAC(), a.MAC(), uint32(i), 64)); err != nil {
			t.Fatal(err)
		}
	}
	// Every frame ends up delivered (perhaps twice) or dropped.
	var got []uint32
	seen := map[uint32]bool{}
	deadline := time.Now().Add(10 * time.Second)
	for len(seen)+int(b.Stats().RxDrops) < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d frames accounted for", len(seen)+int(b.Stats().RxDrops), n)
		}
		select {
		case f := <-r.frames:
			got = append(got, seqOf(f))
			seen[seqOf(f)] = true
		case <-time.After(5 * time.Millisecond):
		}
	}
	return got
}

// near checks that got is within 5 standard deviations of a binomial mean.
func near(t *testing.T, what string, got, n int, p float64) {
	t.Helper()
	mean := float64(n) * p
	sd := math.Sqrt(float64(n) * p * (1 - p))
	if math.Abs(float64(got)-mean) > 5*sd+1 {
		t.Errorf("%s: %d of %d, want about %.0f", what, got, n, mean)
	}
}

func TestImpairLoss(t *testing.T) {
	const n = 2000
	opts := tap.PipeOptions{Impairments: tap.Impairments{Loss: 0.3}, Seed: 42, QueueLen: n}
	got := sendAll(t, opts, n)
	near(t, "delivered", len(got), n, 0.7)
	if !slices.IsSorted(got) {
		t.Error("loss reordered frames")
	}
	if again := sendAll(t, opts, n); !slices.Equal(got, again) {
		t.Error("same seed gave a different outcome")
	}
	opts.Seed = 43
	if other := sendAll(t, opts, n); slices.Equal(got, other) {
		t.Error("different seeds gave the same outcome")
	}
}

func TestImpairDuplicate(t *testing.T) {
	const n = 2000
	got := sendAll(t, tap.PipeOptions{Impairments: tap.Impairments{Duplicate: 0.2}, Seed: 1, QueueLen: n}, n)
	near(t, "duplicates", len(got)-n, n, 0.2)
	if !slices.IsSorted(got) || len(slices.Compact(got)) != n {
		t.Error("duplicates are not adjacent copies of every frame")
	}
}

func TestImpairReorder(t *testing.T) {
	const n = 2000
	got := sendAll(t, tap.PipeOptions{Impairments: tap.Impairments{Reorder: 0.2}, Seed: 7, QueueLen: n}, n)
	if len(got) != n {
		t.Fatalf("delivered %d of %d", len(got), n)
	}
	swaps := 0
	for i := 1; i < n; i++ {
		if got[i] < got[i-1] {
			swaps++
			if got[i-1] != got[i]+1 {
				t.Fatalf("frame %d delivered after %d: moved further than one place", got[i], got[i-1])
			}
		}
	}
	// The frame that overtakes a held one cannot be held itself, so a
	// fraction p/(1+p) of frames are held back.
	near(t, "swapped", swaps, n, 0.2/(1+0.2))
	if s := slices.Sorted(slices.Values(got)); s[0] != 0 || s[n-1] != n-1 || len(slices.Compact(s)) != n {
		t.Error("reordering lost or duplicated frames")
	}
}

func TestImpairReorderLastFrameReleased(t *testing.T) {
	// Every frame is held; the lone last one must still arrive.
	a, b := tap.Pipe(tap.PipeOptions{Impairments: tap.Impairments{Reorder: 1}, Seed: 1})
	defer a.Close()
	r := newRx(4)
	r.attach(b)
	write(a, frame(b.MAC(), a.MAC(), 1, 64))
	if f := r.next(t); seqOf(f) != 1 {
		t.Errorf("got %d", seqOf(f))
	}
}

func TestImpairDelayAndJitter(t *testing.T) {
	const delay, jitter, n = 30 * time.Millisecond, 10 * time.Millisecond, 40
	a, b := tap.Pipe(tap.PipeOptions{Impairments: tap.Impairments{Delay: delay, Jitter: jitter}, Seed: 3})
	defer a.Close()
	r := newRx(n)
	r.attach(b)
	sent := make([]time.Time, n)
	for i := range n {
		sent[i] = time.Now()
		write(a, frame(b.MAC(), a.MAC(), uint32(i), 64))
		time.Sleep(time.Millisecond)
	}
	var lat []time.Duration
	for i := range n {
		f := r.next(t)
		if s := seqOf(f); s != uint32(i) {
			t.Fatalf("frame %d delivered in place %d: jitter must not reorder", s, i)
		}
		lat = append(lat, time.Since(sent[i]))
	}
	slices.Sort(lat)
	// Early delivery is a bug at any load; lateness is only bounded
	// loosely because the host may be busy.
	if lat[0] < delay-jitter {
		t.Errorf("a frame arrived after %v, before delay-jitter %v", lat[0], delay-jitter)
	}
	if lat[n/2] > delay+jitter+time.Second {
		t.Errorf("median latency %v, want about %v", lat[n/2], delay)
	}
}

func TestImpairChangeAtRuntime(t *testing.T) {
	a, b := tap.Pipe(tap.PipeOptions{Impairments: tap.Impairments{Loss: 1}, Seed: 5})
	defer a.Close()
	r := newRx(8)
	r.attach(b)
	write(a, frame(b.MAC(), a.MAC(), 1, 64))
	r.none(t, 30*time.Millisecond)
	if s := b.Stats(); s.RxDrops != 1 {
		t.Errorf("lost frame not counted: %+v", s)
	}
	a.SetImpairments(tap.Impairments{})
	if a.Impairments() != (tap.Impairments{}) {
		t.Error("Impairments did not report the change")
	}
	write(a, frame(b.MAC(), a.MAC(), 2, 64))
	if f := r.next(t); seqOf(f) != 2 {
		t.Errorf("got %d", seqOf(f))
	}
	// The other direction kept its settings.
	if b.Impairments().Loss != 1 {
		t.Errorf("b→a impairments changed: %+v", b.Impairments())
	}
	if !panics(func() { a.SetImpairments(tap.Impairments{Loss: 1.5}) }) {
		t.Error("invalid probability accepted")
	}
}

func TestImpairDelayCloseReleases(t *testing.T) {
	a, b := tap.Pipe(tap.PipeOptions{Impairments: tap.Impairments{Delay: time.Hour}})
	r := newRx(4)
	r.attach(b)
	for i := range uint32(3) {
		write(a, frame(b.MAC(), a.MAC(), i, 64))
	}
	time.Sleep(10 * time.Millisecond)
	done := make(chan struct{})
	go func() { b.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked behind a delayed frame")
	}
	if s := b.Stats(); s.RxDrops != 3 || s.RxFrames != 0 {
		t.Errorf("stats %+v, want 3 drops", s)
	}
}
