// Package ipfrag reassembles IP datagrams from their fragments. It keys
// datagrams by addresses of either family and takes the network protocol's
// header and length limits as configuration (IPv4's by default); what it
// knows of a header is only its length. IPv4 and IPv6 each get their own
// Reassembler, with their own memory thresholds, as Linux keeps
// ipfrag_high_thresh and ip6frag_high_thresh apart: a flood of one
// family's fragments cannot starve the other's reassembly.
//
// For IPv6 the "header" of a fragment is its unfragmentable part and its
// fragment header together (RFC 8200 §4.5); AddFragment reports the first
// fragment's, so that the stack can rebuild the header chain, and
// Config.StrictOverlap and Config.QuoteLen give RFC 5722's overlap rule
// and ICMPv6's longer quote.
package ipfrag

import (
	"bytes"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/ipv4"
)

// Key identifies the datagram a fragment belongs to: for IPv4 source,
// destination, protocol and identification (RFC 791); IPv6 leaves Protocol
// zero and uses the 32-bit identification (RFC 8200 4.5).
type Key struct {
	Src, Dst netip.Addr
	ID       uint32
	Protocol uint8
}

// Fragment is one received fragment.
type Fragment struct {
	Key       Key
	Offset    int  // payload offset in bytes (fragment offset field * 8)
	More      bool // MF flag
	HeaderLen int  // header length; Buf.Bytes() starts with the header
	// Buf is the whole IP packet, header plus payload, with link padding
	// already removed. Add takes ownership of it.
	Buf *buffer.Buffer
}

// Limits are what the network protocol allows of a fragment's header and of
// a whole datagram.
type Limits struct {
	MinHeaderLen, MaxHeaderLen int
	// MaxLen bounds a reassembled datagram, the first fragment's header
	// included.
	MaxLen int
}

// IPv4 are IPv4's limits: a 20 to 60-byte header, 65535 bytes in all.
var IPv4 = Limits{MinHeaderLen: ipv4.HeaderLen, MaxHeaderLen: ipv4.MaxHeaderLen, MaxLen: ipv4.MaxTotalLen}

// IPv6 are IPv6's limits when a fragment's "header" is its unfragmentable
// part plus the 8-byte fragment header: at least 48 bytes, and a
// reassembled payload length (everything after the fixed 40-byte header,
// the fragment header removed) of at most 65535 bytes.
var IPv6 = Limits{MinHeaderLen: ipv6HeaderLen + ipv6FragHeaderLen, MaxHeaderLen: ipv6MaxLen, MaxLen: ipv6MaxLen}

const (
	ipv6HeaderLen     = 40
	ipv6FragHeaderLen = 8
	ipv6MaxLen        = ipv6HeaderLen + ipv6FragHeaderLen + 65535
)

// quoteLen is how much of the first fragment OnTimeout receives: the
// header and the first 8 bytes of its payload, what ICMP time exceeded
// quotes (RFC 792). A header longer than IPv4's is quoted only in part.
const quoteLen = ipv4.MaxHeaderLen + 8

// Config tunes a Reassembler. Zero fields take the defaults.
type Config struct {
	// Limits are the protocol's; default IPv4.
	Limits Limits
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
	// fragment's header and the first 8 bytes of its payload, so that the
	// stack can send ICMP time exceeded (code 1). first is valid only during
	// the call.
	OnTimeout func(key Key, first []byte)
	// QuoteLen, when positive, makes OnTimeout receive the first fragment
	// whole, headers included, cut to QuoteLen bytes, rather than its
	// header and 8 bytes: ICMPv6 quotes as much as fits in 1280 bytes
	// (RFC 4443 §2.4(c)).
	QuoteLen int
	// StrictOverlap applies RFC 5722 (IPv6): a fragment overlapping held
	// data drops the whole datagram even when the shared bytes agree; only
	// an exact duplicate of held bytes is dropped alone (RFC 5722 erratum
	// 3089, as Linux does). Without it identical overlaps are merged, as
	// IPv4 reassembly does.
	StrictOverlap bool
}

// Stats counts what a reassembler did; each drop reason has its own
// counter. They are live atomic counters: read one with Load. The stack
// hands in its public ReassemblyStats, a struct of the same fields, so
// that its users can name them.
type Stats struct {
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
	// the protocol's MaxLen (ping of death).
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
	// InFlight and MemoryUsed are gauges, not counters: the datagrams under
	// reassembly now (tombstones excluded) and the memory charged to them,
	// as of the last call that changed them.
	InFlight   atomic.Uint64
	MemoryUsed atomic.Uint64
}

// Reassembler rebuilds datagrams from fragments (RFC 791, with RFC 5722's
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
	limits       Limits
	timeout      time.Duration
	high, low    int
	maxPerSource int
	maxDatagrams int
	now          func() time.Time
	onTimeout    func(Key, []byte)
	quoteLen     int
	strict       bool
	stats        *Stats // may be shared, so updated atomically

	// releaseHook, when set (by tests), sees every buffer the reassembler
	// releases.
	releaseHook func(*buffer.Buffer)

	// mu guards every field below and every datagram reachable from them.
	// It is a leaf lock: OnTimeout runs after it is released, and nothing
	// else is locked while it is held.
	mu     sync.Mutex
	closed bool
	table  map[Key]*fragDatagram
	// sources holds a record per source address with datagrams in
	// flight, keyed by the address's 16 bytes (a reassembler serves one
	// family), which hash faster than a netip.Addr with its zone.
	sources map[[16]byte]*fragSource
	spare   []*fragSource // records of sources gone, for the next ones
	oldest  *fragDatagram // creation order: oldest first
	newest  *fragDatagram
	mem     int
	dead    int // tombstones in table
}

// fragPart is a held piece of payload: its buffer is trimmed to exactly the
// bytes [off, off+b.Len()) of the datagram's payload.
type fragPart struct {
	off int
	b   *buffer.Buffer
}

func (p fragPart) end() int { return p.off + p.b.Len() }

// fragSource lists the datagrams from one source, oldest first. Each of
// them points to it, so that taking one out needs no lookup.
type fragSource struct {
	n              int
	oldest, newest *fragDatagram
}

type fragDatagram struct {
	key          Key
	created      time.Time
	prev, next   *fragDatagram // global list
	src          *fragSource   // its source's record, while linked
	sprev, snext *fragDatagram // per-source list
	parts        []fragPart    // sorted by offset, non-overlapping, non-empty
	received     int           // payload bytes held
	total        int           // payload length once the last fragment is seen, else -1
	mem          int           // memory charged, overhead included
	dead         bool          // tombstone
	firstHdr     int           // header length of the offset-0 fragment; 0 until seen
	firstLen     int           // bytes valid in first
	first        [quoteLen]byte
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
func NewReassembler(cfg Config, stats *Stats) *Reassembler {
	if stats == nil {
		stats = new(Stats)
	}
	r := &Reassembler{
		limits:       cfg.Limits,
		stats:        stats,
		timeout:      cfg.Timeout,
		high:         cfg.HighThresh,
		low:          cfg.LowThresh,
		maxPerSource: cfg.MaxPerSource,
		maxDatagrams: cfg.MaxDatagrams,
		now:          cfg.Now,
		onTimeout:    cfg.OnTimeout,
		quoteLen:     cfg.QuoteLen,
		strict:       cfg.StrictOverlap,
		table:        make(map[Key]*fragDatagram),
		sources:      make(map[[16]byte]*fragSource),
	}
	if r.limits == (Limits{}) {
		r.limits = IPv4
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

// drop releases a fragment's buffer and counts why it was dropped.
func (r *Reassembler) drop(b *buffer.Buffer, why *atomic.Uint64) {
	why.Add(1)
	r.free(b)
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
	head, _, ok = r.AddFragment(f)
	return head, ok
}

// AddFragment is Add that also returns, with a completed datagram, the
// header length of its first fragment: the bytes in front of head that
// hold that fragment's header (for IPv6, its unfragmentable part and
// fragment header, which the caller rebuilds into one header chain).
func (r *Reassembler) AddFragment(f Fragment) (head *buffer.Buffer, headerLen int, ok bool) {
	b := f.Buf
	if b == nil {
		return nil, 0, false
	}
	b.Next = nil
	if f.Offset == 0 && !f.More && r.headerFits(f.HeaderLen, b.Len()) {
		b.TrimFront(f.HeaderLen)
		return b, f.HeaderLen, true
	}

	var expiredArr [4]*fragDatagram
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.free(b)
		return nil, 0, false
	}
	r.stats.Fragments.Add(1)
	n := b.Len() - f.HeaderLen
	if why := r.misshapen(&f, n); why != nil {
		r.mu.Unlock()
		r.drop(b, why)
		return nil, 0, false
	}
	now := r.now()
	expired := r.expireLocked(now, expiredArr[:0])
	head, headerLen, ok = r.addLocked(&f, n, now)
	r.publishLocked()
	r.mu.Unlock()
	r.notify(expired)
	return head, headerLen, ok
}

// headerFits reports whether a header of hl bytes is within the protocol's
// limits and within a packet of n bytes.
func (r *Reassembler) headerFits(hl, n int) bool {
	return hl >= r.limits.MinHeaderLen && hl <= r.limits.MaxHeaderLen && hl <= n
}

// misshapen returns the counter of the reason f, carrying n payload bytes,
// is unacceptable on its own, or nil when it is well formed.
func (r *Reassembler) misshapen(f *Fragment, n int) *atomic.Uint64 {
	switch {
	case !r.headerFits(f.HeaderLen, f.Buf.Len()),
		n == 0, f.Offset < 0, f.Offset%8 != 0, f.More && n%8 != 0:
		return &r.stats.BadFragment
	case f.HeaderLen+f.Offset+n > r.limits.MaxLen:
		return &r.stats.Oversize
	}
	return nil
}

// publishLocked updates the gauges in the stats.
func (r *Reassembler) publishLocked() {
	r.stats.InFlight.Store(uint64(len(r.table) - r.dead))
	r.stats.MemoryUsed.Store(uint64(r.mem))
}

// addLocked files a fragment that is well formed on its own: it starts a
// datagram, or checks the fragment against the one it belongs to, merges
// its new bytes in and hands the datagram back once complete.
func (r *Reassembler) addLocked(f *Fragment, n int, now time.Time) (*buffer.Buffer, int, bool) {
	d := r.table[f.Key]
	switch {
	case d == nil:
		r.startLocked(f, n, now)
		// One fragment cannot complete a datagram: Offset 0 with More
		// unset is not a fragment and never reaches here.
		return nil, 0, false
	case d.dead:
		r.drop(f.Buf, &r.stats.Tombstoned)
		return nil, 0, false
	case d.conflictsOnLength(f, n):
		r.killLocked(d)
		r.drop(f.Buf, &r.stats.LengthConflicts)
		return nil, 0, false
	}
	i, j, fit := d.overlap(f, n)
	if fit == fresh && i < j && r.strict {
		fit = conflicting // RFC 5722: no partial overlap is merged
	}
	switch fit {
	case conflicting:
		r.killLocked(d)
		r.drop(f.Buf, &r.stats.Overlaps)
		return nil, 0, false
	case duplicate:
		r.drop(f.Buf, &r.stats.Duplicates)
		return nil, 0, false
	}
	if !r.mergeLocked(d, f, n, i, j) {
		return nil, 0, false
	}
	return r.completeLocked(d)
}

// maxEnd is where the held part furthest into the datagram ends.
func (d *fragDatagram) maxEnd() int {
	if k := len(d.parts); k > 0 {
		return d.parts[k-1].end()
	}
	return 0
}

// conflictsOnLength reports whether f, carrying n bytes, disagrees with
// what d knows of the datagram's end: a last fragment ending elsewhere than
// the known end or before held data, or a fragment reaching past the end.
func (d *fragDatagram) conflictsOnLength(f *Fragment, n int) bool {
	end := f.Offset + n
	if !f.More {
		return d.total >= 0 && end != d.total || d.maxEnd() > end
	}
	return d.total >= 0 && end > d.total
}

// fit is how a fragment's bytes relate to those held.
type fit uint8

const (
	fresh       fit = iota // it brings bytes not held yet
	duplicate              // every byte it carries is held, identically
	conflicting            // some byte it carries is held with another value
)

// overlap finds the held parts[i:j] that share bytes with f's n payload
// bytes, and compares the shared bytes.
func (d *fragDatagram) overlap(f *Fragment, n int) (i, j int, how fit) {
	off, end := f.Offset, f.Offset+n
	i = d.firstEndingAfter(off)
	if i == len(d.parts) || d.parts[i].off >= end {
		return i, i, fresh // into a gap: the common, in-order case
	}
	data := f.Buf.Bytes()[f.HeaderLen:]
	covered := 0
	for j = i; j < len(d.parts) && d.parts[j].off < end; j++ {
		p := d.parts[j]
		lo, hi := max(off, p.off), min(end, p.end())
		if !bytes.Equal(data[lo-off:hi-off], p.b.Bytes()[lo-p.off:hi-p.off]) {
			return i, j, conflicting
		}
		covered += hi - lo
	}
	if covered == n {
		return i, j, duplicate
	}
	return i, j, fresh
}

// firstEndingAfter returns the index of the first part ending after off;
// in-order arrival appends, so that case skips the search.
func (d *fragDatagram) firstEndingAfter(off int) int {
	if d.maxEnd() <= off {
		return len(d.parts)
	}
	return d.searchEndingAfter(off)
}

// searchEndingAfter is firstEndingAfter's binary search.
func (d *fragDatagram) searchEndingAfter(off int) int {
	lo, hi := 0, len(d.parts)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if d.parts[m].end() > off {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

// mergeLocked files the bytes of f (n of them) that d lacks, given that
// parts[i:j] overlap f with identical bytes and that f brings some new
// ones. It reports false when f was dropped for memory, which takes d with
// it.
func (r *Reassembler) mergeLocked(d *fragDatagram, f *Fragment, n, i, j int) bool {
	b := f.Buf
	off, end := f.Offset, f.Offset+n
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
	if i < j {
		r.replacePartsLocked(d, i, j)
	}
	if !r.makeRoomLocked(b.Truesize(), d) {
		// This datagram alone fills the budget; it can never complete.
		r.removeLocked(d)
		r.drop(b, &r.stats.MemoryEvictions)
		return false
	}
	r.noteEnds(d, f, f.Offset+n)
	b.TrimFront(f.HeaderLen + off - f.Offset)
	b.Truncate(end - off)
	d.parts = slices.Insert(d.parts, i, fragPart{off: off, b: b})
	r.chargeLocked(d, b, end-off)
	return true
}

// replacePartsLocked releases parts[i:j], which a new piece covers.
func (r *Reassembler) replacePartsLocked(d *fragDatagram, i, j int) {
	for _, p := range d.parts[i:j] {
		d.received -= p.b.Len()
		d.mem -= p.b.Truesize()
		r.mem -= p.b.Truesize()
		r.free(p.b)
	}
	d.parts = slices.Delete(d.parts, i, j)
}

// chargeLocked accounts for b, holding n payload bytes, now filed in d.
func (r *Reassembler) chargeLocked(d *fragDatagram, b *buffer.Buffer, n int) {
	d.received += n
	d.mem += b.Truesize()
	r.mem += b.Truesize()
}

// completeLocked hands d's payload back as a chain once every byte is held.
func (r *Reassembler) completeLocked(d *fragDatagram) (*buffer.Buffer, int, bool) {
	if d.total < 0 || d.received != d.total {
		return nil, 0, false
	}
	if d.firstHdr+d.total > r.limits.MaxLen {
		r.stats.Oversize.Add(1)
		r.killLocked(d)
		return nil, 0, false
	}
	hdr := d.firstHdr
	// The parts tile [0, total) in order; link them.
	for k := 1; k < len(d.parts); k++ {
		d.parts[k-1].b.Next = d.parts[k].b
	}
	head := d.parts[0].b
	clear(d.parts)
	d.parts = d.parts[:0]
	r.stats.Reassembled.Add(1)
	r.removeLocked(d)
	return head, hdr, true
}

// noteEnds records what an accepted fragment, still untrimmed, says about
// the datagram's ends: the total length from the last fragment, and from the
// first the header length and the quote for ICMP. A later offset-0 fragment
// is accepted only when it replaces the held head, so the quote always
// describes the buffer that will head the chain.
func (r *Reassembler) noteEnds(d *fragDatagram, f *Fragment, fragEnd int) {
	if !f.More {
		d.total = fragEnd
	}
	if f.Offset == 0 {
		d.firstHdr = f.HeaderLen
		q := f.Buf.Bytes()
		d.firstLen = copy(d.first[:], q[:min(len(q), f.HeaderLen+8)])
	}
}

// startLocked creates a datagram for the first fragment seen with its key,
// making room for it under the caps first.
func (r *Reassembler) startLocked(f *Fragment, n int, now time.Time) {
	b := f.Buf
	r.enforceCapsLocked(f.Key.Src)
	if !r.makeRoomLocked(b.Truesize()+fragOverhead, nil) {
		r.drop(b, &r.stats.MemoryEvictions)
		return
	}
	d := newFragDatagram()
	d.key = f.Key
	d.created = now
	d.mem = fragOverhead
	r.mem += fragOverhead
	r.linkLocked(d)
	r.noteEnds(d, f, f.Offset+n)
	b.TrimFront(f.HeaderLen)
	d.parts = append(d.parts, fragPart{off: f.Offset, b: b})
	r.chargeLocked(d, b, n)
}

// enforceCapsLocked evicts the oldest datagram of src, or the oldest of
// all, when a new one would exceed MaxPerSource or MaxDatagrams.
func (r *Reassembler) enforceCapsLocked(src netip.Addr) {
	if r.maxPerSource > 0 {
		if s := r.sources[src.As16()]; s != nil && s.n >= r.maxPerSource {
			r.stats.SourceLimit.Add(1)
			r.removeLocked(s.oldest)
		}
	}
	if r.maxDatagrams > 0 && len(r.table) >= r.maxDatagrams {
		r.stats.DatagramLimit.Add(1)
		r.removeLocked(r.oldest)
	}
}

// linkLocked files a new datagram in the table and as the newest of the
// global and its source's lists.
func (r *Reassembler) linkLocked(d *fragDatagram) {
	d.prev = r.newest
	if r.newest != nil {
		r.newest.next = d
	} else {
		r.oldest = d
	}
	r.newest = d
	k := d.key.Src.As16()
	s := r.sources[k]
	if s == nil {
		s = r.newSourceLocked()
		r.sources[k] = s
	}
	d.src = s
	d.sprev = s.newest
	if s.newest != nil {
		s.newest.snext = d
	} else {
		s.oldest = d
	}
	s.newest = d
	s.n++
	r.table[d.key] = d
}

// maxSpareSources bounds the records kept for reuse after a burst of
// sources has passed.
const maxSpareSources = 1024

func (r *Reassembler) newSourceLocked() *fragSource {
	if n := len(r.spare); n > 0 {
		s := r.spare[n-1]
		r.spare[n-1] = nil
		r.spare = r.spare[:n-1]
		return s
	}
	return new(fragSource)
}

// sourceGoneLocked forgets a source whose last datagram went.
func (r *Reassembler) sourceGoneLocked(d *fragDatagram) {
	delete(r.sources, d.key.Src.As16())
	if len(r.spare) < maxSpareSources {
		*d.src = fragSource{}
		r.spare = append(r.spare, d.src)
	}
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
	s := d.src
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
		r.sourceGoneLocked(d)
	}
	d.prev, d.next, d.src, d.sprev, d.snext = nil, nil, nil, nil, nil
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
		keep := r.keepsHeadForQuote(d)
		for k, p := range d.parts {
			if k > 0 || !keep {
				r.free(p.b)
			}
		}
		clear(d.parts[1:])
		d.parts = d.parts[:min(len(d.parts), 1)]
		if !keep {
			d.parts = d.parts[:0]
		}
		out = append(out, d)
	}
	return out
}

// keepsHeadForQuote reports whether d's first fragment, which heads its
// parts with its header in front, is kept for a QuoteLen quote.
func (r *Reassembler) keepsHeadForQuote(d *fragDatagram) bool {
	return r.quoteLen > 0 && len(d.parts) > 0 && d.parts[0].off == 0
}

// notify makes the OnTimeout calls, without locks, then recycles.
func (r *Reassembler) notify(expired []*fragDatagram) {
	for _, d := range expired {
		r.onTimeout(d.key, r.quote(d))
		if len(d.parts) > 0 {
			r.free(d.parts[0].b)
			d.parts[0] = fragPart{}
			d.parts = d.parts[:0]
		}
		recycleFragDatagram(d)
	}
}

// quote is what OnTimeout receives of d's first fragment: with QuoteLen,
// the held head with its header restored in front, cut to QuoteLen bytes;
// else the header and 8 bytes copied when it arrived.
func (r *Reassembler) quote(d *fragDatagram) []byte {
	if len(d.parts) == 0 {
		return d.first[:d.firstLen]
	}
	b := d.parts[0].b
	b.Prepend(d.firstHdr)
	p := b.Bytes()
	return p[:min(len(p), r.quoteLen)]
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
	r.publishLocked()
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
func (r *Reassembler) Stats() *Stats { return r.stats }

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
	r.publishLocked()
}
