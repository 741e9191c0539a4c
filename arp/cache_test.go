package arp

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/internal/fakeclock"
	"github.com/tapnet/tapnet/neigh"
)

// cacheHooks records what the cache asks of its NIC.
type cacheHooks struct {
	mu       sync.Mutex
	requests []cacheRequest
	resolved map[netip.Addr][][]byte
	failed   map[netip.Addr][][]byte
	calls    atomic.Int64
}

type cacheRequest struct {
	target netip.Addr
	dst    ethernet.MAC
}

func newCacheHooks() *cacheHooks {
	return &cacheHooks{resolved: map[netip.Addr][][]byte{}, failed: map[netip.Addr][][]byte{}}
}

func (h *cacheHooks) hooks() Hooks {
	return Hooks{
		SendRequest: func(target netip.Addr, dst ethernet.MAC) {
			h.mu.Lock()
			h.requests = append(h.requests, cacheRequest{target, dst})
			h.mu.Unlock()
			h.calls.Add(1)
		},
		Resolved: func(target netip.Addr, mac ethernet.MAC, pkts []Pending) {
			h.mu.Lock()
			for _, p := range pkts {
				h.resolved[target] = append(h.resolved[target], append([]byte(nil), p.(*buffer.Buffer).Bytes()...))
				p.Release()
			}
			h.mu.Unlock()
			h.calls.Add(1)
		},
		Failed: func(target netip.Addr, pkts []Pending) {
			h.mu.Lock()
			for _, p := range pkts {
				h.failed[target] = append(h.failed[target], append([]byte(nil), p.(*buffer.Buffer).Bytes()...))
				p.Release()
			}
			h.mu.Unlock()
			h.calls.Add(1)
		},
	}
}

func (h *cacheHooks) nRequests() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.requests)
}

// learnReachable makes ip a reachable neighbour at mac the way a NIC
// does: a request of ours, then its reply.
func learnReachable(c *Cache, ip netip.Addr, mac ethernet.MAC) {
	c.Resolve(ip, nil)
	c.Learn(ip, mac, unicastReply)
}

// How the tests' packets reach the cache.
var (
	requestForUs      = Heard{Op: OpRequest, ForUs: true}
	unicastReply      = Heard{Op: OpReply, Unicast: true}
	gratuitousRequest = Heard{Op: OpRequest, Gratuitous: true}
)

func cacheIP(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}) }

func cacheMAC(i int) ethernet.MAC { return ethernet.MAC{0x02, 0, 0, 0, byte(i >> 8), byte(i)} }

func cachePkt(b byte) *buffer.Buffer {
	p := buffer.Get(1)
	p.Append([]byte{b})
	return p
}

// TestCacheBoundedBySources learns from many sources: the cache never
// exceeds MaxEntries and evicts the least recently used.
func TestCacheBoundedBySources(t *testing.T) {
	clk := fakeclock.New()
	h := newCacheHooks()
	c := New(Config{MaxEntries: 8, Now: clk.Now}, h.hooks(), nil)
	defer c.Close()
	for i := 1; i <= 200; i++ {
		clk.Advance(time.Millisecond)
		c.Learn(cacheIP(i), cacheMAC(i), requestForUs)
		if c.Len() > 8 {
			t.Fatalf("%d entries, limit 8", c.Len())
		}
	}
	if got := c.Stats().Evicted.Load(); got != 192 {
		t.Fatalf("evicted %d, want 192", got)
	}
	for i := 193; i <= 200; i++ {
		// A request's sender is stale, as Linux's neigh_event_ns makes it.
		if mac, st, ok := c.Lookup(cacheIP(i)); !ok || mac != cacheMAC(i) || st != Stale {
			t.Fatalf("recent entry %d: %v %v %v, want stale", i, mac, st, ok)
		}
	}
	// Without create, unknown sources are only counted.
	c.Learn(cacheIP(250), cacheMAC(250), unicastReply)
	if _, _, ok := c.Lookup(cacheIP(250)); ok || c.Stats().UnsolicitedSeen.Load() != 1 {
		t.Fatal("unsolicited information created an entry")
	}
}

// TestCacheBoundedByDestinations resolves many destinations: at most
// MaxIncomplete entries are being resolved at once and young ones are never
// evicted, so the excess is refused and dropped, while the other half of
// the cache stays open to neighbours that talk to us.
func TestCacheBoundedByDestinations(t *testing.T) {
	h := newCacheHooks()
	c := New(Config{MaxEntries: 8, RetransInterval: time.Hour}, h.hooks(), nil)
	for i := 1; i <= 100; i++ {
		if _, ok := c.Resolve(cacheIP(i), cachePkt(byte(i))); ok {
			t.Fatal("resolved without an answer")
		}
		checkCache(t, c)
	}
	st := c.Stats()
	if st.Requests.Load() != 4 || h.nRequests() != 4 || st.CacheFullDrops.Load() != 96 {
		t.Fatalf("requests %d (hook %d), cache-full drops %d; want 4, 4, 96", st.Requests.Load(), h.nRequests(), st.CacheFullDrops.Load())
	}
	// A request aimed at us still finds room.
	c.Learn(cacheIP(200), cacheMAC(200), requestForUs)
	if _, _, ok := c.Lookup(cacheIP(200)); !ok {
		t.Fatal("no entry for a request aimed at us in a cache full of incomplete entries")
	}
	// An answer completes one; its packet goes out.
	c.Learn(cacheIP(3), cacheMAC(3), unicastReply)
	h.mu.Lock()
	got := h.resolved[cacheIP(3)]
	h.mu.Unlock()
	if len(got) != 1 || got[0][0] != 3 {
		t.Fatalf("resolved packets %v", got)
	}
	checkCache(t, c)
	c.Close()
	if c.Len() != 0 {
		t.Fatalf("%d entries after Close", c.Len())
	}
	checkCache(t, c)
}

// TestCachePendingBounded queues more packets than MaxPending: the oldest
// make way, and the rest leave in order.
func TestCachePendingBounded(t *testing.T) {
	h := newCacheHooks()
	c := New(Config{MaxPending: 4, RetransInterval: time.Hour}, h.hooks(), nil)
	defer c.Close()
	for i := 0; i < 10; i++ {
		c.Resolve(cacheIP(9), cachePkt(byte(i)))
	}
	c.Resolve(cacheIP(9), nil) // a lookup without a packet queues nothing
	if got := c.Stats().PendingDropped.Load(); got != 6 {
		t.Fatalf("PendingDropped %d, want 6", got)
	}
	if h.nRequests() != 1 {
		t.Fatalf("%d requests for one neighbour, want 1", h.nRequests())
	}
	c.Learn(cacheIP(9), cacheMAC(9), unicastReply)
	h.mu.Lock()
	got := h.resolved[cacheIP(9)]
	h.mu.Unlock()
	if len(got) != 4 || got[0][0] != 6 || got[1][0] != 7 || got[2][0] != 8 || got[3][0] != 9 {
		t.Fatalf("flushed %v, want packets 6..9", got)
	}
	if mac, ok := c.Resolve(cacheIP(9), nil); !ok || mac != cacheMAC(9) {
		t.Fatal("resolved neighbour not returned")
	}
}

// TestCacheRetriesThenFails checks the retransmissions and the failure:
// Retries requests, then the packets go to Failed and the entry is gone.
func TestCacheRetriesThenFails(t *testing.T) {
	h := newCacheHooks()
	c := New(Config{Retries: 3, RetransInterval: 5 * time.Millisecond}, h.hooks(), nil)
	defer c.Close()
	c.Resolve(cacheIP(7), cachePkt(1))
	c.Resolve(cacheIP(7), cachePkt(2))
	deadline := time.Now().Add(5 * time.Second)
	for c.Stats().Failed.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	st := c.Stats()
	if st.Failed.Load() != 1 || st.Requests.Load() != 3 || h.nRequests() != 3 || st.PendingDropped.Load() != 2 {
		t.Fatalf("failed %d, requests %d (hook %d), pending dropped %d; want 1, 3, 3, 2",
			st.Failed.Load(), st.Requests.Load(), h.nRequests(), st.PendingDropped.Load())
	}
	h.mu.Lock()
	failed := h.failed[cacheIP(7)]
	h.mu.Unlock()
	if len(failed) != 2 || failed[0][0] != 1 || failed[1][0] != 2 {
		t.Fatalf("failed packets %v", failed)
	}
	if c.Len() != 0 {
		t.Fatalf("%d entries after the failure", c.Len())
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.requests {
		if r.target != cacheIP(7) || r.dst != (ethernet.MAC{}) {
			t.Fatalf("request %+v, want a broadcast for 192.0.2.7", r)
		}
	}
}

// fakeTimers returns cfg on clk's time and timers.
func fakeTimers(clk *fakeclock.Clock, cfg Config) Config {
	cfg.Now = clk.Now
	cfg.AfterFunc = func(d time.Duration, f func()) neigh.Timer { return clk.AfterFunc(d, f) }
	return cfg
}

// TestCacheRequestForUsMakesStale checks Linux's neigh_event_ns: a request
// aimed at us makes its sender a stale entry, not a reachable one, so the
// first packet to it starts Delay and, unconfirmed, a unicast probe; on a
// reachable entry with the same MAC it changes nothing, and a new MAC
// replaces the old at once (within LockTime too) and is stale.
func TestCacheRequestForUsMakesStale(t *testing.T) {
	clk := fakeclock.New()
	h := newCacheHooks()
	c := New(fakeTimers(clk, Config{ReachableTime: 30 * time.Second}), h.hooks(), nil)
	defer c.Close()
	ip := cacheIP(5)
	c.Learn(ip, cacheMAC(5), requestForUs)
	if mac, st, ok := c.Lookup(ip); !ok || mac != cacheMAC(5) || st != Stale {
		t.Fatalf("request's sender: %v %v %v, want stale", mac, st, ok)
	}
	if mac, ok := c.Resolve(ip, nil); !ok || mac != cacheMAC(5) {
		t.Fatal("stale entry not usable")
	}
	if _, st, _ := c.Lookup(ip); st != Delay || h.nRequests() != 0 {
		t.Fatalf("after a send: %v, %d requests; want delay, none", st, h.nRequests())
	}
	clk.Advance(5 * time.Second)
	h.mu.Lock()
	reqs := append([]cacheRequest(nil), h.requests...)
	h.mu.Unlock()
	if _, st, _ := c.Lookup(ip); st != Probe || len(reqs) != 1 || reqs[0].dst != cacheMAC(5) {
		t.Fatalf("after DelayFirstProbeTime: %v, requests %+v; want probe, one unicast", st, reqs)
	}

	other := cacheIP(6)
	learnReachable(c, other, cacheMAC(6))
	c.Learn(other, cacheMAC(6), requestForUs)
	if _, st, _ := c.Lookup(other); st != Reachable {
		t.Fatalf("request confirming a reachable entry's MAC: %v, want reachable kept", st)
	}
	c.Learn(other, cacheMAC(7), requestForUs)
	if mac, st, _ := c.Lookup(other); mac != cacheMAC(7) || st != Stale {
		t.Fatalf("request with a new MAC within LockTime: %v %v, want the new MAC, stale", mac, st)
	}
}

// TestCacheStaleDelayThenProbe checks what became of the stale probe: an
// entry past ReachableTime still resolves, sending to it starts Delay, and
// only if nothing confirms it within DelayFirstProbeTime does a unicast
// request go out (Linux's NUD_DELAY, NUD_PROBE). A reply confirms it.
func TestCacheStaleDelayThenProbe(t *testing.T) {
	clk := fakeclock.New()
	h := newCacheHooks()
	c := New(fakeTimers(clk, Config{ReachableTime: 30 * time.Second}), h.hooks(), nil)
	defer c.Close()
	c.Learn(cacheIP(5), cacheMAC(5), requestForUs)
	clk.Advance(31 * time.Second)
	if _, st, _ := c.Lookup(cacheIP(5)); st != Stale {
		t.Fatalf("state %v after ReachableTime, want stale", st)
	}
	for i := 0; i < 100; i++ {
		if mac, ok := c.Resolve(cacheIP(5), nil); !ok || mac != cacheMAC(5) {
			t.Fatal("stale entry not usable")
		}
	}
	if _, st, _ := c.Lookup(cacheIP(5)); st != Delay || h.nRequests() != 0 {
		t.Fatalf("after use: %v, %d requests; want delay, none", st, h.nRequests())
	}
	clk.Advance(5 * time.Second)
	if _, st, _ := c.Lookup(cacheIP(5)); st != Probe || h.nRequests() != 1 || h.requests[0].dst != cacheMAC(5) {
		t.Fatalf("after DelayFirstProbeTime: %v, requests %+v; want probe, one unicast", st, h.requests)
	}
	c.Learn(cacheIP(5), cacheMAC(5), unicastReply)
	if mac, st, _ := c.Lookup(cacheIP(5)); st != Reachable || mac != cacheMAC(5) {
		t.Fatalf("after the reply: %v %v", mac, st)
	}
	clk.Advance(10 * time.Second)
	if h.nRequests() != 1 {
		t.Fatalf("%d requests after the reply, want no more", h.nRequests())
	}
}

// TestCacheStaleNeighbourFails checks the new end of a neighbour that
// stops answering, as on Linux: after Delay, UnicastProbes unicast
// requests go unanswered, the entry is removed, Failed is told (with no
// packets: none waited), and the next packet broadcasts a request.
func TestCacheStaleNeighbourFails(t *testing.T) {
	clk := fakeclock.New()
	h := newCacheHooks()
	var failed []netip.Addr
	hooks := h.hooks()
	hooks.Failed = func(target netip.Addr, pkts []Pending) {
		failed = append(failed, target)
		if len(pkts) != 0 {
			t.Errorf("%d packets failed with a probed neighbour", len(pkts))
		}
	}
	c := New(fakeTimers(clk, Config{ReachableTime: 30 * time.Second}), hooks, nil)
	defer c.Close()
	c.Learn(cacheIP(5), cacheMAC(5), requestForUs)
	clk.Advance(31 * time.Second)
	c.Resolve(cacheIP(5), nil)
	clk.Advance(5*time.Second + 3*time.Second)
	if _, _, ok := c.Lookup(cacheIP(5)); ok || len(failed) != 1 || failed[0] != cacheIP(5) {
		t.Fatalf("entry kept (%v) or failure not reported (%v) after three unanswered probes", ok, failed)
	}
	for i, r := range h.requests {
		if r.dst != cacheMAC(5) {
			t.Fatalf("probe %d sent to %v, want the cached MAC", i, r.dst)
		}
	}
	if h.nRequests() != 3 || c.Stats().Failed.Load() != 1 {
		t.Fatalf("%d probes, %d failed; want 3, 1", h.nRequests(), c.Stats().Failed.Load())
	}
	if _, ok := c.Resolve(cacheIP(5), cachePkt(1)); ok {
		t.Fatal("failed neighbour still resolves")
	}
	if h.nRequests() != 4 || h.requests[3].dst != (ethernet.MAC{}) {
		t.Fatalf("requests %+v, want a broadcast after the failure", h.requests)
	}
}

// TestCacheClose checks that Close stops the timers and releases the
// queues, and that a closed cache takes no more packets.
func TestCacheClose(t *testing.T) {
	h := newCacheHooks()
	c := New(Config{RetransInterval: 5 * time.Millisecond}, h.hooks(), nil)
	for i := 1; i <= 20; i++ {
		c.Resolve(cacheIP(i), cachePkt(byte(i)))
	}
	c.Close()
	calls := h.calls.Load()
	time.Sleep(50 * time.Millisecond) // ten retransmission intervals
	if got := h.calls.Load(); got != calls {
		t.Fatalf("%d hook calls after Close", got-calls)
	}
	if c.Len() != 0 {
		t.Fatalf("%d entries after Close", c.Len())
	}
	dropped := c.Stats().PendingDropped.Load()
	if _, ok := c.Resolve(cacheIP(1), cachePkt(1)); ok || c.Stats().PendingDropped.Load() != dropped+1 || c.Len() != 0 {
		t.Fatal("closed cache accepted a packet")
	}
	c.Learn(cacheIP(1), cacheMAC(1), requestForUs)
	if c.Len() != 0 {
		t.Fatal("closed cache learned an entry")
	}
	c.Close()
}

// TestCacheConcurrent races lookups, answers, expiries and Close (run with
// -race); SendRequest and Failed may call back into the cache.
func TestCacheConcurrent(t *testing.T) {
	var c *Cache
	hooks := Hooks{
		SendRequest: func(target netip.Addr, dst ethernet.MAC) { c.Lookup(target) },
		// Resolved runs under the cache's lock: it must not call back.
		Resolved: func(target netip.Addr, mac ethernet.MAC, pkts []Pending) {
			for _, p := range pkts {
				p.Release()
			}
		},
		Failed: func(target netip.Addr, pkts []Pending) {
			for _, p := range pkts {
				p.Release()
			}
			c.Len()
		},
	}
	c = New(Config{MaxEntries: 16, MaxPending: 2, Retries: 2, RetransInterval: time.Millisecond}, hooks, nil)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ip := cacheIP(1 + (i*7+g)%40)
				switch i % 4 {
				case 0:
					c.Resolve(ip, cachePkt(byte(i)))
				case 1:
					c.Learn(ip, cacheMAC(i), [2]Heard{requestForUs, unicastReply}[g%2])
				case 2:
					c.Lookup(ip)
				case 3:
					c.Len()
				}
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	checkCache(t, c)
	c.Close()
	close(stop)
	wg.Wait()
	if c.Len() != 0 {
		t.Fatalf("%d entries after Close", c.Len())
	}
}

// TestCacheLockTime checks Linux's locktime: once an entry is confirmed, a
// reply claiming another MAC is ignored (and counted) until LockTime has
// passed since the entry last changed; the same MAC still confirms it.
func TestCacheLockTime(t *testing.T) {
	clk := fakeclock.New()
	h := newCacheHooks()
	c := New(Config{Now: clk.Now, RetransInterval: time.Hour}, h.hooks(), nil)
	defer c.Close()
	ip, a, b := cacheIP(4), cacheMAC(0xa), cacheMAC(0xb)
	c.Resolve(ip, nil)
	c.Learn(ip, a, unicastReply) // the reply to our request
	st := c.Stats()

	clk.Advance(500 * time.Millisecond)
	c.Learn(ip, b, unicastReply)
	if mac, _, _ := c.Lookup(ip); mac != a || st.LockTimeIgnored.Load() != 1 {
		t.Fatalf("competing reply within LockTime: mac %v, ignored %d; want A, 1", mac, st.LockTimeIgnored.Load())
	}
	updates := st.Updates.Load()
	c.Learn(ip, a, unicastReply)
	if st.Updates.Load() != updates+1 || st.LockTimeIgnored.Load() != 1 {
		t.Fatal("a reply with the same MAC did not confirm the entry")
	}
	// A confirmation is no change: the window still ends 1s after the
	// reply that resolved the entry, and Linux overrides only after it.
	clk.Advance(500 * time.Millisecond)
	c.Learn(ip, b, unicastReply)
	if mac, _, _ := c.Lookup(ip); mac != a || st.LockTimeIgnored.Load() != 2 {
		t.Fatalf("competing reply at exactly LockTime: mac %v, ignored %d; want A, 2", mac, st.LockTimeIgnored.Load())
	}
	clk.Advance(time.Millisecond)
	c.Learn(ip, b, unicastReply)
	if mac, st2, _ := c.Lookup(ip); mac != b || st2 != Reachable {
		t.Fatalf("competing reply after LockTime: %v %v, want B reachable", mac, st2)
	}
	// The change restarts the window: A cannot take it straight back.
	c.Learn(ip, a, unicastReply)
	if mac, _, _ := c.Lookup(ip); mac != b || st.LockTimeIgnored.Load() != 3 {
		t.Fatalf("reply right after a change: mac %v, ignored %d; want B, 3", mac, st.LockTimeIgnored.Load())
	}
}

// TestCacheLockTimeOverrides checks what Linux lets through the lock: a
// request aimed at us and a gratuitous ARP replace the MAC at once, and a
// negative LockTime turns the lock off.
func TestCacheLockTimeOverrides(t *testing.T) {
	clk := fakeclock.New()
	c := New(Config{Now: clk.Now}, newCacheHooks().hooks(), nil)
	defer c.Close()
	ip := cacheIP(4)
	c.Learn(ip, cacheMAC(1), requestForUs)
	c.Learn(ip, cacheMAC(2), requestForUs)
	if mac, _, _ := c.Lookup(ip); mac != cacheMAC(2) {
		t.Fatalf("request aimed at us: mac %v, want 2", mac)
	}
	c.Learn(ip, cacheMAC(3), gratuitousRequest)
	if mac, _, _ := c.Lookup(ip); mac != cacheMAC(3) {
		t.Fatalf("gratuitous ARP: mac %v, want 3", mac)
	}
	c.Learn(cacheIP(5), cacheMAC(5), gratuitousRequest)
	if _, _, ok := c.Lookup(cacheIP(5)); ok {
		t.Fatal("gratuitous ARP created an entry")
	}
	if got := c.Stats().LockTimeIgnored.Load(); got != 0 {
		t.Fatalf("LockTimeIgnored %d, want 0", got)
	}

	off := New(Config{Now: clk.Now, LockTime: -1}, newCacheHooks().hooks(), nil)
	defer off.Close()
	off.Learn(ip, cacheMAC(1), requestForUs)
	off.Learn(ip, cacheMAC(2), unicastReply)
	if mac, _, _ := off.Lookup(ip); mac != cacheMAC(2) {
		t.Fatalf("LockTime off: mac %v, want 2", mac)
	}
}

// TestCacheLockTimeAfterStale checks that going stale is a change, as in
// Linux: a competing reply within LockTime of the entry's expiry waits.
func TestCacheLockTimeAfterStale(t *testing.T) {
	clk := fakeclock.New()
	c := New(Config{Now: clk.Now, ReachableTime: 30 * time.Second}, newCacheHooks().hooks(), nil)
	defer c.Close()
	ip := cacheIP(4)
	learnReachable(c, ip, cacheMAC(1))
	clk.Advance(30*time.Second + 500*time.Millisecond)
	c.Learn(ip, cacheMAC(2), unicastReply)
	if mac, st, _ := c.Lookup(ip); mac != cacheMAC(1) || st != Stale {
		t.Fatalf("reply 0.5s after going stale: %v %v, want 1 stale", mac, st)
	}
	clk.Advance(time.Second)
	c.Learn(ip, cacheMAC(2), unicastReply)
	if mac, st, _ := c.Lookup(ip); mac != cacheMAC(2) || st != Reachable {
		t.Fatalf("reply 1.5s after going stale: %v %v, want 2 reachable", mac, st)
	}
}

// checkCache verifies what the cache shows of its structure: every entry
// listed once, and the bounds held (package neigh checks the lists).
func checkCache(t *testing.T, c *Cache) {
	t.Helper()
	cfg := c.tab.Config()
	entries := c.Entries(nil)
	seen := map[netip.Addr]bool{}
	incomplete := 0
	for _, e := range entries {
		if seen[e.Addr] {
			t.Fatalf("entry %v listed twice", e.Addr)
		}
		seen[e.Addr] = true
		if e.State == Incomplete {
			incomplete++
		}
	}
	if n := c.Len(); n != len(entries) || n > cfg.MaxEntries || incomplete > cfg.MaxIncomplete {
		t.Fatalf("%d entries listed, %d counted (max %d), %d incomplete (max %d)",
			len(entries), n, cfg.MaxEntries, incomplete, cfg.MaxIncomplete)
	}
}

// trackedPkt is a pending packet that records its releases.
type trackedPkt struct{ releases atomic.Int32 }

func (p *trackedPkt) Len() int { return 1 }
func (p *trackedPkt) Release() { p.releases.Add(1) }

// released reports whether the cache released p, once.
func released(p *trackedPkt) bool { return p.releases.Load() == 1 }

// TestCacheEvictsLeastRecentlyUsed fills the cache with resolved
// neighbours: a new entry evicts the one least recently used, whether the
// newcomer is a request aimed at us or a resolution.
func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	clk := fakeclock.New()
	c := New(Config{MaxEntries: 8, Now: clk.Now, RetransInterval: time.Hour}, newCacheHooks().hooks(), nil)
	defer c.Close()
	for i := 1; i <= 8; i++ {
		clk.Advance(time.Millisecond)
		c.Learn(cacheIP(i), cacheMAC(i), requestForUs)
	}
	// Use all but 3, then 1 before the rest: 3 is the least recently
	// used, then 1.
	for _, i := range []int{1, 2, 4, 5, 6, 7, 8} {
		clk.Advance(time.Millisecond)
		if _, ok := c.Resolve(cacheIP(i), nil); !ok {
			t.Fatalf("neighbour %d not resolved", i)
		}
	}
	c.Learn(cacheIP(9), cacheMAC(9), requestForUs)
	if _, _, ok := c.Lookup(cacheIP(3)); ok {
		t.Fatal("least recently used entry 3 kept")
	}
	c.Resolve(cacheIP(10), cachePkt(10))
	if _, _, ok := c.Lookup(cacheIP(1)); ok {
		t.Fatal("least recently used entry 1 kept")
	}
	for _, i := range []int{2, 4, 5, 6, 7, 8, 9, 10} {
		if _, _, ok := c.Lookup(cacheIP(i)); !ok {
			t.Fatalf("entry %d evicted", i)
		}
	}
	if st := c.Stats(); st.Evicted.Load() != 2 || st.CacheFullDrops.Load() != 0 {
		t.Fatalf("evicted %d, cache-full drops %d; want 2, 0", st.Evicted.Load(), st.CacheFullDrops.Load())
	}
	checkCache(t, c)
}

// TestCacheUnresolvedFloodKeepsNeighbours sends to hundreds of
// destinations that never answer: the resolved neighbours all stay, at
// most MaxIncomplete resolutions run with bounded queues, the excess is
// counted, and once the oldest resolution has had GCMinAge a new one evicts
// it and its queued packets are released.
func TestCacheUnresolvedFloodKeepsNeighbours(t *testing.T) {
	clk := fakeclock.New()
	h := newCacheHooks()
	c := New(Config{MaxEntries: 16, MaxPending: 2, Now: clk.Now, RetransInterval: time.Hour}, h.hooks(), nil)
	defer c.Close()
	for i := 1; i <= 8; i++ {
		learnReachable(c, cacheIP(i), cacheMAC(i))
	}
	var tracked []*trackedPkt
	for i := 100; i < 250; i++ {
		clk.Advance(10 * time.Millisecond)
		for k := 0; k < 3; k++ {
			if i == 100 {
				p := new(trackedPkt)
				tracked = append(tracked, p)
				c.Resolve(cacheIP(i), p)
			} else {
				c.Resolve(cacheIP(i), cachePkt(byte(k)))
			}
		}
		checkCache(t, c)
	}
	for i := 1; i <= 8; i++ {
		if _, st, ok := c.Lookup(cacheIP(i)); !ok || st != Reachable {
			t.Fatalf("neighbour %d pushed out by the flood: %v %v", i, st, ok)
		}
	}
	st := c.Stats()
	// 8 resolutions, each keeping its 2 newest packets of 3, after the 8
	// that found the neighbours.
	if st.Requests.Load() != 8+8 || st.CacheFullDrops.Load() != 3*(150-8) || st.PendingDropped.Load() != 8 {
		t.Fatalf("requests %d, cache-full drops %d, pending dropped %d; want 16, %d, 8",
			st.Requests.Load(), st.CacheFullDrops.Load(), st.PendingDropped.Load(), 3*(150-8))
	}
	if !released(tracked[0]) {
		t.Fatal("packet pushed out of a full queue not released")
	}
	// The oldest resolution started 1.49s ago; once more than GCMinAge
	// (5s) old it may be evicted, its two packets with it.
	clk.Advance(3510 * time.Millisecond)
	c.Resolve(cacheIP(250), cachePkt(1))
	if _, _, ok := c.Lookup(cacheIP(250)); ok {
		t.Fatal("resolution started before the oldest one had GCMinAge")
	}
	clk.Advance(time.Millisecond)
	c.Resolve(cacheIP(251), cachePkt(1))
	if _, _, ok := c.Lookup(cacheIP(251)); !ok {
		t.Fatal("resolution refused after the oldest one had GCMinAge")
	}
	if _, _, ok := c.Lookup(cacheIP(100)); ok {
		t.Fatal("oldest resolution not evicted")
	}
	for i, p := range tracked[1:] {
		if !released(p) {
			t.Fatalf("queued packet %d of an evicted entry not released", i+1)
		}
	}
	if st.Evicted.Load() != 1 || st.PendingDropped.Load() != 10 {
		t.Fatalf("evicted %d, pending dropped %d; want 1, 10", st.Evicted.Load(), st.PendingDropped.Load())
	}
	for i := 1; i <= 8; i++ {
		if _, _, ok := c.Lookup(cacheIP(i)); !ok {
			t.Fatalf("neighbour %d evicted", i)
		}
	}
	checkCache(t, c)
}

// TestCacheEvictionPreference fills the cache with resolved neighbours and
// old resolutions: a stale least recently used entry goes first, then the
// oldest resolution past GCMinAge, then the least recently used entry.
func TestCacheEvictionPreference(t *testing.T) {
	clk := fakeclock.New()
	c := New(Config{MaxEntries: 4, MaxIncomplete: 2, Now: clk.Now, RetransInterval: time.Hour, ReachableTime: 30 * time.Second}, newCacheHooks().hooks(), nil)
	defer c.Close()
	c.Learn(cacheIP(1), cacheMAC(1), requestForUs)
	c.Learn(cacheIP(2), cacheMAC(2), requestForUs)
	c.Resolve(cacheIP(3), cachePkt(3))
	clk.Advance(time.Second)
	c.Resolve(cacheIP(4), cachePkt(4))
	// 1 goes stale; 2 is confirmed again, and used.
	clk.Advance(30 * time.Second)
	c.Learn(cacheIP(2), cacheMAC(2), unicastReply)
	c.Resolve(cacheIP(1), nil)
	c.Resolve(cacheIP(2), nil)
	want := func(gone int, kept ...int) {
		t.Helper()
		if _, _, ok := c.Lookup(cacheIP(gone)); ok {
			t.Fatalf("entry %d kept", gone)
		}
		for _, i := range kept {
			if _, _, ok := c.Lookup(cacheIP(i)); !ok {
				t.Fatalf("entry %d evicted", i)
			}
		}
		checkCache(t, c)
	}
	c.Learn(cacheIP(5), cacheMAC(5), requestForUs)
	want(1, 2, 3, 4, 5) // the least recently used, stale: before the old resolutions
	c.Learn(cacheIP(6), cacheMAC(6), requestForUs)
	want(3, 2, 4, 5, 6) // the oldest resolution
	c.Learn(cacheIP(7), cacheMAC(7), requestForUs)
	want(4, 2, 5, 6, 7) // the next one
	c.Learn(cacheIP(8), cacheMAC(8), requestForUs)
	want(2, 5, 6, 7, 8) // the least recently used
}

// TestCacheCollectsIdle checks the thresholds: below MinEntries idle
// entries stay; from MinEntries those unused for StaleTime go, from
// SoftEntries those stale and unused for GCMinAge.
func TestCacheCollectsIdle(t *testing.T) {
	clk := fakeclock.New()
	c := New(Config{MaxEntries: 16, SoftEntries: 8, MinEntries: 4, Now: clk.Now, ReachableTime: 30 * time.Second}, newCacheHooks().hooks(), nil)
	defer c.Close()
	learn := func(from, to int) {
		for i := from; i <= to; i++ {
			learnReachable(c, cacheIP(i), cacheMAC(i))
		}
	}
	learn(1, 3)
	clk.Advance(time.Hour)
	learn(4, 4)
	if c.Len() != 4 || c.Stats().Collected.Load() != 0 {
		t.Fatalf("below MinEntries: %d entries, %d collected; want 4, 0", c.Len(), c.Stats().Collected.Load())
	}
	// 4 entries: the idle ones go one by one down to MinEntries.
	learn(5, 5)
	if c.Len() != 4 || c.Stats().Collected.Load() != 1 {
		t.Fatalf("at MinEntries: %d entries, %d collected; want 4, 1", c.Len(), c.Stats().Collected.Load())
	}
	learn(6, 9) // 2 and 3 go, then 8 entries: 4..9 and nothing idle
	if c.Len() != 6 || c.Stats().Collected.Load() != 3 {
		t.Fatalf("%d entries, %d collected; want 6, 3", c.Len(), c.Stats().Collected.Load())
	}
	learn(10, 11)
	// 8 entries, unused for 6s but reachable: they stay.
	clk.Advance(6 * time.Second)
	learn(12, 12)
	if c.Len() != 9 || c.Stats().Collected.Load() != 3 {
		t.Fatalf("reachable at SoftEntries: %d entries, %d collected; want 9, 3", c.Len(), c.Stats().Collected.Load())
	}
	// Stale and unused for more than GCMinAge (but less than StaleTime):
	// as in Linux the table is shrunk to make the new entry its
	// SoftEntries-th, and below that only StaleTime counts.
	clk.Advance(30 * time.Second)
	c.Resolve(cacheIP(4), nil)
	learn(13, 13)
	if c.Len() != 8 || c.Stats().Collected.Load() != 5 {
		t.Fatalf("stale at SoftEntries: %d entries, %d collected; want 8, 5", c.Len(), c.Stats().Collected.Load())
	}
	for _, i := range []int{5, 6} {
		if _, _, ok := c.Lookup(cacheIP(i)); ok {
			t.Fatalf("least recently used stale entry %d kept", i)
		}
	}
	if _, _, ok := c.Lookup(cacheIP(4)); !ok {
		t.Fatal("entry in use collected")
	}
	checkCache(t, c)
}

// TestCacheResolveHitAllocs checks that a lookup of a cached neighbour, the
// per-packet path, allocates nothing.
func TestCacheResolveHitAllocs(t *testing.T) {
	c := New(Config{MaxEntries: 4}, newCacheHooks().hooks(), nil)
	defer c.Close()
	for i := 1; i <= 4; i++ {
		c.Learn(cacheIP(i), cacheMAC(i), requestForUs)
	}
	i := 0
	if a := testing.AllocsPerRun(1000, func() {
		i++
		c.Resolve(cacheIP(1+i%4), nil)
	}); a != 0 {
		t.Fatalf("%v allocations per lookup", a)
	}
}

// TestCacheOnlyUnicastRepliesConfirm checks Linux's arp_process: "request
// packets do not assert neighbour reachability", nor do broadcast
// replies. A request for another host or a broadcast reply leaves a stale
// entry stale, resolves an incomplete one as stale and makes a MAC it
// changes stale; only a reply unicast to us makes the entry reachable.
// tapnet confirmed the sender of every packet but requests aimed at us.
func TestCacheOnlyUnicastRepliesConfirm(t *testing.T) {
	overheard := map[string]Heard{
		"request for another host":       {Op: OpRequest},
		"broadcast reply":                {Op: OpReply},
		"gratuitous request":             gratuitousRequest,
		"broadcast gratuitous reply":     {Op: OpReply, Gratuitous: true},
		"request for another, unicast":   {Op: OpRequest, Unicast: true},
		"gratuitous request, unicast":    {Op: OpRequest, Unicast: true, Gratuitous: true},
		"broadcast reply to our address": {Op: OpReply, ForUs: true},
	}
	for name, h := range overheard {
		t.Run(name, func(t *testing.T) {
			clk := fakeclock.New()
			c := New(Config{Now: clk.Now, ReachableTime: 30 * time.Second, LockTime: -1}, newCacheHooks().hooks(), nil)
			defer c.Close()
			ip := cacheIP(4)

			learnReachable(c, ip, cacheMAC(1))
			clk.Advance(31 * time.Second)
			c.Learn(ip, cacheMAC(1), h)
			if _, st, _ := c.Lookup(ip); st != Stale {
				t.Fatalf("stale entry, same MAC: %v, want stale", st)
			}
			c.Learn(ip, cacheMAC(2), h)
			if mac, st, _ := c.Lookup(ip); mac != cacheMAC(2) || st != Stale {
				t.Fatalf("new MAC: %v %v, want 2 stale", mac, st)
			}
			c.Learn(ip, cacheMAC(2), unicastReply)
			c.Learn(ip, cacheMAC(3), h)
			if mac, st, _ := c.Lookup(ip); mac != cacheMAC(3) || st != Stale {
				t.Fatalf("reachable entry, new MAC: %v %v, want 3 stale", mac, st)
			}
			c.Learn(ip, cacheMAC(3), unicastReply)
			c.Learn(ip, cacheMAC(3), h)
			if _, st, _ := c.Lookup(ip); st != Reachable {
				t.Fatalf("reachable entry, same MAC: %v, want reachable kept", st)
			}

			other := cacheIP(5)
			c.Resolve(other, nil)
			c.Learn(other, cacheMAC(5), h)
			if mac, st, _ := c.Lookup(other); mac != cacheMAC(5) || st != Stale {
				t.Fatalf("incomplete entry: %v %v, want resolved stale", mac, st)
			}
			c.Learn(cacheIP(6), cacheMAC(6), h)
			if _, _, ok := c.Lookup(cacheIP(6)); ok {
				t.Fatal("overheard packet created an entry")
			}
		})
	}
	for name, h := range map[string]Heard{
		"unicast reply":            unicastReply,
		"unicast gratuitous reply": {Op: OpReply, Unicast: true, Gratuitous: true},
	} {
		t.Run(name, func(t *testing.T) {
			clk := fakeclock.New()
			c := New(Config{Now: clk.Now, ReachableTime: 30 * time.Second}, newCacheHooks().hooks(), nil)
			defer c.Close()
			ip := cacheIP(4)
			learnReachable(c, ip, cacheMAC(1))
			clk.Advance(31 * time.Second)
			c.Learn(ip, cacheMAC(1), h)
			if _, st, _ := c.Lookup(ip); st != Reachable {
				t.Fatalf("stale entry: %v, want reachable", st)
			}
		})
	}
}
