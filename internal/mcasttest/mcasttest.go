// Package mcasttest drives a multicast listener host (igmp.Host, mld.Host)
// in tests: it owns the manual clock the host reads, collects what the host
// sends as one-line summaries (the protocol's test writes them) and checks
// what is sent when. The test plays the host's timer by calling Fire.
package mcasttest

import (
	"slices"
	"testing"
	"time"

	"github.com/tapnet/tapnet/internal/fakeclock"
)

// Timed is what a Recorder needs of a host: its timer.
type Timed interface {
	Fire()
	Deadline() time.Time
}

// Recorder collects a host's messages and moves its clock.
type Recorder struct {
	t     testing.TB
	host  Timed
	Clock *fakeclock.Clock // the host's Config.Now is Clock.Now
	Sent  []string         // summaries of messages sent since the last look
}

// New returns a Recorder with a fresh clock; Drive names its host once the
// host is made (with Clock.Now as its clock).
func New(t testing.TB) *Recorder { return &Recorder{t: t, Clock: fakeclock.New()} }

// Drive makes h the host whose timer the Recorder fires.
func (r *Recorder) Drive(h Timed) { r.host = h }

// After moves the clock by d, fires and returns what was sent.
func (r *Recorder) After(d time.Duration) []string {
	r.Clock.Advance(d)
	r.host.Fire()
	out := r.Sent
	r.Sent = nil
	return out
}

// Expect checks what is sent within d from now.
func (r *Recorder) Expect(d time.Duration, want ...string) {
	r.t.Helper()
	if got := r.After(d); !slices.Equal(got, want) {
		r.t.Fatalf("sent within %v:\n  %q\nwant\n  %q", d, got, want)
	}
}

// Settle sends every pending message and checks nothing stays pending.
func (r *Recorder) Settle() {
	r.t.Helper()
	for range 20 {
		if r.host.Deadline().IsZero() {
			r.Sent = nil
			return
		}
		r.After(time.Second)
	}
	r.t.Fatal("messages never stop")
}

// Idle checks nothing is pending.
func (r *Recorder) Idle() {
	r.t.Helper()
	if d := r.host.Deadline(); !d.IsZero() {
		r.t.Fatalf("pending until %v; sent %q", d.Sub(r.Clock.Now()), r.After(time.Hour))
	}
}
