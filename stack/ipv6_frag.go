package stack

import (
	"encoding/binary"
	"slices"
	"sync"
	"time"

	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/ipv6"
)

// IPv6 reassembly (RFC 8200 §4.5): fragments wait per (source,
// destination, identification) for at most 60 s; a fragment overlapping
// another drops the whole datagram (RFC 5722); the memory held is bounded,
// like IPv4's, by Linux's thresholds (4 MiB, then nothing new until the
// oldest datagrams are dropped down to 3 MiB). When a datagram whose first
// fragment arrived times out, the sender gets ICMPv6 Time Exceeded code 1.

const (
	reasmTimeout6 = 60 * time.Second
	reasmHigh6    = 4 << 20
	reasmLow6     = 3 << 20
	// maxFragments6 bounds the fragments of one datagram: 65535 bytes
	// in the smallest fragments a sender may use on a 1280-byte link need
	// 53, so a few times that is generous and stops tiny-fragment floods.
	maxFragments6 = 256
)

type fragKey6 struct {
	src, dst [16]byte
	id       uint32
}

// fragPart is one fragment: its buffer and where its data is.
type fragPart struct {
	off, end  int // the data's place in the datagram
	dataStart int // where the data starts in b
	b         *buffer.Buffer
}

type reasmEntry6 struct {
	key       fragKey6
	parts     []fragPart // sorted by off
	haveFirst bool
	unfragLen int   // IPv6 header and extension headers before the fragment header
	protoPtr  int   // the byte naming the fragment header, to name the upper layer instead
	nextHdr   uint8 // what follows the fragment header
	total     int   // datagram length after the unfragmentable part; -1 until the last fragment
	mem       int
	deadline  time.Time
	nic       *NIC
	kind      castKind
}

type reassembler6 struct {
	s   *Stack
	mu  sync.Mutex
	m   map[fragKey6]*reasmEntry6
	mem int
}

func (r *reassembler6) init(s *Stack) {
	r.s = s
	r.m = make(map[fragKey6]*reasmEntry6)
}

// add takes a fragment (b, walked to its fragment header as ext says) and
// returns the reassembled packet when it completed one, nil otherwise. It
// takes ownership of b.
func (r *reassembler6) add(n *NIC, b *buffer.Buffer, ext ipv6.ExtHeaders, kind castKind) *buffer.Buffer {
	pkt := b.Bytes()
	f := ext.Fragment
	h := ipv6.Header(pkt)
	dataStart := f.HeaderOffset + fragmentHeaderLen
	part := fragPart{off: f.Offset, end: f.Offset + len(pkt) - dataStart, dataStart: dataStart, b: b}
	key := fragKey6{src: h.Src().As16(), dst: h.Dst().As16(), id: f.ID}
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.m[key]
	if e == nil {
		if r.mem+b.Truesize() > reasmHigh6 {
			r.evictLocked()
		}
		if r.mem+b.Truesize() > reasmHigh6 {
			r.fail(nil, b)
			return nil
		}
		e = &reasmEntry6{key: key, total: -1, deadline: time.Now().Add(reasmTimeout6), nic: n, kind: kind}
		r.m[key] = e
	}
	if !e.accept(part, f.More) {
		r.dropLocked(e)
		r.fail(nil, b)
		return nil
	}
	if part.off == 0 {
		e.haveFirst, e.unfragLen, e.protoPtr, e.nextHdr = true, f.HeaderOffset, fragmentPointer(pkt, f.HeaderOffset), ext.Protocol
	}
	e.mem += b.Truesize()
	r.mem += b.Truesize()
	if !e.complete() {
		return nil
	}
	delete(r.m, key)
	r.mem -= e.mem
	head := e.assemble()
	if head == nil {
		r.s.stats.IPv6.ReassemblyFailed.Add(1)
	}
	return head
}

// accept checks a new part against the others (RFC 5722: any overlap
// spoils the datagram; an exact duplicate too, as Linux treats it) and
// inserts it.
func (e *reasmEntry6) accept(p fragPart, more bool) bool {
	if len(e.parts) >= maxFragments6 || p.end == p.off && more {
		return false
	}
	if !more {
		if e.total >= 0 && e.total != p.end {
			return false
		}
		e.total = p.end
	}
	if e.total >= 0 && p.end > e.total {
		return false
	}
	i, _ := slices.BinarySearchFunc(e.parts, p.off, func(x fragPart, off int) int { return x.off - off })
	if i > 0 && e.parts[i-1].end > p.off || i < len(e.parts) && e.parts[i].off < p.end {
		return false
	}
	for _, q := range e.parts {
		if e.total >= 0 && q.end > e.total {
			return false
		}
	}
	e.parts = slices.Insert(e.parts, i, p)
	return true
}

// complete reports whether the parts cover the whole datagram.
func (e *reasmEntry6) complete() bool {
	if !e.haveFirst || e.total < 0 {
		return false
	}
	at := 0
	for _, p := range e.parts {
		if p.off != at {
			return false
		}
		at = p.end
	}
	return at == e.total
}

// assemble chains the parts behind the first fragment's headers, whose
// fragment header is cut out. It returns nil (having released everything)
// when the result would exceed IPv6's payload length.
func (e *reasmEntry6) assemble() *buffer.Buffer {
	if e.unfragLen-ipv6.HeaderLen+e.total > ipv6.MaxPayloadLen {
		for _, p := range e.parts {
			p.b.Release()
		}
		return nil
	}
	head := e.parts[0].b
	p := head.Bytes()
	copy(p[fragmentHeaderLen:], p[:e.unfragLen])
	head.TrimFront(fragmentHeaderLen)
	p = head.Bytes()
	p[e.protoPtr] = e.nextHdr
	binary.BigEndian.PutUint16(p[4:6], uint16(e.unfragLen-ipv6.HeaderLen+e.total))
	head.Truncate(e.unfragLen + e.parts[0].end)
	tail := head
	for _, q := range e.parts[1:] {
		q.b.TrimFront(q.dataStart)
		q.b.Truncate(q.end - q.off)
		tail.Next = q.b
		tail = q.b
	}
	return head
}

// fail counts a fragment that could not be kept and releases it.
func (r *reassembler6) fail(_ *reasmEntry6, b *buffer.Buffer) {
	r.s.stats.IPv6.ReassemblyFailed.Add(1)
	b.Release()
}

// dropLocked forgets e and releases its fragments.
func (r *reassembler6) dropLocked(e *reasmEntry6) {
	delete(r.m, e.key)
	r.mem -= e.mem
	for _, p := range e.parts {
		p.b.Release()
	}
	e.parts = nil
}

// evictLocked drops the datagrams closest to their deadline until the
// memory held is below the low threshold.
func (r *reassembler6) evictLocked() {
	for r.mem > reasmLow6 && len(r.m) > 0 {
		var oldest *reasmEntry6
		for _, e := range r.m {
			if oldest == nil || e.deadline.Before(oldest.deadline) {
				oldest = e
			}
		}
		r.dropLocked(oldest)
		r.s.stats.IPv6.ReassemblyFailed.Add(1)
	}
}

// expire drops the datagrams whose time is up, answering those whose first
// fragment arrived with Time Exceeded (fragment reassembly time exceeded).
func (r *reassembler6) expire(now time.Time) {
	type timedOut struct {
		n     *NIC
		first *buffer.Buffer
		kind  castKind
	}
	var out []timedOut
	r.mu.Lock()
	for _, e := range r.m {
		if now.Before(e.deadline) {
			continue
		}
		r.s.stats.IPv6.ReassemblyTimeout.Add(1)
		if e.haveFirst {
			first := e.parts[0].b.Clone()
			out = append(out, timedOut{e.nic, first, e.kind})
		}
		r.dropLocked(e)
	}
	r.mu.Unlock()
	for _, t := range out {
		r.s.sendICMPv6Error(t.n, t.first, ipv6.ICMPTimeExceeded, ipv6.CodeReassemblyTimeout, 0, t.kind)
		t.first.Release()
	}
}

// close releases every waiting fragment.
func (r *reassembler6) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.m {
		r.dropLocked(e)
	}
}

// fragmentPointer returns the offset of the next-header byte that names
// the fragment header at fragOff: the IPv6 header's, or that of the last
// extension header before it (which the walk already checked).
func fragmentPointer(pkt []byte, fragOff int) int {
	ptr, off := 6, ipv6.HeaderLen
	for off < fragOff {
		ptr = off
		off += (int(pkt[off+1]) + 1) * 8
	}
	return ptr
}
