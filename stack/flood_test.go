package stack_test

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapnet/tapnet/arp"
	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/leakcheck"
	"github.com/tapnet/tapnet/stack"
)

func relHeap() uint64 {
	var ms runtime.MemStats
	// Twice, so that sync.Pool's victim cache is emptied too.
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestFloodOneEndpoint sends a burst of 100k datagrams to a socket that
// does not read: the receive queue stops at the receive buffer, the rest is
// dropped and counted, memory and goroutines do not grow, and the socket
// still works afterwards.
func TestFloodOneEndpoint(t *testing.T) {
	leakcheck.Check(t)
	e := newRelEnv(t, stack.Options{})
	ep := e.listen(netip.Addr{}, 7)
	const total = 100_000
	payload := bytes.Repeat([]byte{0xa5}, 100)
	frame := relUDPFrame(relPeerIP, relOurIP, 5000, 7, payload)

	goroutines := leakcheck.Count()
	heap := relHeap()
	before := e.s.Stats().Snapshot()
	for i := 0; i < total; i++ {
		e.link.inject(frame)
	}
	after := e.s.Stats().Snapshot()
	heapAfter := relHeap()
	d := relDelta(before, after)
	relCheckBalance(t, after)

	delivered, dropped := d["UDP.Delivered"], d["UDP.BufferErrors"]
	if delivered+dropped != total || d["Link.RxFrames"] != total {
		t.Fatalf("counters %s: delivered+dropped should be %d", relFormat(d), total)
	}
	if ep.Drops() != dropped {
		t.Errorf("endpoint counted %d drops, stack %d", ep.Drops(), dropped)
	}
	// Each datagram is charged at least its length; like Linux, the last
	// one admitted may overshoot the limit.
	limit := ep.ReceiveBufferSize()
	if delivered < 2 || int(delivered-1)*len(payload) > limit {
		t.Errorf("queued %d datagrams of %d bytes in a %d-byte receive buffer", delivered, len(payload), limit)
	}
	grown := int64(heapAfter) - int64(heap)
	t.Logf("100k-frame burst: %d queued (%d-byte receive buffer, so %d-%d bytes charged each), %d dropped; heap %+d bytes; goroutines %d -> %d",
		delivered, limit, limit/int(delivered)+1, limit/int(delivered-1), dropped, grown, goroutines, leakcheck.Count())
	if grown > int64(4*limit)+256<<10 {
		t.Errorf("heap grew by %d bytes for a %d-byte receive buffer", grown, limit)
	}
	if g := leakcheck.Count(); g > goroutines {
		t.Errorf("goroutines grew from %d to %d", goroutines, g)
	}
	// Reading k datagrams makes room for exactly k more.
	for i := 0; i < 10; i++ {
		if _, err := ep.Read(make([]byte, 200), false, relNow); err != nil {
			t.Fatal(err)
		}
	}
	before = e.s.Stats().Snapshot()
	for i := 0; i < 1000; i++ {
		e.link.inject(frame)
	}
	if d := relDelta(before, e.s.Stats().Snapshot()); d["UDP.Delivered"] != 10 || d["UDP.BufferErrors"] != 990 {
		t.Errorf("after reading 10: a second burst moved %s, want 10 delivered and 990 dropped", relFormat(d))
	}
	got := relRead(ep)
	if uint64(len(got)) != delivered {
		t.Fatalf("read %d datagrams, %d were queued", len(got), delivered)
	}
	for _, g := range got {
		if !bytes.Equal(g.data, payload) {
			t.Fatalf("corrupted datagram %x", g.data)
		}
	}
	e.link.inject(relUDPFrame(relPeerIP, relOurIP, 5000, 7, []byte("after")))
	if got := relRead(ep); len(got) != 1 || string(got[0].data) != "after" {
		t.Fatalf("after the flood: read %v", got)
	}
}

func relMAC(i int) ethernet.MAC { return ethernet.MAC{0x02, 0, 0, 0, byte(i >> 8), byte(i)} }

func relHost(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}) }

// TestARPFloodRandomSources floods ARP requests for us from every address
// of the subnet: the cache stays within MaxEntries, evicting as it goes,
// and each request is answered.
func TestARPFloodRandomSources(t *testing.T) {
	e := newRelEnv(t, stack.Options{ARP: arp.Config{MaxEntries: 32}})
	c := e.nic.ARP()
	st := c.Stats()
	evicted, replies := st.Evicted.Load(), e.s.Stats().ARP.RepliesSent.Load()
	n := 0
	for i := 3; i <= 254; i++ {
		e.link.inject(relARP(1, relMAC(i), relHost(i), ethernet.MAC{}, relOurIP, ethernet.Broadcast))
		n++
		if c.Len() > 32 {
			t.Fatalf("cache holds %d entries, limit 32", c.Len())
		}
	}
	// The peer's entry plus n new ones in 32 slots.
	if got, want := st.Evicted.Load()-evicted, uint64(1+n-32); got != want {
		t.Errorf("evicted %d entries, want %d", got, want)
	}
	if got := e.s.Stats().ARP.RepliesSent.Load() - replies; got != uint64(n) {
		t.Errorf("sent %d replies, want %d", got, n)
	}
	if sent := e.link.take(); len(sent) != n {
		t.Errorf("%d frames sent, want %d replies", len(sent), n)
	}
	// The most recent sources are the ones kept.
	if _, _, ok := c.Lookup(relHost(254)); !ok {
		t.Error("latest source not in the cache")
	}

	// Gratuitous ARP and requests for other hosts from unknown sources do
	// not create entries.
	l := c.Len()
	for i := 0; i < 200; i++ {
		ip := relHost(2 + i%250)
		if _, _, ok := c.Lookup(ip); ok {
			continue
		}
		e.link.inject(relARP(1, relMAC(1000+i), ip, ethernet.MAC{}, ip, ethernet.Broadcast))
		e.link.inject(relARP(1, relMAC(1000+i), ip, ethernet.MAC{}, relHost(250), ethernet.Broadcast))
	}
	if c.Len() != l {
		t.Errorf("unsolicited ARP grew the cache from %d to %d entries", l, c.Len())
	}
	relCheckBalance(t, e.s.Stats().Snapshot())
}

// TestARPUnsolicitedReplyNotLearned checks Linux's arp_accept=0 behaviour:
// an ARP reply nobody asked for does not create a cache entry, so a flood of
// forged replies cannot push real neighbours out.
func TestARPUnsolicitedReplyNotLearned(t *testing.T) {
	e := newRelEnv(t, stack.Options{ARP: arp.Config{MaxEntries: 8}})
	c := e.nic.ARP()
	unsolicited := c.Stats().UnsolicitedSeen.Load()
	for i := 10; i < 30; i++ {
		e.link.inject(relARP(2, relMAC(i), relHost(i), relOurMAC, relOurIP, relOurMAC))
	}
	if c.Len() != 1 {
		t.Errorf("cache holds %d entries after 20 unsolicited replies, want 1 (the peer)", c.Len())
	}
	if _, _, ok := c.Lookup(relPeerIP); !ok {
		t.Error("unsolicited replies evicted the peer")
	}
	if got := c.Stats().UnsolicitedSeen.Load() - unsolicited; got != 20 {
		t.Errorf("UnsolicitedSeen moved by %d, want 20", got)
	}
}

// TestARPFloodUnresolvedSources pings the stack from every address of the
// subnet, none of them resolved: each reply needs a resolution, the
// incomplete entries stay within MaxIncomplete (half of MaxEntries) and the
// peer keeps its entry; once the resolutions fail only the peer's is left
// and pings are answered again.
func TestARPFloodUnresolvedSources(t *testing.T) {
	e := newRelEnv(t, stack.Options{ARP: arp.Config{MaxEntries: 32, RetransInterval: 250 * time.Millisecond, Retries: 2}})
	c := e.nic.ARP()
	st := c.Stats()
	full := st.CacheFullDrops.Load()
	for i := 3; i <= 254; i++ {
		src := relHost(i)
		e.link.inject(relEther(relOurMAC, relMAC(i), ethernet.TypeIPv4,
			relIPv4(relIP{ttl: 64, proto: 1, src: src, dst: relOurIP, payload: relICMP(8, 0, uint32(i), []byte("flood"))})))
		if c.Len() > 32 {
			t.Fatalf("cache holds %d entries, limit 32", c.Len())
		}
	}
	// 252 replies: 16 incomplete entries hold one each and the other
	// 236 are dropped.
	if got := st.CacheFullDrops.Load() - full; got != 252-16 {
		t.Errorf("CacheFullDrops moved by %d, want %d", got, 252-16)
	}
	if _, _, ok := c.Lookup(relPeerIP); !ok {
		t.Error("the flood pushed the peer out")
	}
	if got := e.s.Stats().ICMP.EchoReplies.Load(); got != 252 {
		t.Errorf("EchoReplies %d, want 252", got)
	}
	relCheckBalance(t, e.s.Stats().Snapshot())
	// The resolutions time out (2 tries 250ms apart) and leave only
	// the peer.
	deadline := time.Now().Add(10 * time.Second)
	for c.Len() > 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if c.Len() != 1 {
		t.Fatalf("%d entries left after the resolutions failed, want the peer's", c.Len())
	}
	if got := e.s.Stats().ARP.PendingDropped.Load(); got != 16 {
		t.Errorf("ARP.PendingDropped %d, want 16", got)
	}
	// The peer, asked again, is answered again.
	e.link.take()
	e.link.inject(relARP(1, relPeerMAC, relPeerIP, ethernet.MAC{}, relOurIP, ethernet.Broadcast))
	e.link.inject(relEther(relOurMAC, relPeerMAC, ethernet.TypeIPv4,
		relIPv4(relIP{ttl: 64, proto: 1, src: relPeerIP, dst: relOurIP, payload: relICMP(8, 0, 7, []byte("again"))})))
	var replies int
	for _, f := range e.link.take() {
		if s := relParseSent(t, f); s.etherType == ethernet.TypeIPv4 && s.proto == 1 && s.l4[0] == 0 && s.dst == relPeerIP {
			replies++
		}
	}
	if replies != 1 {
		t.Errorf("%d echo replies to the peer after the flood, want 1", replies)
	}
}

// TestARPPendingBounded writes 200 datagrams to a neighbour that has not
// answered yet: only MaxPending wait (the newest, as in Linux), and they
// leave in order once it answers.
func TestARPPendingBounded(t *testing.T) {
	e := newRelEnv(t, stack.Options{ARP: arp.Config{MaxPending: 8}})
	ep := e.listen(netip.Addr{}, 0)
	target := relHost(77)
	for i := 0; i < 200; i++ {
		var p [4]byte
		binary.BigEndian.PutUint32(p[:], uint32(i))
		if _, err := ep.Write(p[:], netip.AddrPortFrom(target, 9), nil); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	st := e.nic.ARP().Stats()
	if got := st.PendingDropped.Load(); got != 192 {
		t.Errorf("PendingDropped %d, want 192", got)
	}
	sent := e.link.take()
	if len(sent) != 1 || relParseSent(t, sent[0]).etherType != ethernet.TypeARP {
		t.Fatalf("sent %d frames while resolving, want one ARP request", len(sent))
	}
	e.link.inject(relARP(2, relMAC(77), target, relOurMAC, relOurIP, relOurMAC))
	sent = e.link.take()
	if len(sent) != 8 {
		t.Fatalf("%d frames flushed on resolution, want 8", len(sent))
	}
	for i, f := range sent {
		s := relParseSent(t, f)
		if s.ethDst != relMAC(77) || s.dst != target {
			t.Fatalf("flushed frame to %v/%v", s.ethDst, s.dst)
		}
		if seq := binary.BigEndian.Uint32(s.l4[8:]); seq != uint32(192+i) {
			t.Errorf("flushed datagram %d is #%d, want #%d", i, seq, 192+i)
		}
	}
}

// TestARPFloodRandomDestinations sends to every address of the subnet:
// incomplete entries stay within MaxIncomplete (half of MaxEntries), the
// excess is dropped and counted, and the peer keeps its entry; closing the
// stack stops every resolution.
func TestARPFloodRandomDestinations(t *testing.T) {
	leakcheck.Check(t)
	e := newRelEnv(t, stack.Options{ARP: arp.Config{MaxEntries: 16, RetransInterval: 10 * time.Second}})
	ep := e.listen(netip.Addr{}, 0)
	c := e.nic.ARP()
	for round := 0; round < 4; round++ {
		for i := 3; i <= 254; i++ {
			if _, err := ep.Write([]byte("x"), netip.AddrPortFrom(relHost(i), 9), nil); err != nil {
				t.Fatal(err)
			}
			if c.Len() > 16 {
				t.Fatalf("cache holds %d entries, limit 16", c.Len())
			}
		}
	}
	st := c.Stats()
	// 8 incomplete entries beside the peer's, then everything else is
	// refused; the 8 pending queues keep 4 datagrams each.
	if got := st.Requests.Load(); got != 8 {
		t.Errorf("%d requests sent, want 8", got)
	}
	if got := st.CacheFullDrops.Load(); got != 4*252-4*8 {
		t.Errorf("CacheFullDrops %d, want %d", got, 4*252-4*8)
	}
	if _, _, ok := c.Lookup(relPeerIP); !ok {
		t.Error("the flood pushed the peer out")
	}
	e.s.Close()
	if c.Len() != 0 {
		t.Errorf("%d entries left after Close", c.Len())
	}
}

// TestReassemblyFloodBounded sends thousands of first fragments that never
// complete: reassembly memory stays under its threshold, and a complete
// fragmented datagram still gets through.
func TestReassemblyFloodBounded(t *testing.T) {
	const high = 256 << 10
	e := newRelEnv(t, stack.Options{Reassembly: stack.ReassemblyOptions{HighThresh: high, LowThresh: high * 3 / 4}})
	ep := e.listen(netip.Addr{}, 7)
	r := &e.s.Stats().Reassembly
	chunk := bytes.Repeat([]byte{0x5a}, 1400)
	for i := 0; i < 5000; i++ {
		src := relHost(2 + i%200)
		e.link.inject(relEther(relOurMAC, relPeerMAC, ethernet.TypeIPv4,
			relIPv4(relIP{ttl: 64, proto: 17, id: uint16(i), mf: true, src: src, dst: relOurIP, payload: chunk})))
		if m := r.MemoryUsed.Load(); m > high {
			t.Fatalf("after %d fragments reassembly holds %d bytes, limit %d", i+1, m, high)
		}
	}
	t.Logf("5000 orphan fragments: reassembly holds %d bytes in %d datagrams", r.MemoryUsed.Load(), r.InFlight.Load())
	// A real fragmented datagram after the flood.
	msg := bytes.Repeat([]byte("0123456789abcdef"), 200)
	u := relUDP(relPeerIP, relOurIP, 5000, 7, msg)
	for off := 0; off < len(u); off += 1480 {
		end := min(off+1480, len(u))
		e.link.inject(relEther(relOurMAC, relPeerMAC, ethernet.TypeIPv4,
			relIPv4(relIP{ttl: 64, proto: 17, id: 60000, mf: end < len(u), offset: off, src: relPeerIP, dst: relOurIP, payload: u[off:end]})))
	}
	got := relRead(ep)
	if len(got) != 1 || !bytes.Equal(got[0].data, msg) {
		t.Fatalf("fragmented datagram after the flood: got %d datagrams", len(got))
	}
	relCheckBalance(t, e.s.Stats().Snapshot())
}

// TestICMPRateLimitHolds floods closed ports with the clock stopped: one
// source gets its burst of 6 errors, all sources together the global burst
// of 50, and a second later one more each.
func TestICMPRateLimitHolds(t *testing.T) {
	testICMPRateLimitHolds(t, rateLimitFamily{
		newEnv: newRelEnv,
		counters: func(st *stack.Stats) (sent, limited *atomic.Uint64) {
			return &st.ICMP.ErrorsSent, &st.ICMP.RateLimited
		},
		isError: func(s relSent) bool { return s.etherType == ethernet.TypeIPv4 && s.proto == 1 && s.l4[0] == 3 },
		closed:  relUDPFrame(relPeerIP, relOurIP, 5000, 9, []byte("closed")),
		learn: func(e *relEnv, i int) {
			e.link.inject(relARP(1, relMAC(i), relHost(i), ethernet.MAC{}, relOurIP, ethernet.Broadcast))
		},
		closedFrom: func(i int) []byte {
			return relEther(relOurMAC, relMAC(i), ethernet.TypeIPv4, relIPv4(relIP{ttl: 64, proto: 17, src: relHost(i), dst: relOurIP,
				payload: relUDP(relHost(i), relOurIP, 5000, 9, []byte("closed"))}))
		},
	})
}
