package ipfrag

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/internal/fakeclock"
)

var (
	reasmKeyA = Key{Src: netip.AddrFrom4([4]byte{192, 0, 2, 1}), Dst: netip.AddrFrom4([4]byte{192, 0, 2, 2}), Protocol: 17, ID: 0x1234}
	reasmKeyB = Key{Src: netip.AddrFrom4([4]byte{198, 51, 100, 7}), Dst: netip.AddrFrom4([4]byte{192, 0, 2, 2}), Protocol: 17, ID: 0x1234}
)

// reasmPayload returns n bytes that differ between positions and seeds, so
// that a misplaced part shows up in a comparison.
func reasmPayload(n int, seed byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i) ^ byte(i>>8)*31 ^ seed
	}
	return p
}

// reasmPutHeader writes a plausible IPv4 header; the reassembler reads only
// the Fragment fields, but OnTimeout hands the header back.
func reasmPutHeader(h []byte, key Key, off int, more bool, total int) {
	hl := len(h)
	h[0] = 0x40 | byte(hl/4)
	h[1] = 0
	binary.BigEndian.PutUint16(h[2:], uint16(total))
	binary.BigEndian.PutUint16(h[4:], uint16(key.ID))
	fo := uint16(off / 8)
	if more {
		fo |= 0x2000
	}
	binary.BigEndian.PutUint16(h[6:], fo)
	h[8] = 64
	h[9] = key.Protocol
	h[10], h[11] = 0, 0
	src, dst := key.Src.As4(), key.Dst.As4()
	copy(h[12:16], src[:])
	copy(h[16:20], dst[:])
	for i := 20; i < hl; i++ {
		h[i] = 1 // NOP options
	}
}

// reasmFrag builds a fragment carrying payload (the datagram's bytes from
// off) behind an hl-byte header.
func reasmFrag(key Key, hl, off int, more bool, payload []byte) Fragment {
	b := buffer.Get(hl + len(payload))
	b.SetLen(hl + len(payload))
	p := b.Bytes()
	reasmPutHeader(p[:hl], key, off, more, hl+len(payload))
	copy(p[hl:], payload)
	return Fragment{Key: key, Offset: off, More: more, HeaderLen: hl, Buf: b}
}

// reasmHarness wraps a Reassembler and tracks buffer ownership: every buffer
// fed must come back exactly once, released by the reassembler or returned
// in a chain.
type reasmHarness struct {
	tb  testing.TB
	r   *Reassembler
	mu  sync.Mutex
	out map[*buffer.Buffer]int
	n   int
}

func newReasmHarness(tb testing.TB, cfg Config) *reasmHarness {
	h := &reasmHarness{tb: tb, out: make(map[*buffer.Buffer]int)}
	h.r = NewReassembler(cfg, nil)
	h.r.releaseHook = h.released
	return h
}

func (h *reasmHarness) released(b *buffer.Buffer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.out[b]--
	switch c := h.out[b]; {
	case c < 0:
		h.tb.Errorf("buffer %p released twice", b)
	case c == 0:
		delete(h.out, b)
	}
	h.n--
}

func (h *reasmHarness) add(f Fragment) (*buffer.Buffer, bool) {
	h.mu.Lock()
	h.out[f.Buf]++
	h.n++
	h.mu.Unlock()
	head, ok := h.r.Add(f)
	if ok {
		for p := head; p != nil; p = p.Next {
			h.released(p)
		}
	} else if head != nil {
		h.tb.Errorf("Add returned a head with ok false")
	}
	return head, ok
}

// finish closes the reassembler and checks that it let go of everything.
func (h *reasmHarness) finish() {
	h.tb.Helper()
	h.r.Close()
	if m := h.r.MemoryUsed(); m != 0 {
		h.tb.Errorf("MemoryUsed after Close = %d, want 0", m)
	}
	if n := h.r.InFlight(); n != 0 {
		h.tb.Errorf("InFlight after Close = %d, want 0", n)
	}
	if st := h.r.Stats(); st.InFlight.Load() != 0 || st.MemoryUsed.Load() != 0 {
		h.tb.Errorf("gauges after Close: InFlight %d, MemoryUsed %d; want 0, 0", st.InFlight.Load(), st.MemoryUsed.Load())
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n != 0 {
		h.tb.Errorf("%d buffers still owned by the reassembler after Close", h.n)
	}
}

// reasmCollect copies a returned chain out and releases it.
func reasmCollect(head *buffer.Buffer) []byte {
	out := make([]byte, head.ChainLen())
	head.CopyChain(out)
	head.ReleaseChain()
	return out
}

func reasmPermutations(n int) [][]int {
	var out [][]int
	var rec func(prefix []int, rest []int)
	rec = func(prefix, rest []int) {
		if len(rest) == 0 {
			out = append(out, append([]int(nil), prefix...))
			return
		}
		for i := range rest {
			next := append(append([]int(nil), rest[:i]...), rest[i+1:]...)
			rec(append(prefix, rest[i]), next)
		}
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	rec(nil, idx)
	return out
}

func TestReassembleAllOrders(t *testing.T) {
	h := newReasmHarness(t, Config{})
	sizes := []int{1480, 1480, 1480, 517}
	want := reasmPayload(1480*3+517, 7)
	perms := reasmPermutations(4)
	if len(perms) != 24 {
		t.Fatalf("got %d permutations", len(perms))
	}
	for pi, perm := range perms {
		key := reasmKeyA
		key.ID = uint32(pi)
		frags := make([]Fragment, 4)
		off := 0
		for i, n := range sizes {
			frags[i] = reasmFrag(key, 20, off, i < 3, want[off:off+n])
			off += n
		}
		firstHdr := append([]byte(nil), frags[0].Buf.Bytes()[:20]...)
		for k, i := range perm {
			head, ok := h.add(frags[i])
			if k < 3 {
				if ok {
					t.Fatalf("order %v: complete after %d fragments", perm, k+1)
				}
				continue
			}
			if !ok {
				t.Fatalf("order %v: not complete after all fragments", perm)
			}
			// The chain is the fragments' own buffers, in order, each
			// holding exactly its payload.
			p := head
			for i := range frags {
				if p != frags[i].Buf {
					t.Fatalf("order %v: part %d is not fragment %d's buffer", perm, i, i)
				}
				if p.Len() != sizes[i] {
					t.Fatalf("order %v: part %d has %d bytes, want %d", perm, i, p.Len(), sizes[i])
				}
				p = p.Next
			}
			if p != nil {
				t.Fatalf("order %v: chain longer than 4 parts", perm)
			}
			// The first fragment's header is still in front of the head.
			if hdr := head.Prepend(20); !bytes.Equal(hdr, firstHdr) {
				t.Fatalf("order %v: header in front of head = %x, want %x", perm, hdr, firstHdr)
			}
			head.TrimFront(20)
			if got := reasmCollect(head); !bytes.Equal(got, want) {
				t.Fatalf("order %v: reassembled bytes differ", perm)
			}
		}
	}
	st := h.r.Stats()
	if st.Reassembled.Load() != 24 || st.Fragments.Load() != 96 {
		t.Errorf("stats = %+v, want 24 reassembled of 96 fragments", st)
	}
	if h.r.MemoryUsed() != 0 || h.r.InFlight() != 0 {
		t.Errorf("MemoryUsed = %d, InFlight = %d after completing everything", h.r.MemoryUsed(), h.r.InFlight())
	}
	h.finish()
}

func TestReassembleNotAFragment(t *testing.T) {
	h := newReasmHarness(t, Config{})
	payload := reasmPayload(100, 1)
	f := reasmFrag(reasmKeyA, 24, 0, false, payload)
	head, ok := h.add(f)
	if !ok || head != f.Buf || head.Next != nil {
		t.Fatalf("Add(non-fragment) = %p, %v; want its own buffer alone", head, ok)
	}
	if got := reasmCollect(head); !bytes.Equal(got, payload) {
		t.Fatalf("payload = %x, want %x", got, payload)
	}
	if st := h.r.Stats(); st.Fragments.Load() != 0 {
		t.Errorf("a non-fragment was counted: %+v", st)
	}
	h.finish()
}

// reasmStep is one fragment of a scripted datagram: the bytes [off, off+n)
// of the datagram.
type reasmStep struct {
	off, n int
	more   bool
}

func TestReassembleDuplicates(t *testing.T) {
	h := newReasmHarness(t, Config{})
	want := reasmPayload(40, 3)
	steps := []reasmStep{
		{0, 16, true},
		{0, 16, true}, // exact duplicate
		{16, 8, true},
		{8, 16, true}, // held by two parts, identically
		{24, 16, false},
	}
	var head *buffer.Buffer
	for i, s := range steps {
		var ok bool
		head, ok = h.add(reasmFrag(reasmKeyA, 20, s.off, s.more, want[s.off:s.off+s.n]))
		if ok != (i == len(steps)-1) {
			t.Fatalf("step %d: ok = %v", i, ok)
		}
	}
	if got := reasmCollect(head); !bytes.Equal(got, want) {
		t.Fatalf("bytes = %x, want %x", got, want)
	}
	// A duplicate after completion starts a new datagram (the old one is gone).
	h.add(reasmFrag(reasmKeyA, 20, 24, false, want[24:]))
	if n := h.r.InFlight(); n != 1 {
		t.Errorf("InFlight = %d, want 1", n)
	}
	if st := h.r.Stats(); st.Duplicates.Load() != 2 || st.Reassembled.Load() != 1 || st.Overlaps.Load() != 0 {
		t.Errorf("stats = %+v, want 2 duplicates", st)
	}
	h.finish()
}

func TestReassembleOverlapSameData(t *testing.T) {
	cases := []struct {
		name  string
		total int
		steps []reasmStep
		parts []int // lengths of the chain's parts
	}{
		{"left straddle", 40, []reasmStep{{0, 16, true}, {8, 16, true}, {24, 16, false}}, []int{16, 8, 16}},
		{"right straddle", 40, []reasmStep{{16, 16, true}, {8, 16, true}, {0, 8, true}, {32, 8, false}}, []int{8, 8, 16, 8}},
		{"both sides", 48, []reasmStep{{0, 16, true}, {32, 16, false}, {8, 32, true}}, []int{16, 16, 16}},
		{"covers inner parts", 48, []reasmStep{{8, 8, true}, {24, 8, true}, {0, 40, true}, {40, 8, false}}, []int{40, 8}},
		{"covers inner parts and straddles", 56, []reasmStep{{0, 16, true}, {24, 8, true}, {40, 16, false}, {8, 40, true}}, []int{16, 24, 16}},
		{"last fragment overlaps", 30, []reasmStep{{0, 24, true}, {16, 14, false}}, []int{24, 6}},
		{"first replaces head", 32, []reasmStep{{0, 8, true}, {0, 24, true}, {24, 8, false}}, []int{24, 8}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newReasmHarness(t, Config{})
			want := reasmPayload(c.total, 9)
			var head *buffer.Buffer
			for i, s := range c.steps {
				var ok bool
				head, ok = h.add(reasmFrag(reasmKeyA, 20, s.off, s.more, want[s.off:s.off+s.n]))
				if ok != (i == len(c.steps)-1) {
					t.Fatalf("step %d: ok = %v", i, ok)
				}
			}
			var parts []int
			for p := head; p != nil; p = p.Next {
				parts = append(parts, p.Len())
			}
			if !slicesEqualInt(parts, c.parts) {
				t.Errorf("parts = %v, want %v", parts, c.parts)
			}
			if got := reasmCollect(head); !bytes.Equal(got, want) {
				t.Fatalf("bytes = %x, want %x", got, want)
			}
			if st := h.r.Stats(); st.Overlaps.Load() != 0 || st.Duplicates.Load() != 0 {
				t.Errorf("stats = %+v", st)
			}
			h.finish()
		})
	}
}

func slicesEqualInt(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReassembleTeardrop(t *testing.T) {
	clk := fakeclock.New()
	h := newReasmHarness(t, Config{Now: clk.Now})
	want := reasmPayload(40, 5)
	evil := append([]byte(nil), want...)
	evil[12] ^= 0xff

	h.add(reasmFrag(reasmKeyA, 20, 0, true, want[0:16]))
	h.add(reasmFrag(reasmKeyB, 20, 0, true, want[0:16])) // bystander
	if _, ok := h.add(reasmFrag(reasmKeyA, 20, 8, true, evil[8:24])); ok {
		t.Fatal("overlapping different data completed")
	}
	st := h.r.Stats()
	if st.Overlaps.Load() != 1 {
		t.Fatalf("Overlaps = %d, want 1", st.Overlaps.Load())
	}
	if n := h.r.InFlight(); n != 1 {
		t.Errorf("InFlight = %d, want 1 (the bystander)", n)
	}
	// The tombstone holds no buffers: only the bystander's buffer remains.
	if m, bystander := h.r.MemoryUsed(), 2*fragOverhead+buffer.Get(36).Truesize(); m != bystander {
		t.Errorf("MemoryUsed = %d, want %d", m, bystander)
	}
	// The rest of the train is dropped, even the pieces that would complete it.
	for _, s := range []reasmStep{{16, 16, true}, {32, 8, false}, {0, 40, true}} {
		if _, ok := h.add(reasmFrag(reasmKeyA, 20, s.off, s.more, want[s.off:s.off+s.n])); ok {
			t.Fatal("a tombstoned datagram completed")
		}
	}
	if st := h.r.Stats(); st.Tombstoned.Load() != 3 {
		t.Errorf("Tombstoned = %d, want 3", st.Tombstoned.Load())
	}
	// The bystander is unaffected.
	head, ok := h.add(reasmFrag(reasmKeyB, 20, 16, false, want[16:]))
	if !ok || !bytes.Equal(reasmCollect(head), want) {
		t.Fatal("bystander datagram did not reassemble")
	}
	// Once the tombstone expires the key is usable again, without a timeout
	// being reported for it.
	clk.Advance(30 * time.Second)
	h.r.Expire()
	if st := h.r.Stats(); st.Timeouts.Load() != 0 {
		t.Errorf("tombstone expiry counted as timeout: %+v", st)
	}
	h.add(reasmFrag(reasmKeyA, 20, 0, true, want[0:16]))
	head, ok = h.add(reasmFrag(reasmKeyA, 20, 16, false, want[16:]))
	if !ok || !bytes.Equal(reasmCollect(head), want) {
		t.Fatal("key not reusable after its tombstone expired")
	}
	h.finish()
}

func TestReassembleLengthConflicts(t *testing.T) {
	want := reasmPayload(64, 2)
	cases := []struct {
		name  string
		steps []reasmStep
	}{
		{"two last fragments", []reasmStep{{0, 8, true}, {32, 8, false}, {32, 16, false}}},
		{"data beyond the end", []reasmStep{{0, 8, true}, {16, 8, false}, {24, 8, true}}},
		{"end before held data", []reasmStep{{0, 8, true}, {32, 8, true}, {8, 8, false}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newReasmHarness(t, Config{})
			for _, s := range c.steps {
				if _, ok := h.add(reasmFrag(reasmKeyA, 20, s.off, s.more, want[s.off:s.off+s.n])); ok {
					t.Fatal("completed")
				}
			}
			if st := h.r.Stats(); st.LengthConflicts.Load() != 1 {
				t.Errorf("LengthConflicts = %d, want 1", st.LengthConflicts.Load())
			}
			if n, m := h.r.InFlight(), h.r.MemoryUsed(); n != 0 || m != fragOverhead {
				t.Errorf("InFlight = %d, MemoryUsed = %d; want a bare tombstone", n, m)
			}
			h.finish()
		})
	}
	// A non-last fragment ending exactly at the end is consistent.
	h := newReasmHarness(t, Config{})
	h.add(reasmFrag(reasmKeyA, 20, 8, false, want[8:24]))
	h.add(reasmFrag(reasmKeyA, 20, 16, true, want[16:24]))
	head, ok := h.add(reasmFrag(reasmKeyA, 20, 0, true, want[0:8]))
	if !ok || !bytes.Equal(reasmCollect(head), want[:24]) {
		t.Fatal("datagram with a redundant MF fragment at its end did not reassemble")
	}
	h.finish()
}

func TestReassembleOversize(t *testing.T) {
	h := newReasmHarness(t, Config{})
	// 20 + 65512 + 3 = 65535 is the largest datagram.
	if _, ok := h.add(reasmFrag(reasmKeyA, 20, 65512, false, make([]byte, 3))); ok || h.r.InFlight() != 1 {
		t.Fatal("fragment ending at the limit not held")
	}
	h.add(reasmFrag(reasmKeyB, 20, 65512, false, make([]byte, 4)))
	h.add(reasmFrag(reasmKeyB, 24, 65504, true, make([]byte, 8))) // 24+65504+8 = 65536
	if st := h.r.Stats(); st.Oversize.Load() != 2 || h.r.InFlight() != 1 {
		t.Fatalf("Oversize = %d, InFlight = %d; want 2, 1", st.Oversize.Load(), h.r.InFlight())
	}

	// Each fragment fits with its own header, but the reassembled datagram
	// carries the first fragment's 60-byte header: 60 + 65515 > 65535.
	key := reasmKeyA
	key.ID++
	h.add(reasmFrag(key, 60, 0, true, make([]byte, 8)))
	h.add(reasmFrag(key, 20, 8, true, make([]byte, 65504)))
	if _, ok := h.add(reasmFrag(key, 20, 65512, false, make([]byte, 3))); ok {
		t.Fatal("oversize datagram reassembled")
	}
	if st := h.r.Stats(); st.Oversize.Load() != 3 || st.Reassembled.Load() != 0 {
		t.Fatalf("stats = %+v, want 3 oversize", st)
	}
	h.finish()
}

func TestReassembleBadFragments(t *testing.T) {
	h := newReasmHarness(t, Config{})
	bad := []Fragment{
		reasmFrag(reasmKeyA, 20, 8, true, nil),               // empty, MF
		reasmFrag(reasmKeyA, 20, 8, false, nil),              // empty, last
		reasmFrag(reasmKeyA, 20, 0, true, make([]byte, 13)),  // MF, not a multiple of 8
		reasmFrag(reasmKeyA, 20, 12, false, make([]byte, 8)), // offset not a multiple of 8
		reasmFrag(reasmKeyA, 20, -8, false, make([]byte, 8)),
	}
	short := reasmFrag(reasmKeyA, 20, 8, true, make([]byte, 8))
	short.HeaderLen = 40 // beyond the packet
	bad = append(bad, short)
	small := reasmFrag(reasmKeyA, 20, 8, true, make([]byte, 8))
	small.HeaderLen = 16
	bad = append(bad, small)
	for i, f := range bad {
		if _, ok := h.add(f); ok {
			t.Fatalf("bad fragment %d accepted", i)
		}
	}
	st := h.r.Stats()
	if st.BadFragment.Load() != uint64(len(bad)) {
		t.Errorf("BadFragment = %d, want %d", st.BadFragment.Load(), len(bad))
	}
	if h.r.InFlight() != 0 || h.r.MemoryUsed() != 0 {
		t.Errorf("a bad fragment created state: InFlight %d, MemoryUsed %d", h.r.InFlight(), h.r.MemoryUsed())
	}
	h.finish()
}

func TestReassembleTimeout(t *testing.T) {
	clk := fakeclock.New()
	type call struct {
		key   Key
		first []byte
	}
	var calls []call
	var h *reasmHarness
	h = newReasmHarness(t, Config{
		Now: clk.Now,
		OnTimeout: func(key Key, first []byte) {
			h.r.MemoryUsed() // deadlocks if called with the lock held
			calls = append(calls, call{key, append([]byte(nil), first...)})
		},
	})
	payload := reasmPayload(64, 4)
	fx := reasmFrag(reasmKeyA, 24, 0, true, payload[:32]) // options, to check the header length
	wantFirst := append([]byte(nil), fx.Buf.Bytes()[:24+8]...)
	h.add(fx)
	h.add(reasmFrag(reasmKeyB, 20, 32, true, payload[32:48])) // no first fragment
	clk.Advance(29 * time.Second)
	h.r.Expire()
	if len(calls) != 0 || h.r.InFlight() != 2 {
		t.Fatalf("expired early: %d calls, InFlight %d", len(calls), h.r.InFlight())
	}
	clk.Advance(time.Second)
	h.r.Expire()
	if len(calls) != 1 || calls[0].key != reasmKeyA || !bytes.Equal(calls[0].first, wantFirst) {
		t.Fatalf("OnTimeout calls = %+v, want one for A with %x", calls, wantFirst)
	}
	if st := h.r.Stats(); st.Timeouts.Load() != 2 {
		t.Errorf("Timeouts = %d, want 2", st.Timeouts.Load())
	}
	if h.r.InFlight() != 0 || h.r.MemoryUsed() != 0 {
		t.Errorf("after expiry InFlight %d, MemoryUsed %d", h.r.InFlight(), h.r.MemoryUsed())
	}

	// Add expires lazily too, and the late fragment starts afresh.
	calls = nil
	h.add(reasmFrag(reasmKeyA, 20, 0, true, payload[:32]))
	clk.Advance(31 * time.Second)
	if _, ok := h.add(reasmFrag(reasmKeyA, 20, 32, false, payload[32:])); ok {
		t.Fatal("completed with a fragment from an expired datagram")
	}
	if len(calls) != 1 || h.r.InFlight() != 1 {
		t.Fatalf("lazy expiry: %d calls, InFlight %d", len(calls), h.r.InFlight())
	}
	h.finish()
}

func TestReassembleMemoryCap(t *testing.T) {
	const high, low = 256 << 10, 192 << 10
	h := newReasmHarness(t, Config{HighThresh: high, LowThresh: low})
	payload := reasmPayload(3*1480+100, 6)
	keyOf := func(i int) Key {
		return Key{
			Src:      netip.AddrFrom4([4]byte{198, 51, 100, byte(i % 250)}),
			Dst:      netip.AddrFrom4([4]byte{192, 0, 2, 1}),
			Protocol: 17,
			ID:       uint32(i),
		}
	}
	const trains = 2000
	for i := range trains {
		// Three of four fragments: never complete on their own.
		for _, off := range []int{1480, 0, 2960} {
			h.add(reasmFrag(keyOf(i), 20, off, true, payload[off:off+1480]))
			if m := h.r.MemoryUsed(); m > high || m < 0 {
				t.Fatalf("train %d: MemoryUsed = %d, outside [0, %d]", i, m, high)
			}
		}
	}
	st := h.r.Stats()
	if st.MemoryEvictions.Load() == 0 || st.Reassembled.Load() != 0 {
		t.Fatalf("stats = %+v, want evictions", st)
	}
	perTrain := 3*buffer.Get(1500).Truesize() + fragOverhead
	if n := h.r.InFlight(); n == 0 || n*perTrain > high || n+int(st.MemoryEvictions.Load()) != trains {
		t.Fatalf("InFlight = %d, evictions %d, want them to add up to %d within the cap", n, st.MemoryEvictions.Load(), trains)
	}
	// Oldest first: the newest train is intact, the oldest is gone.
	head, ok := h.add(reasmFrag(keyOf(trains-1), 20, 4440, false, payload[4440:]))
	if !ok || !bytes.Equal(reasmCollect(head), payload) {
		t.Fatal("newest train did not complete")
	}
	if _, ok := h.add(reasmFrag(keyOf(0), 20, 4440, false, payload[4440:])); ok {
		t.Fatal("oldest train survived eviction")
	}
	h.finish()
}

func TestReassembleMemoryTooSmall(t *testing.T) {
	// Room for two fragments only: a datagram needing more is dropped
	// rather than evicting itself piecemeal.
	tsz := buffer.Get(1500).Truesize()
	h := newReasmHarness(t, Config{HighThresh: 2*tsz + fragOverhead})
	payload := reasmPayload(3*1480, 1)
	for _, off := range []int{0, 1480, 2960} {
		h.add(reasmFrag(reasmKeyA, 20, off, off < 2960, payload[off:off+1480]))
	}
	if st := h.r.Stats(); st.MemoryEvictions.Load() != 1 || h.r.InFlight() != 0 || h.r.MemoryUsed() != 0 {
		t.Fatalf("stats %+v, InFlight %d, MemoryUsed %d", st, h.r.InFlight(), h.r.MemoryUsed())
	}
	h.finish()
}

func TestReassemblePerSourceCap(t *testing.T) {
	h := newReasmHarness(t, Config{MaxPerSource: 4})
	payload := reasmPayload(16, 8)
	keyA := func(id uint32) Key { k := reasmKeyA; k.ID = id; return k }
	keyB := func(id uint32) Key { k := reasmKeyB; k.ID = id; return k }
	for id := uint32(1); id <= 5; id++ {
		h.add(reasmFrag(keyA(id), 20, 0, true, payload[:8]))
	}
	for id := uint32(1); id <= 2; id++ {
		h.add(reasmFrag(keyB(id), 20, 0, true, payload[:8]))
	}
	if st := h.r.Stats(); st.SourceLimit.Load() != 1 || h.r.InFlight() != 6 {
		t.Fatalf("SourceLimit = %d, InFlight = %d; want 1, 6", st.SourceLimit.Load(), h.r.InFlight())
	}
	// A's newer datagrams and B's survive; A's oldest was evicted.
	for _, k := range []Key{keyA(2), keyA(3), keyA(4), keyA(5), keyB(1), keyB(2)} {
		head, ok := h.add(reasmFrag(k, 20, 8, false, payload[8:]))
		if !ok || !bytes.Equal(reasmCollect(head), payload) {
			t.Fatalf("%v did not complete", k)
		}
	}
	if _, ok := h.add(reasmFrag(keyA(1), 20, 8, false, payload[8:])); ok {
		t.Fatal("evicted datagram completed")
	}
	h.finish()
}

// TestReassembleGauges checks that the InFlight and MemoryUsed gauges in
// Stats follow what the reassembler holds, through adds, tombstones,
// completion and expiry.
func TestReassembleGauges(t *testing.T) {
	clk := fakeclock.New()
	h := newReasmHarness(t, Config{Now: clk.Now, Timeout: time.Second})
	st := h.r.Stats()
	check := func(what string, inFlight int) {
		t.Helper()
		if got := st.InFlight.Load(); got != uint64(inFlight) || got != uint64(h.r.InFlight()) {
			t.Errorf("%s: InFlight gauge %d, method %d, want %d", what, got, h.r.InFlight(), inFlight)
		}
		if got := st.MemoryUsed.Load(); got != uint64(h.r.MemoryUsed()) {
			t.Errorf("%s: MemoryUsed gauge %d, method %d", what, got, h.r.MemoryUsed())
		}
	}
	payload := reasmPayload(24, 9)
	h.add(reasmFrag(reasmKeyA, 20, 0, true, payload[:8]))
	h.add(reasmFrag(reasmKeyB, 20, 8, true, payload[8:16]))
	check("two started", 2)
	if st.MemoryUsed.Load() == 0 {
		t.Error("MemoryUsed 0 while two datagrams are held")
	}
	h.add(reasmFrag(reasmKeyB, 20, 8, true, reasmPayload(8, 200))) // conflicting bytes: a tombstone
	check("one tombstoned", 1)
	head, ok := h.add(reasmFrag(reasmKeyA, 20, 8, false, payload[8:24]))
	if !ok {
		t.Fatal("not reassembled")
	}
	head.ReleaseChain()
	check("completed", 0)
	if st.MemoryUsed.Load() == 0 {
		t.Error("MemoryUsed 0 while a tombstone is held")
	}
	clk.Advance(2 * time.Second)
	h.r.Expire()
	if st.MemoryUsed.Load() != 0 {
		t.Errorf("MemoryUsed %d after expiry", st.MemoryUsed.Load())
	}
	h.finish()
}

func TestReassembleMaxDatagrams(t *testing.T) {
	h := newReasmHarness(t, Config{MaxDatagrams: 3})
	payload := reasmPayload(16, 8)
	for id := uint32(1); id <= 4; id++ {
		k := reasmKeyA
		k.Src = netip.AddrFrom4([4]byte{192, 0, 2, byte(id)}) // distinct sources: not the per-source cap
		k.ID = id
		h.add(reasmFrag(k, 20, 0, true, payload[:8]))
	}
	if st := h.r.Stats(); st.DatagramLimit.Load() != 1 || h.r.InFlight() != 3 {
		t.Fatalf("DatagramLimit = %d, InFlight = %d; want 1, 3", st.DatagramLimit.Load(), h.r.InFlight())
	}
	h.finish()
}

func TestReassembleClose(t *testing.T) {
	h := newReasmHarness(t, Config{})
	payload := reasmPayload(64, 3)
	for id := range uint32(10) {
		k := reasmKeyA
		k.ID = id
		h.add(reasmFrag(k, 20, 0, true, payload[:16]))
		h.add(reasmFrag(k, 20, 32, true, payload[32:48]))
	}
	bad := append([]byte(nil), payload...)
	bad[20] ^= 1
	h.add(reasmFrag(reasmKeyB, 20, 8, true, payload[8:24]))
	h.add(reasmFrag(reasmKeyB, 20, 16, true, bad[16:32])) // tombstone
	if h.r.MemoryUsed() == 0 || h.r.InFlight() != 10 {
		t.Fatalf("MemoryUsed %d, InFlight %d before Close", h.r.MemoryUsed(), h.r.InFlight())
	}
	h.finish()
	// Fragments after Close are released at once.
	if _, ok := h.add(reasmFrag(reasmKeyA, 20, 48, false, payload[48:])); ok {
		t.Fatal("Add after Close completed")
	}
	h.finish()
}

func TestReassembleConcurrent(t *testing.T) {
	h := newReasmHarness(t, Config{})
	payload := reasmPayload(4*1480, 11)
	const workers, per = 4, 200
	var wg sync.WaitGroup
	var done sync.WaitGroup
	stop := make(chan struct{})
	done.Add(1)
	go func() {
		defer done.Done()
		for {
			select {
			case <-stop:
				return
			default:
				h.r.Expire()
				h.r.Stats()
				h.r.MemoryUsed()
				runtime.Gosched() // js/wasm has no preemption
			}
		}
	}()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				k := reasmKeyA
				k.Src = netip.AddrFrom4([4]byte{192, 0, 2, byte(w)})
				k.ID = uint32(i)
				var head *buffer.Buffer
				var ok bool
				for _, off := range []int{4440, 0, 2960, 1480} {
					head, ok = h.add(reasmFrag(k, 20, off, off < 4440, payload[off:off+1480]))
				}
				if !ok || !bytes.Equal(reasmCollect(head), payload) {
					t.Errorf("worker %d datagram %d did not reassemble", w, i)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	done.Wait()
	if st := h.r.Stats(); st.Reassembled.Load() != workers*per {
		t.Errorf("Reassembled = %d, want %d", st.Reassembled.Load(), workers*per)
	}
	h.finish()
}

// BenchmarkReassemble65507 reassembles a maximal UDP datagram (65507 bytes of
// data, 65515 of IP payload) from 45 fragments of a 1500-byte MTU, building
// the fragments from pooled buffers as a link reader would.
func BenchmarkReassemble65507(b *testing.B) {
	const total = 65507 + 8
	payload := reasmPayload(total, 1)
	var offs []int
	for off := 0; off < total; off += 1480 {
		offs = append(offs, off)
	}
	if len(offs) != 45 {
		b.Fatalf("%d fragments", len(offs))
	}
	rev := make([]int, len(offs))
	for i := range offs {
		rev[i] = offs[len(offs)-1-i]
	}
	for _, bc := range []struct {
		name string
		offs []int
	}{{"InOrder", offs}, {"Reverse", rev}} {
		b.Run(bc.name, func(b *testing.B) {
			r := NewReassembler(Config{}, nil)
			defer r.Close()
			b.SetBytes(total)
			b.ReportAllocs()
			key := reasmKeyA
			for i := 0; b.Loop(); i++ {
				key.ID = uint32(uint16(i))
				var head *buffer.Buffer
				var ok bool
				for _, off := range bc.offs {
					end := min(off+1480, total)
					buf := buffer.Get(20 + end - off)
					buf.SetLen(20 + end - off)
					p := buf.Bytes()
					reasmPutHeader(p[:20], key, off, end < total, len(p))
					copy(p[20:], payload[off:end])
					head, ok = r.Add(Fragment{Key: key, Offset: off, More: end < total, HeaderLen: 20, Buf: buf})
				}
				if !ok || head.ChainLen() != total {
					b.Fatal("not reassembled")
				}
				head.ReleaseChain()
			}
		})
	}
}
