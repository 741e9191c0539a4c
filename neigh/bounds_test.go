package neigh

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/tapnet/tapnet/ethernet"
)

// TestFloodOfUnresolvable sends to hundreds of destinations that never
// answer, for long enough that their resolutions fail over and over: the
// table stays within its bounds, the resolved neighbours all stay, at most
// MaxIncomplete resolutions run with bounded queues, and every queued
// packet is released exactly once.
func TestFloodOfUnresolvable(t *testing.T) {
	e := newEnv(t, Config{MaxEntries: 16, MaxPending: 2})
	for i := 1; i <= 8; i++ {
		e.learn(ip(i), mac(i))
	}
	var pkts []*pkt
	for round := 0; round < 40; round++ {
		for i := 100; i < 200; i++ {
			p := newPkt(len(pkts))
			pkts = append(pkts, p)
			e.tab.Resolve(ip(i), p)
		}
		// Keep the neighbours in use and confirmed, as traffic would.
		for i := 1; i <= 8; i++ {
			e.tab.Resolve(ip(i), nil)
			e.tab.Confirm(ip(i))
		}
		checkTable(t, e.tab)
		e.clk.Advance(500 * time.Millisecond)
	}
	for i := 1; i <= 8; i++ {
		if st := e.state(ip(i)); st != Reachable {
			t.Fatalf("neighbour %d pushed out by the flood: %v", i, st)
		}
	}
	e.clk.Advance(time.Minute) // every resolution fails
	if n := e.tab.Len(); n != 8 {
		t.Fatalf("%d entries after the flood failed, want the 8 neighbours", n)
	}
	for i, p := range pkts {
		if r := p.releases.Load(); r != 1 {
			t.Fatalf("packet %d released %d times", i, r)
		}
	}
	st := e.tab.Stats()
	if st.Failed.Load() == 0 || st.CacheFullDrops.Load() == 0 || st.PendingDropped.Load()+st.CacheFullDrops.Load() != uint64(len(pkts)) {
		t.Fatalf("failed %d, cache-full %d, pending dropped %d; want every one of %d packets dropped and counted",
			st.Failed.Load(), st.CacheFullDrops.Load(), st.PendingDropped.Load(), len(pkts))
	}
	checkTable(t, e.tab)
}

// TestManyPeers learns from many more peers than the table holds, answers
// and probes mixed in: it never exceeds MaxEntries and keeps the most
// recently used.
func TestManyPeers(t *testing.T) {
	e := newEnv(t, Config{MaxEntries: 64})
	peer := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 51, byte(100 + i>>16), byte(i >> 8)}) }
	for i := 0; i < 5000; i++ {
		e.clk.Advance(10 * time.Millisecond)
		switch i % 3 {
		case 0:
			e.learn(peer(i), mac(i))
		case 1:
			e.tab.Resolve(peer(i), nil)
			e.reply(peer(i), mac(i))
		case 2:
			e.tab.Update(peer(i), withMAC(nsB, mac(i)))
		}
		if n := e.tab.Len(); n > 64 {
			t.Fatalf("%d entries, limit 64", n)
		}
	}
	checkTable(t, e.tab)
	if _, ok := e.tab.Lookup(peer(4999)); !ok {
		t.Fatal("most recent peer evicted")
	}
}

// TestPacketsReleasedOnEveryPath queues packets and ends their wait every
// way there is; each packet must be released exactly once, and counted as
// dropped unless it was sent.
func TestPacketsReleasedOnEveryPath(t *testing.T) {
	var all []*pkt
	track := func() *pkt { p := newPkt(len(all)); all = append(all, p); return p }
	for _, tc := range []struct {
		name    string
		run     func(e *env)
		dropped uint64
	}{
		{"queue overflow", func(e *env) {
			for i := 0; i < 5; i++ {
				e.tab.Resolve(ip(1), track())
			}
			e.reply(ip(1), mac(1))
		}, 3},
		{"byte bound", func(e *env) {
			big := track()
			big.n = 3000
			e.tab.Resolve(ip(1), big)
			e.tab.Resolve(ip(1), track())
			e.reply(ip(1), mac(1))
		}, 1},
		{"resolved", func(e *env) { e.tab.Resolve(ip(1), track()); e.reply(ip(1), mac(1)) }, 0},
		{"resolved without a hook", func(e *env) {
			e.tab.hooks.Resolved = nil
			e.tab.Resolve(ip(1), track())
			e.reply(ip(1), mac(1))
		}, 1},
		{"failed", func(e *env) { e.tab.Resolve(ip(1), track()); e.clk.Advance(4 * time.Hour) }, 1},
		{"failed without a hook", func(e *env) {
			e.tab.hooks.Failed = nil
			e.tab.Resolve(ip(1), track())
			e.clk.Advance(4 * time.Hour)
		}, 1},
		{"evicted", func(e *env) {
			e.tab.Resolve(ip(1), track())
			e.clk.Advance(6 * time.Second) // past GCMinAge; retransmissions held back below
			e.tab.Resolve(ip(2), track())
			e.reply(ip(2), mac(2))
		}, 1},
		{"table full", func(e *env) {
			e.tab.Resolve(ip(1), track())
			e.tab.Resolve(ip(2), track())
			e.tab.Close()
		}, 1},
		{"closed", func(e *env) { e.tab.Close(); e.tab.Resolve(ip(1), track()) }, 1},
		{"close", func(e *env) { e.tab.Resolve(ip(1), track()); e.tab.Close() }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from := len(all)
			e := newEnv(t, Config{MaxEntries: 2, MaxIncomplete: 1, MaxPending: 2, MaxPendingBytes: 3000, RetransTime: time.Hour})
			tc.run(e)
			e.tab.Close()
			for i, p := range all[from:] {
				if r := p.releases.Load(); r != 1 {
					t.Fatalf("packet %d released %d times", i, r)
				}
			}
			st := e.tab.Stats()
			if got := st.PendingDropped.Load() + st.CacheFullDrops.Load(); got != tc.dropped {
				t.Fatalf("%d dropped, want %d", got, tc.dropped)
			}
		})
	}
}

// TestConcurrent races lookups, updates, confirmations, expiries and Close
// with real timers (run with -race); Solicit and Failed may call back into
// the table.
func TestConcurrent(t *testing.T) {
	var tab *Table
	hooks := Hooks{
		Solicit: func(addr netip.Addr, _ ethernet.MAC) { tab.Lookup(addr) },
		Resolved: func(_ netip.Addr, _ ethernet.MAC, pkts []Pending) {
			for _, p := range pkts {
				p.Release()
			}
		},
		Failed: func(_ netip.Addr, pkts []Pending) {
			for _, p := range pkts {
				p.Release()
			}
			tab.Len()
		},
	}
	tab = New(Config{MaxEntries: 16, MaxPending: 2, MaxMulticastProbes: 2, MaxUnicastProbes: 1,
		RetransTime: time.Millisecond, DelayFirstProbeTime: time.Millisecond, ReachableTime: time.Millisecond}, hooks, nil)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 3000; i++ {
				addr := ip(1 + (i*7+g)%40)
				switch i % 5 {
				case 0:
					tab.Resolve(addr, newPkt(i))
				case 1:
					tab.Update(addr, Update{MAC: mac(i % 3), Solicited: g%2 == 0, Override: true, Create: g == 0})
				case 2:
					tab.Confirm(addr)
				case 3:
					tab.Resolve(addr, nil)
				case 4:
					tab.Entries(nil)
				}
			}
		}()
	}
	time.Sleep(10 * time.Millisecond)
	checkTable(t, tab)
	wg.Wait()
	tab.Close()
	if tab.Len() != 0 {
		t.Fatalf("%d entries after Close", tab.Len())
	}
}

// TestResolveHitAllocs checks that sending to a known neighbour, the
// per-packet path, allocates nothing, in every state it can be in.
func TestResolveHitAllocs(t *testing.T) {
	e := newEnv(t, Config{MaxEntries: 4})
	for i := 1; i <= 4; i++ {
		e.learn(ip(i), mac(i))
	}
	e.clk.Advance(31 * time.Second)
	for i := 1; i <= 3; i++ {
		e.tab.Resolve(ip(i), nil) // Delay, and its timer made
	}
	e.clk.Advance(5 * time.Second) // Probe
	e.tab.Confirm(ip(2))
	p := newPkt(0)
	i := 0
	if a := testing.AllocsPerRun(1000, func() {
		i++
		e.tab.Resolve(ip(1+i%4), p)
	}); a != 0 {
		t.Fatalf("%v allocations per send", a)
	}
}
