package ratelimit

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/tapnet/tapnet/internal/fakeclock"
)

func rlAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}) }

func rlAllowed(r *Limiter, dst netip.Addr, n int) int {
	ok := 0
	for i := 0; i < n; i++ {
		if r.Allow(dst) {
			ok++
		}
	}
	return ok
}

func TestLimiterPerPeer(t *testing.T) {
	clk := fakeclock.New()
	r := New(Config{Now: clk.Now})
	peer := rlAddr(2)
	if got := rlAllowed(r, peer, 100); got != 6 {
		t.Fatalf("burst: %d allowed, want 6", got)
	}
	// Another peer has its own bucket.
	if got := rlAllowed(r, rlAddr(3), 100); got != 6 {
		t.Fatalf("second peer: %d allowed, want 6", got)
	}
	clk.Advance(999 * time.Millisecond)
	if r.Allow(peer) {
		t.Fatal("allowed before a token accrued")
	}
	clk.Advance(time.Millisecond)
	if got := rlAllowed(r, peer, 10); got != 1 {
		t.Fatalf("after 1s: %d allowed, want 1", got)
	}
	// Tokens cap at the burst, however long the pause.
	clk.Advance(time.Hour)
	if got := rlAllowed(r, peer, 100); got != 6 {
		t.Fatalf("after an hour: %d allowed, want 6", got)
	}
}

func TestLimiterGlobal(t *testing.T) {
	clk := fakeclock.New()
	r := New(Config{Now: clk.Now, PerSecond: 1000, Burst: 50})
	ok := 0
	for i := 0; i < 200; i++ {
		if r.Allow(rlAddr(i)) {
			ok++
		}
	}
	if ok != 50 {
		t.Fatalf("200 peers at once: %d allowed, want the global burst of 50", ok)
	}
	clk.Advance(10 * time.Millisecond) // 10 tokens at 1000/s
	ok = 0
	for i := 0; i < 200; i++ {
		if r.Allow(rlAddr(i)) {
			ok++
		}
	}
	if ok != 10 {
		t.Fatalf("10ms later: %d allowed, want 10", ok)
	}
	// A refusal by the global bucket does not cost the peer a token: peer
	// 199 was refused every time and still has its full burst.
	clk.Advance(time.Second)
	if got := rlAllowed(r, rlAddr(199), 100); got != 6 {
		t.Fatalf("peer refused globally: %d allowed later, want 6", got)
	}
}

func TestLimiterPeersBounded(t *testing.T) {
	clk := fakeclock.New()
	r := New(Config{Now: clk.Now, MaxPeers: 16, PerSecond: 1 << 30, Burst: 1 << 30})
	for i := 0; i < 10000; i++ {
		r.Allow(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}))
		if n := len(r.peers); n > 16 {
			t.Fatalf("tracking %d peers, limit 16", n)
		}
	}
	// The default bound.
	r = New(Config{Now: clk.Now})
	for i := 0; i < 20000; i++ {
		r.Allow(netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)}))
	}
	if n := len(r.peers); n > 4096 {
		t.Fatalf("tracking %d peers, default limit 4096", n)
	}
}

func TestLimiterConcurrent(t *testing.T) {
	clk := fakeclock.New()
	r := New(Config{Now: clk.Now, MaxPeers: 8})
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for i := 0; i < 500; i++ {
				if r.Allow(rlAddr(g)) {
					n++
				}
			}
			mu.Lock()
			total += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	if total != 8*6 {
		t.Fatalf("8 peers racing: %d allowed, want 48", total)
	}
}
