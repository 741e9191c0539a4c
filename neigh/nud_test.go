package neigh

import (
	"testing"
	"time"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/fakeclock"
)

// TestIncompleteRetransmitsThenFails follows an unanswered resolution:
// MaxMulticastProbes solicitations RetransTime apart, then the entry is
// removed and its packets go to Failed, in order.
func TestIncompleteRetransmitsThenFails(t *testing.T) {
	e := newEnv(t, Config{})
	p1, p2 := newPkt(1), newPkt(2)
	if _, ok := e.tab.Resolve(ip(7), p1); ok {
		t.Fatal("resolved without an answer")
	}
	e.tab.Resolve(ip(7), p2)
	for i := 1; i <= 3; i++ {
		got := e.rec.takeSolicits()
		if len(got) != 1 || got[0] != (solicit{ip(7), ethernet.MAC{}}) {
			t.Fatalf("after %d intervals: solicitations %v, want one multicast", i-1, got)
		}
		if e.state(ip(7)) != Incomplete || e.rec.failuresOf(ip(7)) != 0 {
			t.Fatalf("after %d intervals: %v, %d failures", i-1, e.state(ip(7)), e.rec.failuresOf(ip(7)))
		}
		e.clk.Advance(time.Second - time.Nanosecond)
		if n := len(e.rec.takeSolicits()); n != 0 {
			t.Fatalf("%d solicitations before RetransTime", n)
		}
		e.clk.Advance(time.Nanosecond)
	}
	if e.state(ip(7)) != 0 || e.rec.failuresOf(ip(7)) != 1 || len(e.rec.takeSolicits()) != 0 {
		t.Fatal("entry not failed after three unanswered solicitations")
	}
	if got := e.rec.failed[ip(7)]; len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("failed packets %v, want 1, 2", got)
	}
	st := e.tab.Stats()
	if st.Requests.Load() != 3 || st.Failed.Load() != 1 || st.PendingDropped.Load() != 2 {
		t.Fatalf("requests %d, failed %d, pending dropped %d; want 3, 1, 2", st.Requests.Load(), st.Failed.Load(), st.PendingDropped.Load())
	}
	// The next packet starts again from scratch.
	e.tab.Resolve(ip(7), nil)
	if e.state(ip(7)) != Incomplete || len(e.rec.takeSolicits()) != 1 {
		t.Fatal("no new resolution after a failure")
	}
	checkTable(t, e.tab)
}

// TestIncompleteResolvedInOrder answers a resolution: queued packets leave
// in order through Resolved, the entry is reachable, and no solicitation
// follows.
func TestIncompleteResolvedInOrder(t *testing.T) {
	e := newEnv(t, Config{})
	for i := 1; i <= 5; i++ {
		e.tab.Resolve(ip(7), newPkt(i))
	}
	e.clk.Advance(1500 * time.Millisecond)
	e.reply(ip(7), mac(7))
	if got := e.rec.resolved[ip(7)]; len(got) != 5 || got[0] != 1 || got[4] != 5 {
		t.Fatalf("flushed %v, want 1..5", got)
	}
	e.rec.takeSolicits()
	e.clk.Advance(time.Minute)
	if n := len(e.rec.takeSolicits()); n != 0 {
		t.Fatalf("%d solicitations after the answer", n)
	}
	if m, ok := e.tab.Resolve(ip(7), nil); !ok || m != mac(7) {
		t.Fatal("resolved neighbour not returned")
	}
	if st := e.tab.Stats(); st.Resolved.Load() != 1 || st.Failed.Load() != 0 {
		t.Fatalf("resolved %d, failed %d", st.Resolved.Load(), st.Failed.Load())
	}
	checkTable(t, e.tab)
}

// TestReachableToStale checks that a confirmation lasts exactly the
// reachable time, and that a stale entry still resolves without a
// solicitation.
func TestReachableToStale(t *testing.T) {
	e := newEnv(t, Config{ReachableTime: 30 * time.Second})
	e.learn(ip(5), mac(5))
	e.clk.Advance(30 * time.Second)
	if st := e.state(ip(5)); st != Reachable {
		t.Fatalf("%v at the reachable time, want reachable", st)
	}
	e.clk.Advance(time.Nanosecond)
	if st := e.state(ip(5)); st != Stale {
		t.Fatalf("%v after the reachable time, want stale", st)
	}
	if m, ok := e.tab.Resolve(ip(5), nil); !ok || m != mac(5) {
		t.Fatal("stale entry not usable")
	}
	if n := len(e.rec.takeSolicits()); n != 0 {
		t.Fatalf("%d solicitations on first use of a stale entry, want none before DelayFirstProbeTime", n)
	}
}

// TestStaleDelayProbeFailed follows a neighbour that stops answering, as
// Linux does: first use of the stale entry starts Delay; after
// DelayFirstProbeTime, Probe sends MaxUnicastProbes unicast solicitations
// RetransTime apart while packets still use the address; then the entry
// fails and is removed, and the next packet resolves from scratch.
func TestStaleDelayProbeFailed(t *testing.T) {
	e := newEnv(t, Config{})
	e.learn(ip(5), mac(5))
	e.clk.Advance(31 * time.Second)
	e.tab.Resolve(ip(5), nil)
	if st := e.state(ip(5)); st != Delay {
		t.Fatalf("%v after use of a stale entry, want delay", st)
	}
	e.clk.Advance(5*time.Second - time.Nanosecond)
	if st, n := e.state(ip(5)), len(e.rec.takeSolicits()); st != Delay || n != 0 {
		t.Fatalf("before DelayFirstProbeTime: %v, %d solicitations", st, n)
	}
	e.clk.Advance(time.Nanosecond)
	for i := 1; i <= 3; i++ {
		got := e.rec.takeSolicits()
		if len(got) != 1 || got[0] != (solicit{ip(5), mac(5)}) {
			t.Fatalf("probe %d: solicitations %v, want one unicast to the cached MAC", i, got)
		}
		if m, ok := e.tab.Resolve(ip(5), newPkt(i)); !ok || m != mac(5) || e.state(ip(5)) != Probe {
			t.Fatalf("probe %d: entry not usable while probed (%v)", i, e.state(ip(5)))
		}
		e.clk.Advance(time.Second)
	}
	if st := e.state(ip(5)); st != 0 || e.rec.failuresOf(ip(5)) != 1 {
		t.Fatalf("after three unanswered probes: %v, %d failures; want no entry, 1", st, e.rec.failuresOf(ip(5)))
	}
	if n := len(e.rec.failed[ip(5)]); n != 0 {
		t.Fatalf("%d packets failed: a probed entry queues none", n)
	}
	if st := e.tab.Stats(); st.Failed.Load() != 1 || st.Requests.Load() != 3 || st.PendingDropped.Load() != 0 {
		t.Fatalf("failed %d, requests %d, pending dropped %d; want 1, 3, 0", st.Failed.Load(), st.Requests.Load(), st.PendingDropped.Load())
	}
	if _, ok := e.tab.Resolve(ip(5), newPkt(9)); ok {
		t.Fatal("failed neighbour still resolves")
	}
	if got := e.rec.takeSolicits(); len(got) != 1 || got[0].dst != (ethernet.MAC{}) {
		t.Fatalf("after the failure: %v, want a multicast solicitation", got)
	}
	checkTable(t, e.tab)
}

// TestConfirmations checks what ends Delay and Probe early: an upper-layer
// Confirm or a solicited answer makes the entry reachable and stops its
// probes; an unsolicited packet with the same address does not.
func TestConfirmations(t *testing.T) {
	toDelay := func(e *env) {
		e.learn(ip(5), mac(5))
		e.clk.Advance(31 * time.Second)
		e.tab.Resolve(ip(5), nil)
	}
	toProbe := func(e *env) {
		toDelay(e)
		e.clk.Advance(5 * time.Second)
		e.rec.takeSolicits()
	}
	confirm := func(e *env) { e.tab.Confirm(ip(5)) }
	answer := func(e *env) { e.reply(ip(5), mac(5)) }
	noMAC := func(e *env) { e.tab.Update(ip(5), Update{NoMAC: true, Solicited: true}) }
	unsolicited := func(e *env) { e.tab.Update(ip(5), Update{MAC: mac(5), Override: true}) }
	for _, tc := range []struct {
		name      string
		to        func(*env)
		by        func(*env)
		reachable bool
	}{
		{"delay/Confirm", toDelay, confirm, true},
		{"delay/answer", toDelay, answer, true},
		{"delay/answer without address", toDelay, noMAC, true},
		{"delay/unsolicited", toDelay, unsolicited, false},
		{"probe/Confirm", toProbe, confirm, true},
		{"probe/answer", toProbe, answer, true},
		{"probe/unsolicited", toProbe, unsolicited, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Config{})
			tc.to(e)
			before := e.state(ip(5))
			tc.by(e)
			e.clk.Advance(20 * time.Second)
			if !tc.reachable {
				if e.state(ip(5)) != 0 || e.rec.failuresOf(ip(5)) != 1 {
					t.Fatalf("from %v: %v, %d failures; want the probes to fail", before, e.state(ip(5)), e.rec.failuresOf(ip(5)))
				}
				return
			}
			if st := e.state(ip(5)); st != Reachable {
				t.Fatalf("from %v: %v 20s after the confirmation, want reachable", before, st)
			}
			if got := e.rec.takeSolicits(); len(got) != 0 {
				t.Fatalf("from %v: probes %v after the confirmation", before, got)
			}
			checkTable(t, e.tab)
		})
	}
}

// TestConfirmLeavesUnknownAlone checks that Confirm makes no entry and
// resolves none: it carries no address.
func TestConfirmLeavesUnknownAlone(t *testing.T) {
	e := newEnv(t, Config{})
	e.tab.Confirm(ip(1))
	e.tab.Resolve(ip(2), nil)
	e.tab.Confirm(ip(2))
	if e.state(ip(1)) != 0 || e.state(ip(2)) != Incomplete {
		t.Fatalf("states %v, %v; want none, incomplete", e.state(ip(1)), e.state(ip(2)))
	}
	// Confirm on a stale entry: reachable again at once (RFC 4861 §7.3.3).
	e.learn(ip(3), mac(3))
	e.clk.Advance(time.Minute)
	e.tab.Confirm(ip(3))
	if st := e.state(ip(3)); st != Reachable {
		t.Fatalf("confirmed stale entry %v, want reachable", st)
	}
}

// TestDelayEndsReachableWhenConfirmedLately is Linux's rule for the end of
// Delay: a confirmation no older than DelayFirstProbeTime makes the entry
// reachable without a probe. An advertisement without Override for
// another address leaves a just-confirmed entry stale with that time.
func TestDelayEndsReachableWhenConfirmedLately(t *testing.T) {
	e := newEnv(t, Config{})
	e.learn(ip(5), mac(5))
	e.tab.Update(ip(5), Update{MAC: mac(6), Solicited: true})
	if en, _ := e.tab.Lookup(ip(5)); en.State != Stale || en.MAC != mac(5) {
		t.Fatalf("after an answer without Override for another MAC: %+v, want stale at the old MAC", en)
	}
	e.tab.Resolve(ip(5), nil)
	e.clk.Advance(5 * time.Second)
	if st, n := e.state(ip(5)), len(e.rec.takeSolicits()); st != Reachable || n != 0 {
		t.Fatalf("end of Delay 5s after a confirmation: %v, %d probes; want reachable, 0", st, n)
	}
	checkTable(t, e.tab)
}

// TestRandomReachableTime checks RFC 4861 §6.3.2: the reachable time is
// drawn between 0.5 and 1.5 BaseReachableTime, differently across tables,
// and SetBaseReachableTime draws it again at once.
func TestRandomReachableTime(t *testing.T) {
	const tables = 64
	stale := 0
	for i := 0; i < tables; i++ {
		e := newEnv(t, Config{BaseReachableTime: 30 * time.Second})
		e.learn(ip(1), mac(1))
		e.clk.Advance(15 * time.Second)
		if st := e.state(ip(1)); st != Reachable {
			t.Fatalf("table %d: %v at 0.5 × base, want reachable", i, st)
		}
		e.clk.Advance(15 * time.Second)
		if e.state(ip(1)) == Stale {
			stale++
		}
		e.clk.Advance(15*time.Second + time.Nanosecond)
		if st := e.state(ip(1)); st != Stale {
			t.Fatalf("table %d: %v after 1.5 × base, want stale", i, st)
		}
		e.tab.SetBaseReachableTime(time.Second)
		e.learn(ip(1), mac(1))
		e.clk.Advance(1500*time.Millisecond + time.Nanosecond)
		if st := e.state(ip(1)); st != Stale {
			t.Fatalf("table %d: %v 1.5s after confirmation with a base of 1s, want stale", i, st)
		}
	}
	if stale == 0 || stale == tables {
		t.Fatalf("%d of %d tables stale at the base time: not random", stale, tables)
	}
}

// TestSetRetransTime checks that a new RetransTime paces the next
// solicitations.
func TestSetRetransTime(t *testing.T) {
	e := newEnv(t, Config{})
	e.tab.SetRetransTime(3 * time.Second)
	e.tab.Resolve(ip(1), nil)
	e.clk.Advance(2 * time.Second)
	if n := len(e.rec.takeSolicits()); n != 1 {
		t.Fatalf("%d solicitations in the first 2s, want 1", n)
	}
	e.clk.Advance(time.Second)
	if n := len(e.rec.takeSolicits()); n != 1 {
		t.Fatalf("%d solicitations at 3s, want 1", n)
	}
}

// TestStaleTimerCallbackIgnored plays a timer that fires while the table
// stops it: the callback, already begun, must do nothing when it gets the
// lock, even though the timer has been armed again meanwhile.
func TestStaleTimerCallbackIgnored(t *testing.T) {
	clk := fakeclock.New()
	var fires []func()
	rec := newRecorder()
	tab := New(Config{Now: clk.Now, ReachableTime: 30 * time.Second, AfterFunc: func(_ time.Duration, f func()) Timer {
		fires = append(fires, f)
		return firedTimer{}
	}}, rec.hooks(), nil)
	defer tab.Close()
	stateOf := func() State { en, _ := tab.Lookup(ip(1)); return en.State }
	tab.Update(ip(1), Update{MAC: mac(1), Solicited: true, Create: true})
	clk.Advance(31 * time.Second)
	tab.Resolve(ip(1), nil) // Delay: the timer is armed
	tab.Confirm(ip(1))      // stopped, but its callback has begun
	clk.Advance(31 * time.Second)
	tab.Resolve(ip(1), nil) // Delay again: the same timer re-armed
	if len(fires) != 1 || stateOf() != Delay {
		t.Fatalf("%d timers, state %v; want 1, delay", len(fires), stateOf())
	}
	fires[0]() // the callback of the stopped timer
	if got := rec.takeSolicits(); len(got) != 0 || stateOf() != Delay {
		t.Fatalf("stale callback ended Delay: %v, state %v", got, stateOf())
	}
	clk.Advance(5 * time.Second)
	fires[0]() // the re-armed timer's own
	if got := rec.takeSolicits(); len(got) != 1 || stateOf() != Probe {
		t.Fatalf("Delay's end: %v, state %v; want one probe", got, stateOf())
	}
	checkTable(t, tab)
}

// firedTimer is a timer whose function has always already begun.
type firedTimer struct{}

func (firedTimer) Stop() bool                 { return false }
func (firedTimer) Reset(d time.Duration) bool { return false }
