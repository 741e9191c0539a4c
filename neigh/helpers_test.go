package neigh

import (
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/fakeclock"
)

// recorder records what the table asks of its link.
type recorder struct {
	mu         sync.Mutex
	solicits   []solicit
	resolved   map[netip.Addr][]int // packet ids, in the order flushed
	failed     map[netip.Addr][]int
	failures   []netip.Addr
	routerLost []netip.Addr
}

type solicit struct {
	addr netip.Addr
	dst  ethernet.MAC
}

func newRecorder() *recorder {
	return &recorder{resolved: map[netip.Addr][]int{}, failed: map[netip.Addr][]int{}}
}

func (r *recorder) hooks() Hooks {
	return Hooks{
		Solicit: func(addr netip.Addr, dst ethernet.MAC) {
			r.mu.Lock()
			r.solicits = append(r.solicits, solicit{addr, dst})
			r.mu.Unlock()
		},
		Resolved: func(addr netip.Addr, _ ethernet.MAC, pkts []Pending) {
			r.mu.Lock()
			for _, p := range pkts {
				r.resolved[addr] = append(r.resolved[addr], p.(*pkt).id)
				p.Release()
			}
			r.mu.Unlock()
		},
		Failed: func(addr netip.Addr, pkts []Pending) {
			r.mu.Lock()
			r.failures = append(r.failures, addr)
			for _, p := range pkts {
				r.failed[addr] = append(r.failed[addr], p.(*pkt).id)
				p.Release()
			}
			r.mu.Unlock()
		},
		RouterLost: func(addr netip.Addr) {
			r.mu.Lock()
			r.routerLost = append(r.routerLost, addr)
			r.mu.Unlock()
		},
	}
}

// takeSolicits returns the solicitations sent since the last call.
func (r *recorder) takeSolicits() []solicit {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.solicits
	r.solicits = nil
	return s
}

func (r *recorder) failuresOf(addr netip.Addr) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(slices.DeleteFunc(slices.Clone(r.failures), func(a netip.Addr) bool { return a != addr }))
}

// pkt is a queued packet that records its releases.
type pkt struct {
	id       int
	n        int
	releases atomic.Int32
}

func newPkt(id int) *pkt { return &pkt{id: id, n: 100} }

func (p *pkt) Len() int { return p.n }
func (p *pkt) Release() { p.releases.Add(1) }

// env is a table on a fake clock with its recorder.
type env struct {
	clk *fakeclock.Clock
	rec *recorder
	tab *Table
}

// newEnv returns a table on a fake clock, with a fixed reachable time of
// 30s unless cfg says otherwise; it closes with the test.
func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	clk := fakeclock.New()
	cfg.Now = clk.Now
	cfg.AfterFunc = func(d time.Duration, f func()) Timer { return clk.AfterFunc(d, f) }
	if cfg.ReachableTime == 0 && cfg.BaseReachableTime == 0 {
		cfg.ReachableTime = 30 * time.Second
	}
	e := &env{clk: clk, rec: newRecorder()}
	e.tab = New(cfg, e.rec.hooks(), nil)
	t.Cleanup(e.tab.Close)
	return e
}

func ip(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}) }

func mac(i int) ethernet.MAC { return ethernet.MAC{0x02, 0, 0, 0, byte(i >> 8), byte(i)} }

// state returns addr's state, or 0 without an entry.
func (e *env) state(addr netip.Addr) State {
	en, ok := e.tab.Lookup(addr)
	if !ok {
		return 0
	}
	return en.State
}

// reply applies an ARP-style answer: solicited, overriding.
func (e *env) reply(addr netip.Addr, m ethernet.MAC) {
	e.tab.Update(addr, Update{MAC: m, Solicited: true, Override: true})
}

// learn makes a reachable entry, as a request aimed at us does for ARP.
func (e *env) learn(addr netip.Addr, m ethernet.MAC) {
	e.tab.Update(addr, Update{MAC: m, Solicited: true, Override: true, IgnoreLockTime: true, Create: true})
}

// checkTable verifies the table's structure: both lists linked both ways,
// every entry in the map on the list of its state, and the bounds held.
func checkTable(t *testing.T, tab *Table) {
	t.Helper()
	tab.mu.Lock()
	defer tab.mu.Unlock()
	seen := 0
	for _, l := range []*lru{&tab.resolved, &tab.incomplete} {
		n := 0
		var prev *entry
		for e := l.head; e != nil; e = e.next {
			if e.prev != prev || tab.m[e.addr] != e || tab.listOf(e.state) != l {
				t.Fatalf("entry %v (%v) misplaced in its list", e.addr, e.state)
			}
			if l == &tab.resolved && prev != nil && prev.used.Before(e.used) {
				t.Fatalf("entry %v used after the one before it", e.addr)
			}
			if e.state != Incomplete && len(e.pending) != 0 {
				t.Fatalf("resolved entry %v holds %d packets", e.addr, len(e.pending))
			}
			if len(e.pending) > tab.cfg.MaxPending || e.pendingBytes > tab.cfg.MaxPendingBytes {
				t.Fatalf("entry %v queues %d packets, %d bytes", e.addr, len(e.pending), e.pendingBytes)
			}
			if armed := e.state == Incomplete || e.state == Delay || e.state == Probe; armed != e.timerArmed {
				t.Fatalf("entry %v in %v has its timer armed=%v", e.addr, e.state, e.timerArmed)
			}
			prev = e
			n++
		}
		if l.tail != prev || l.n != n {
			t.Fatalf("list of %d entries has tail %v and count %d", n, l.tail, l.n)
		}
		seen += n
	}
	if seen != len(tab.m) || len(tab.m) > tab.cfg.MaxEntries || tab.incomplete.n > tab.cfg.MaxIncomplete {
		t.Fatalf("%d entries in lists, %d in the map (max %d), %d incomplete (max %d)",
			seen, len(tab.m), tab.cfg.MaxEntries, tab.incomplete.n, tab.cfg.MaxIncomplete)
	}
}
