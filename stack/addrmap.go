package stack

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"runtime"
	"sync/atomic"
)

// addrMap maps addresses to small values for readers that take no lock,
// such as the receive path. Each bucket is an immutable slice that a write
// replaces, so a write copies one bucket (a couple of entries) rather than
// the whole map, and growing rehashes everything only when the size
// doubles: amortized O(1) per write, O(1) per read. Writes must be
// serialised by the caller (the stack's mutex).
type addrMap[V any] struct {
	dir atomic.Pointer[addrMapDir[V]]
	len int // writers only
}

type addrMapDir[V any] struct {
	shift   uint // 64 - log2(len(buckets)): the hash's top bits pick the bucket
	buckets []atomic.Pointer[addrBucket[V]]
}

type addrBucket[V any] struct{ entries []addrMapEntry[V] }

type addrMapEntry[V any] struct {
	key netip.Addr
	val V
}

const (
	addrMapMinBits = 3 // 8 buckets to start with
	addrMapLoad    = 2 // entries per bucket, on average, before doubling
)

// addrHash mixes every bit of an address into the top bits (Fibonacci
// hashing), so that runs of consecutive addresses spread over buckets.
func addrHash(a netip.Addr) uint64 {
	if a.Is4() {
		b := a.As4()
		return uint64(binary.BigEndian.Uint32(b[:])) * 0x9e3779b97f4a7c15
	}
	hi, lo := addrWords(a)
	return (lo ^ bits.RotateLeft64(hi, 29)) * 0x9e3779b97f4a7c15
}

// addrWords returns the 16-byte form of a as two big-endian words.
func addrWords(a netip.Addr) (hi, lo uint64) {
	if runtime.GOARCH == "wasm" {
		// The wasm compiler does not inline AsSlice, whose array then
		// escapes: one allocation per call.
		b := a.As16()
		return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	}
	// AsSlice, not As16: the compiler copies As16's array with one 16-byte
	// load of two 8-byte stores, which the CPU cannot forward (a stall that
	// made addrHash 7 ns instead of under 2).
	b := a.AsSlice()
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
}

func newAddrMapDir[V any](log2 uint) *addrMapDir[V] {
	return &addrMapDir[V]{shift: 64 - log2, buckets: make([]atomic.Pointer[addrBucket[V]], 1<<log2)}
}

func (d *addrMapDir[V]) bucket(a netip.Addr) *atomic.Pointer[addrBucket[V]] {
	return &d.buckets[addrHash(a)>>d.shift]
}

// get returns the value stored for a.
func (m *addrMap[V]) get(a netip.Addr) (v V, ok bool) { return m.getHashed(a, addrHash(a)) }

// getHashed is get with a's addrHash worked out by the caller, so that one
// address looked up in several maps (one per NIC) is hashed once.
func (m *addrMap[V]) getHashed(a netip.Addr, h uint64) (v V, ok bool) {
	d := m.dir.Load()
	if d == nil {
		return v, false
	}
	b := d.buckets[h>>d.shift].Load()
	if b == nil {
		return v, false
	}
	for i := range b.entries {
		if b.entries[i].key == a {
			return b.entries[i].val, true
		}
	}
	return v, false
}

// set stores v for a, replacing any value it had.
func (m *addrMap[V]) set(a netip.Addr, v V) {
	d := m.dir.Load()
	if d == nil {
		d = newAddrMapDir[V](addrMapMinBits)
		m.dir.Store(d)
	}
	slot := d.bucket(a)
	var old []addrMapEntry[V]
	if b := slot.Load(); b != nil {
		old = b.entries
	}
	entries := make([]addrMapEntry[V], len(old), len(old)+1)
	copy(entries, old)
	for i := range entries {
		if entries[i].key == a {
			entries[i].val = v
			slot.Store(&addrBucket[V]{entries})
			return
		}
	}
	slot.Store(&addrBucket[V]{append(entries, addrMapEntry[V]{a, v})})
	m.len++
	if m.len > addrMapLoad*len(d.buckets) {
		m.grow(d)
	}
}

// delete removes a and reports whether it was there.
func (m *addrMap[V]) delete(a netip.Addr) bool {
	d := m.dir.Load()
	if d == nil {
		return false
	}
	slot := d.bucket(a)
	b := slot.Load()
	if b == nil {
		return false
	}
	for i := range b.entries {
		if b.entries[i].key != a {
			continue
		}
		if len(b.entries) == 1 {
			slot.Store(nil)
		} else {
			entries := make([]addrMapEntry[V], 0, len(b.entries)-1)
			entries = append(entries, b.entries[:i]...)
			slot.Store(&addrBucket[V]{append(entries, b.entries[i+1:]...)})
		}
		m.len--
		return true
	}
	return false
}

// grow publishes a directory with twice the buckets. Readers still holding
// the old one see a consistent, slightly older map. The new buckets share
// one array of entries and one of bucket headers (buckets are never written
// in place), so growing costs three allocations.
func (m *addrMap[V]) grow(old *addrMapDir[V]) {
	d := newAddrMapDir[V](64 - old.shift + 1)
	counts := make([]int32, len(d.buckets))
	old.eachEntry(func(e *addrMapEntry[V]) { counts[addrHash(e.key)>>d.shift]++ })
	all := make([]addrMapEntry[V], 0, m.len)
	starts := make([]int32, len(d.buckets))
	used := 0
	for i, c := range counts {
		starts[i] = int32(len(all))
		all = all[:len(all)+int(c)]
		if c > 0 {
			used++
		}
	}
	fill := counts // reused as the next free index of each bucket
	copy(fill, starts)
	old.eachEntry(func(e *addrMapEntry[V]) {
		i := addrHash(e.key) >> d.shift
		all[fill[i]] = *e
		fill[i]++
	})
	headers := make([]addrBucket[V], 0, used)
	for i, start := range starts {
		if end := fill[i]; end > start {
			headers = append(headers, addrBucket[V]{all[start:end:end]})
			d.buckets[i].Store(&headers[len(headers)-1])
		}
	}
	m.dir.Store(d)
}

func (d *addrMapDir[V]) eachEntry(f func(*addrMapEntry[V])) {
	for i := range d.buckets {
		if b := d.buckets[i].Load(); b != nil {
			for j := range b.entries {
				f(&b.entries[j])
			}
		}
	}
}

// each calls f for every entry, in no particular order.
func (m *addrMap[V]) each(f func(netip.Addr, V)) {
	if d := m.dir.Load(); d != nil {
		d.eachEntry(func(e *addrMapEntry[V]) { f(e.key, e.val) })
	}
}

// prefixMap maps IPv4 and IPv6 prefixes to values and finds the prefixes
// containing an address with one addrMap probe per prefix length in use (at
// most 33 for IPv4, 129 for IPv6), however many prefixes there are. The two
// families share the per-length maps (their keys never collide) but keep
// separate sets of lengths in use. Writes must be serialised by the caller.
type prefixMap[V any] struct {
	lens4  atomic.Uint64    // bit b set: some stored IPv4 prefix has b bits
	lens6  [3]atomic.Uint64 // the same for IPv6, bit b in word b/64
	counts [2][129]int      // prefixes per family and length; writers only
	byLen  [129]addrMap[V]
}

// family indexes counts: 0 for IPv4, 1 for IPv6.
func family(a netip.Addr) int {
	if a.Is4() {
		return 0
	}
	return 1
}

// get returns the value stored for p, which must be masked.
func (t *prefixMap[V]) get(p netip.Prefix) (V, bool) {
	return t.byLen[p.Bits()].get(p.Addr())
}

// set stores v for p, which must be a masked prefix.
func (t *prefixMap[V]) set(p netip.Prefix, v V) {
	m := &t.byLen[p.Bits()]
	before := m.len
	m.set(p.Addr(), v)
	if m.len > before {
		t.counts[family(p.Addr())][p.Bits()]++
		t.markLen(p, true)
	}
}

// delete removes p, which must be masked.
func (t *prefixMap[V]) delete(p netip.Prefix) {
	if !t.byLen[p.Bits()].delete(p.Addr()) {
		return
	}
	c := &t.counts[family(p.Addr())][p.Bits()]
	*c--
	if *c == 0 {
		t.markLen(p, false)
	}
}

// markLen records whether some prefix of p's family and length is stored.
func (t *prefixMap[V]) markLen(p netip.Prefix, used bool) {
	w, bit := &t.lens4, uint(p.Bits())
	if !p.Addr().Is4() {
		w, bit = &t.lens6[bit/64], bit%64
	}
	if used {
		w.Store(w.Load() | 1<<bit)
	} else {
		w.Store(w.Load() &^ (1 << bit))
	}
}

// matches calls f with every stored prefix length containing a and its
// value, longest first, until f returns false.
func (t *prefixMap[V]) matches(a netip.Addr, f func(bits int, v V) bool) {
	if !a.Is4() {
		t.matches6(a, f)
		return
	}
	b4 := a.As4()
	u := binary.BigEndian.Uint32(b4[:])
	for set := t.lens4.Load(); set != 0; {
		b := 63 - bits.LeadingZeros64(set)
		set &^= 1 << b
		binary.BigEndian.PutUint32(b4[:], u&(^uint32(0)<<(32-b)))
		if v, ok := t.byLen[b].get(netip.AddrFrom4(b4)); ok && !f(b, v) {
			return
		}
	}
}

// matches6 is matches for an IPv6 address.
func (t *prefixMap[V]) matches6(a netip.Addr, f func(bits int, v V) bool) {
	if !a.Is6() {
		return
	}
	hi, lo := addrWords(a)
	for w := len(t.lens6) - 1; w >= 0; w-- {
		for set := t.lens6[w].Load(); set != 0; {
			i := 63 - bits.LeadingZeros64(set)
			set &^= 1 << i
			b := w*64 + i
			if v, ok := t.byLen[b].get(masked6(hi, lo, b)); ok && !f(b, v) {
				return
			}
		}
	}
}

// masked6 is the IPv6 address a with all but its first bits bits cleared
// (netip.Addr.Prefix without its checks and zone handling, for the
// per-datagram route lookup).
func masked6(hi, lo uint64, bits int) netip.Addr {
	switch {
	case bits <= 0:
		hi, lo = 0, 0
	case bits < 64:
		hi, lo = hi&^(^uint64(0)>>bits), 0
	case bits < 128:
		lo &^= ^uint64(0) >> (bits - 64)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	m, _ := netip.AddrFromSlice(b[:])
	return m
}

// each calls f for every stored prefix, in no particular order.
func (t *prefixMap[V]) each(f func(netip.Prefix, V)) {
	for b := range t.byLen {
		t.byLen[b].each(func(a netip.Addr, v V) { f(netip.PrefixFrom(a, b), v) })
	}
}
