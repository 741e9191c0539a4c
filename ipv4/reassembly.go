package ipv4

import (
	"bytes"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/tapnet/tapnet/internal/buffer"
)

// Limits used by the reassembler. They are private (and prefixed) so that
// they do not collide with the header code's exported constants.
const (
	fragMaxTotal  = 65535 // IPv4 total length limit, header included
	fragMinHeader = 20
	fragMaxHeader = 60
	// fragQuoteLen is what ICMP time exceeded quotes: the original header
	// and the first 8 bytes of its payload (RFC 792).
	fragQuoteLen = fragMaxHeader + 8
)

// FragmentKey identifies the datagram a fragment belongs to (RFC 791: source,
// destination, protocol and identification).
type FragmentKey struct {
	Src, Dst [4]byte
	Protocol uint8
	ID       uint16
}

// Fragment is one received IPv4 fragment.
type Fragment struct {
	Key       FragmentKey
	Offset    int  // payload offset in bytes (fragment offset field * 8)
	More      bool // MF flag
	HeaderLen int  // IPv4 header length; Buf.Bytes() starts with the header
	// Buf is the whole IP packet, header plus payload, with link padding
	// already removed. Add takes ownership of it.
	Buf *buffer.Buffer
}

// ReassemblerConfig tunes a Reassembler. Zero fields take the defaults.
type ReassemblerConfig struct {
	// Timeout is how long a datagram may stay incomplete, counted from its
	// first fragment's arrival (as the kernel's ipfrag_time). Default 30s.
	Timeout time.Duration
	// HighThresh is the memory (buffer Truesize plus a fixed per-datagram
	// overhead) that the reassembler never exceeds; when a fragment would
	// cross it, the oldest datagrams are evicted until usage is at most
	// LowThresh. Defaults 4 MiB and 3 MiB.
	HighThresh int
	LowThresh  int
	// MaxPerSource caps the datagrams under reassembly from one source
	// address; a new datagram from a source at its cap evicts that source's
	// oldest. Default 64; negative means no cap.
	MaxPerSource int
	// MaxDatagrams caps the datagrams under reassembly overall; a new one at
	// the cap evicts the oldest. Zero or negative means no cap beyond memory.
	MaxDatagrams int
	// Now is the clock; default time.Now.
	Now func() time.Time
	// OnTimeout is called, without locks held, for each datagram that
	// expires after its first fragment (offset 0) was seen, with that
	// fragment's IP header and the first 8 bytes of its payload, so that the
	// stack can send ICMP time exceeded (code 1). first is valid only during
	// the call.
	OnTimeout func(key FragmentKey, first []byte)
}

// ReassemblyStats counts what a reassembler did; each drop reason has its
// own counter. They are live atomic counters: read one with Load.
type ReassemblyStats struct {
	Fragments   atomic.Uint64 // fragments passed to Add (non-fragments excluded)
	Reassembled atomic.Uint64 // datagrams completed and returned
	// Duplicates counts fragments dropped because every byte they carry was
	// already held, identically.
	Duplicates atomic.Uint64
	// Overlaps counts datagrams dropped because a fragment overlapped held
	// data with different bytes (teardrop; RFC 5722's stance).
	Overlaps atomic.Uint64
	// LengthConflicts counts datagrams dropped because fragments disagreed
	// on where the datagram ends (two different last fragments, or data
	// beyond the last fragment's end).
	LengthConflicts atomic.Uint64
	// Oversize counts fragments (or completed datagrams) that would exceed
	// the 65535-byte IPv4 limit (ping of death).
	Oversize atomic.Uint64
	// BadFragment counts fragments dropped for their own shape: empty
	// payload, a non-last fragment whose length is not a multiple of 8, an
	// offset not a multiple of 8, or a header length out of range.
	BadFragment atomic.Uint64
	// Tombstoned counts fragments dropped because their datagram had already
	// been dropped for an overlap or length conflict and has not yet expired.
	Tombstoned      atomic.Uint64
	Timeouts        atomic.Uint64 // incomplete datagrams expired
	MemoryEvictions atomic.Uint64 // datagrams (or fragments) dropped to stay under HighThresh
	SourceLimit     atomic.Uint64 // datagrams evicted because their source hit MaxPerSource
	DatagramLimit   atomic.Uint64 // datagrams evicted because of MaxDatagrams
}

// Reassembler rebuilds IPv4 datagrams from fragments (RFC 791, with RFC 5722's
// treatment of conflicting overlaps). A completed datagram is delivered as a
// chain of the fragments' own buffers, each trimmed to its share of the
// payload, so that a reader copies it straight into its own buffer without a
// coalescing copy here.
//
// Policies:
//   - Fragments that are malformed on their own (empty, misaligned, oversize)
//     are dropped alone and create no state.
//   - A fragment whose bytes are all already held, identically, is dropped
//     as a duplicate. A fragment overlapping held data with identical bytes
//     is trimmed to the new bytes (it may replace held parts it wholly
//     covers). Overlap with different bytes, or disagreement about the end
//     of the datagram, drops the whole datagram and leaves a tombstone: a
//     datagram holding no buffers that drops (and counts) further fragments
//     with its key until it expires, so that the rest of a hostile train
//     cannot start a fresh reassembly. Tombstones count towards the caps and
//     are evicted like any other datagram.
//   - Memory is the buffers' Truesize plus a fixed overhead per datagram, so
//     tombstones are bounded too. Eviction is oldest-first by creation,
//     which is also expiry order.
//   - A new datagram from a source at MaxPerSource evicts that source's
//     oldest datagram rather than being dropped: a source can only displace
//     its own stale trains, and its fresh traffic is never blocked by them.
//
// A Reassembler is safe for concurrent use.
type Reassembler struct {
	timeout      time.Duration
	high, low    int
	maxPerSource int
	maxDatagrams int
	now          func() time.Time
	onTimeout    func(FragmentKey, []byte)

	// releaseHook, when set (by tests), sees every buffer the reassembler
	// releases.
	releaseHook func(*buffer.Buffer)

	mu      sync.Mutex
	closed  bool
	table   map[FragmentKey]*fragDatagram
	sources map[[4]byte]fragSource
	oldest  *fragDatagram // creation order: oldest first
	newest  *fragDatagram
	mem     int
	dead    int              // tombstones in table
	stats   *ReassemblyStats // may be shared, so updated atomically
}

// fragPart is a held piece of payload: its buffer is trimmed to exactly the
// bytes [off, off+b.Len()) of the datagram's payload.
type fragPart struct {
	off int
	b   *buffer.Buffer
}

func (p fragPart) end() int { return p.off + p.b.Len() }

// fragSource lists the datagrams from one source, oldest first.
type fragSource struct {
	n              int
	oldest, newest *fragDatagram
}

type fragDatagram struct {
	key          FragmentKey
	created      time.Time
	prev, next   *fragDatagram // global list
	sprev, snext *fragDatagram // per-source list
	parts        []fragPart    // sorted by offset, non-overlapping, non-empty
	received     int           // payload bytes held
	total        int           // payload length once the last fragment is seen, else -1
	mem          int           // memory charged, overhead included
	dead         bool          // tombstone
	firstHdr     int           // header length of the offset-0 fragment; 0 until seen
	firstLen     int           // bytes valid in first
	first        [fragQuoteLen]byte
}

// fragOverhead is what a datagram costs beyond its buffers.
const fragOverhead = int(unsafe.Sizeof(fragDatagram{}))

// fragMaxPooledParts bounds the parts capacity kept when a datagram is
// recycled (4 KiB: a maximal datagram over a 576-byte MTU has 120 parts), so
// one hostile train of tiny fragments does not pin a big slice.
const fragMaxPooledParts = 256

var fragPool = sync.Pool{New: func() any { return &fragDatagram{} }}

func newFragDatagram() *fragDatagram {
	d := fragPool.Get().(*fragDatagram)
	d.total = -1
	return d
}

func recycleFragDatagram(d *fragDatagram) {
	parts := d.parts
	clear(parts[:cap(parts)])
	if cap(parts) > fragMaxPooledParts {
		parts = nil
	}
	*d = fragDatagram{parts: parts[:0]}
	fragPool.Put(d)
}

// NewReassembler returns a reassembler configured by cfg that counts in
// stats, or in counters of its own when stats is nil.
func NewReassembler(cfg ReassemblerConfig, stats *ReassemblyStats) *Reassembler {
	if stats == nil {
		stats = new(ReassemblyStats)
	}
	r := &Reassembler{
		stats:        stats,
		timeout:      cfg.Timeout,
		high:         cfg.HighThresh,
		low:          cfg.LowThresh,
		maxPerSource: cfg.MaxPerSource,
		maxDatagrams: cfg.MaxDatagrams,
		now:          cfg.Now,
		onTimeout:    cfg.OnTimeout,
		table:        make(map[FragmentKey]*fragDatagram),
		sources:      make(map[[4]byte]fragSource),
	}
	if r.timeout <= 0 {
		r.timeout = 30 * time.Second
	}
	if r.high <= 0 {
		r.high = 4 << 20
	}
	if r.low <= 0 {
		r.low = r.high / 4 * 3
	}
	if r.low > r.high {
		r.low = r.high
	}
	if r.maxPerSource == 0 {
		r.maxPerSource = 64
	}
	if r.now == nil {
		r.now = time.Now
	}
	return r
}

func (r *Reassembler) free(b *buffer.Buffer) {
	if r.releaseHook != nil {
		r.releaseHook(b)
	}
	b.Release()
}

// Add takes ownership of f.Buf. When f completes its datagram, Add returns the
// head of the chain holding the transport payload (IP headers removed): the
// head is the offset-0 fragment's buffer, trimmed with TrimFront so that its
// header still sits in front of it, and each Next holds the following part;
// the total length is head.ChainLen() and the caller owns the whole chain
// (ReleaseChain). ok is false when the datagram is not complete yet or the
// fragment was dropped, in which case the reassembler keeps or has released
// the buffer. A packet with Offset 0 and More unset is not a fragment and is
// returned at once as a one-part chain.
func (r *Reassembler) Add(f Fragment) (head *buffer.Buffer, ok bool) {
	b := f.Buf
	if b == nil {
		return nil, false
	}
	b.Next = nil
	hl := f.HeaderLen
	if f.Offset == 0 && !f.More && hl >= fragMinHeader && hl <= fragMaxHeader && hl <= b.Len() {
		b.TrimFront(hl)
		return b, true
	}

	var expiredArr [4]*fragDatagram
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.free(b)
		return nil, false
	}
	r.stats.Fragments.Add(1)
	n := b.Len() - hl
	switch {
	case hl < fragMinHeader || hl > fragMaxHeader || n < 0,
		n == 0, f.Offset < 0, f.Offset%8 != 0, f.More && n%8 != 0:
		r.stats.BadFragment.Add(1)
		r.mu.Unlock()
		r.free(b)
		return nil, false
	case hl+f.Offset+n > fragMaxTotal:
		r.stats.Oversize.Add(1)
		r.mu.Unlock()
		r.free(b)
		return nil, false
	}
	now := r.now()
	expired := r.expireLocked(now, expiredArr[:0])
	head, ok = r.addLocked(f, n, now)
	r.mu.Unlock()
	r.notify(expired)
	return head, ok
}

// addLocked files a fragment that is well formed on its own.
func (r *Reassembler) addLocked(f Fragment, n int, now time.Time) (*buffer.Buffer, bool) {
	b := f.Buf
	d := r.table[f.Key]
	if d == nil {
		return r.startLocked(f, n, now)
	}
	if d.dead {
		r.stats.Tombstoned.Add(1)
		r.free(b)
		return nil, false
	}

	fragEnd := f.Offset + n
	maxEnd := 0
	if k := len(d.parts); k > 0 {
		maxEnd = d.parts[k-1].end()
	}
	if (!f.More && (d.total >= 0 && fragEnd != d.total || maxEnd > fragEnd)) ||
		(f.More && d.total >= 0 && fragEnd > d.total) {
		r.stats.LengthConflicts.Add(1)
		r.killLocked(d)
		r.free(b)
		return nil, false
	}

	off, end := f.Offset, fragEnd
	data := b.Bytes()[f.HeaderLen:]

	// i is the first part ending after off; in-order arrival appends.
	i := len(d.parts)
	if maxEnd > off {
		lo, hi := 0, len(d.parts)
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if d.parts[m].end() > off {
				hi = m
			} else {
				lo = m + 1
			}
		}
		i = lo
	}
	// parts[i:j] overlap [off, end); their shared bytes must agree.
	j, covered := i, 0
	for ; j < len(d.parts) && d.parts[j].off < end; j++ {
		p := d.parts[j]
		lo, hi := max(off, p.off), min(end, p.end())
		if !bytes.Equal(data[lo-off:hi-off], p.b.Bytes()[lo-p.off:hi-p.off]) {
			r.stats.Overlaps.Add(1)
			r.killLocked(d)
			r.free(b)
			return nil, false
		}
		covered += hi - lo
	}
	if covered == n {
		r.stats.Duplicates.Add(1)
		r.free(b)
		return nil, false
	}
	// Narrow the new fragment against parts straddling its ends, so that it
	// is one contiguous piece that fills the gaps and wholly covers the
	// parts left in parts[i:j], which it replaces. There is a gap, so the
	// straddling parts are distinct and the narrowed piece is not empty.
	if i < j && d.parts[i].off < off {
		off = d.parts[i].end()
		i++
	}
	if i < j && d.parts[j-1].end() > end {
		end = d.parts[j-1].off
		j--
	}
	for _, p := range d.parts[i:j] {
		d.received -= p.b.Len()
		d.mem -= p.b.Truesize()
		r.mem -= p.b.Truesize()
		r.free(p.b)
	}
	d.parts = slices.Delete(d.parts, i, j)

	if !r.makeRoomLocked(b.Truesize(), d) {
		// This datagram alone fills the budget; it can never complete.
		r.stats.MemoryEvictions.Add(1)
		r.removeLocked(d)
		r.free(b)
		return nil, false
	}
	r.noteEnds(d, f, fragEnd)
	b.TrimFront(f.HeaderLen + off - f.Offset)
	b.Truncate(end - off)
	d.parts = slices.Insert(d.parts, i, fragPart{off: off, b: b})
	d.received += end - off
	d.mem += b.Truesize()
	r.mem += b.Truesize()

	if d.total < 0 || d.received != d.total {
		return nil, false
	}
	if d.firstHdr+d.total > fragMaxTotal {
		r.stats.Oversize.Add(1)
		r.killLocked(d)
		return nil, false
	}
	// Complete: the parts tile [0, total) in order; link them.
	for k := 1; k < len(d.parts); k++ {
		d.parts[k-1].b.Next = d.parts[k].b
	}
	head := d.parts[0].b
	clear(d.parts)
	d.parts = d.parts[:0]
	r.stats.Reassembled.Add(1)
	r.removeLocked(d)
	return head, true
}

// noteEnds records what an accepted fragment, still untrimmed, says about
// the datagram's ends: the total length from the last fragment, and from the
// first the header length and the quote for ICMP. A later offset-0 fragment
// is accepted only when it replaces the held head, so the quote always
// describes the buffer that will head the chain.
func (r *Reassembler) noteEnds(d *fragDatagram, f Fragment, fragEnd int) {
	if !f.More {
		d.total = fragEnd
	}
	if f.Offset == 0 {
		d.firstHdr = f.HeaderLen
		q := f.Buf.Bytes()
		d.firstLen = copy(d.first[:], q[:min(len(q), f.HeaderLen+8)])
	}
}

// startLocked creates a datagram for the first fragment seen with its key.
func (r *Reassembler) startLocked(f Fragment, n int, now time.Time) (*buffer.Buffer, bool) {
	b := f.Buf
	src := f.Key.Src
	if r.maxPerSource > 0 {
		if s := r.sources[src]; s.n >= r.maxPerSource {
			r.stats.SourceLimit.Add(1)
			r.removeLocked(s.oldest)
		}
	}
	if r.maxDatagrams > 0 && len(r.table) >= r.maxDatagrams {
		r.stats.DatagramLimit.Add(1)
		r.removeLocked(r.oldest)
	}
	if !r.makeRoomLocked(b.Truesize()+fragOverhead, nil) {
		r.stats.MemoryEvictions.Add(1)
		r.free(b)
		return nil, false
	}

	d := newFragDatagram()
	d.key = f.Key
	d.created = now
	d.prev = r.newest
	if r.newest != nil {
		r.newest.next = d
	} else {
		r.oldest = d
	}
	r.newest = d
	s := r.sources[src]
	d.sprev = s.newest
	if s.newest != nil {
		s.newest.snext = d
	} else {
		s.oldest = d
	}
	s.newest = d
	s.n++
	r.sources[src] = s
	r.table[f.Key] = d

	r.noteEnds(d, f, f.Offset+n)
	b.TrimFront(f.HeaderLen)
	d.parts = append(d.parts, fragPart{off: f.Offset, b: b})
	d.received = n
	d.mem = b.Truesize() + fragOverhead
	r.mem += d.mem
	// One fragment cannot complete a datagram: Offset 0 with More unset is
	// not a fragment and never reaches here.
	return nil, false
}

// makeRoomLocked ensures need more bytes fit under the high threshold,
// evicting the oldest datagrams other than keep down to the low threshold
// once the high one would be crossed. It reports whether need fits.
func (r *Reassembler) makeRoomLocked(need int, keep *fragDatagram) bool {
	if r.mem+need <= r.high {
		return true
	}
	for d := r.oldest; d != nil && r.mem+need > r.low; {
		next := d.next
		if d != keep {
			if !d.dead {
				r.stats.MemoryEvictions.Add(1)
			}
			r.removeLocked(d)
		}
		d = next
	}
	return r.mem+need <= r.high
}

// killLocked turns d into a tombstone: its buffers are released, and its key
// stays until it expires or is evicted.
func (r *Reassembler) killLocked(d *fragDatagram) {
	r.releasePartsLocked(d)
	d.dead = true
	d.total = -1
	d.received = 0
	d.firstLen = 0
	r.dead++
}

func (r *Reassembler) releasePartsLocked(d *fragDatagram) {
	for _, p := range d.parts {
		r.free(p.b)
	}
	clear(d.parts)
	d.parts = d.parts[:0]
	r.mem -= d.mem - fragOverhead
	d.mem = fragOverhead
}

// unlinkLocked takes d out of the table and lists and uncharges it; its
// parts are left to the caller.
func (r *Reassembler) unlinkLocked(d *fragDatagram) {
	delete(r.table, d.key)
	if d.dead {
		r.dead--
	}
	r.mem -= d.mem
	d.mem = 0
	if d.prev != nil {
		d.prev.next = d.next
	} else {
		r.oldest = d.next
	}
	if d.next != nil {
		d.next.prev = d.prev
	} else {
		r.newest = d.prev
	}
	s := r.sources[d.key.Src]
	if d.sprev != nil {
		d.sprev.snext = d.snext
	} else {
		s.oldest = d.snext
	}
	if d.snext != nil {
		d.snext.sprev = d.sprev
	} else {
		s.newest = d.sprev
	}
	if s.n--; s.n == 0 {
		delete(r.sources, d.key.Src)
	} else {
		r.sources[d.key.Src] = s
	}
	d.prev, d.next, d.sprev, d.snext = nil, nil, nil, nil
}

// removeLocked drops d entirely and recycles it.
func (r *Reassembler) removeLocked(d *fragDatagram) {
	r.unlinkLocked(d)
	for _, p := range d.parts {
		r.free(p.b)
	}
	recycleFragDatagram(d)
}

// expireLocked drops the datagrams older than the timeout. Those owed an
// OnTimeout call are appended to out, detached but not recycled, for notify.
func (r *Reassembler) expireLocked(now time.Time, out []*fragDatagram) []*fragDatagram {
	for d := r.oldest; d != nil && now.Sub(d.created) >= r.timeout; d = r.oldest {
		if d.dead {
			r.removeLocked(d)
			continue
		}
		r.stats.Timeouts.Add(1)
		if d.firstLen == 0 || r.onTimeout == nil {
			r.removeLocked(d)
			continue
		}
		r.unlinkLocked(d)
		for _, p := range d.parts {
			r.free(p.b)
		}
		clear(d.parts)
		d.parts = d.parts[:0]
		out = append(out, d)
	}
	return out
}

// notify makes the OnTimeout calls, without locks, then recycles.
func (r *Reassembler) notify(expired []*fragDatagram) {
	for _, d := range expired {
		r.onTimeout(d.key, d.first[:d.firstLen])
		recycleFragDatagram(d)
	}
}

// Expire drops the datagrams that have been incomplete for longer than the
// timeout, calling OnTimeout for those whose first fragment was seen. Add
// also expires lazily; the stack calls Expire from a timer so that ICMP
// time exceeded goes out even when no fragments arrive.
func (r *Reassembler) Expire() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	expired := r.expireLocked(r.now(), nil)
	r.mu.Unlock()
	r.notify(expired)
}

// MemoryUsed returns the memory charged to datagrams under reassembly.
func (r *Reassembler) MemoryUsed() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mem
}

// InFlight returns the number of datagrams under reassembly, tombstones
// excluded.
func (r *Reassembler) InFlight() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.table) - r.dead
}

// Stats returns the live counters the reassembler adds to.
func (r *Reassembler) Stats() *ReassemblyStats { return r.stats }

// Close releases every buffer held. Later fragments are released on arrival.
func (r *Reassembler) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.closed = true
	for d := r.oldest; d != nil; d = r.oldest {
		r.removeLocked(d)
	}
}
