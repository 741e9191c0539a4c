package fakeclock

import (
	"testing"
	"time"
)

// TestTimers checks that timers fire within Advance in deadline order,
// each seeing the clock at its deadline, and that Stop and Reset work as
// time.Timer's do, from inside a callback too.
func TestTimers(t *testing.T) {
	c := New()
	start := c.Now()
	var got []string
	at := func(name string) func() {
		return func() { got = append(got, name+"@"+c.Now().Sub(start).String()) }
	}
	c.AfterFunc(3*time.Second, at("c"))
	b := c.AfterFunc(2*time.Second, at("b"))
	stopped := c.AfterFunc(time.Second, at("never"))
	var again *Timer
	again = c.AfterFunc(time.Second, func() {
		at("a")()
		if len(got) > 1 {
			return
		}
		if again.Reset(3 * time.Second) {
			t.Error("Reset of a fired timer reported it armed")
		}
	})
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop did not report the timer armed once")
	}
	c.Advance(1500 * time.Millisecond)
	if !b.Reset(500 * time.Millisecond) {
		t.Fatal("Reset of an armed timer reported it idle")
	}
	c.Advance(10 * time.Second)
	want := []string{"a@1s", "b@2s", "c@3s", "a@4s"}
	if len(got) != len(want) {
		t.Fatalf("fired %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("fired %v, want %v", got, want)
		}
	}
	if d := c.Now().Sub(start); d != 11500*time.Millisecond {
		t.Fatalf("clock at %v after the advances, want 11.5s", d)
	}
}
