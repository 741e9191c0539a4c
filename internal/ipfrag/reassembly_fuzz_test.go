package ipfrag

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/internal/fakeclock"
)

// reasmFuzzFrag remembers what was fed for a key: the datagram bytes
// [off, off+n), all following the key's pattern except the byte at cpos
// (when not -1), which is inverted.
type reasmFuzzFrag struct {
	off, n int
	more   bool
	cpos   int
}

var reasmFuzzPatterns sync.Map // key byte -> []byte

// reasmFuzzPattern returns the bytes fed for k, indexed by datagram
// position, computed once per key so that building a fragment is a copy.
func reasmFuzzPattern(k Key) []byte {
	kb := byte(k.ID)*7 ^ k.Src.As16()[15]*3 ^ k.Protocol
	if t, ok := reasmFuzzPatterns.Load(kb); ok {
		return t.([]byte)
	}
	t := make([]byte, 2<<16) // beyond any offset plus length
	for p := range t {
		t[p] = byte(p) ^ byte(p>>8)*31 ^ kb
	}
	reasmFuzzPatterns.Store(kb, t)
	return t
}

// FuzzReassembler decodes the input as a configuration byte (bits 0-1
// memory threshold, 2-3 MaxPerSource, 4 MaxDatagrams, 5 IPv6 mode: IPv6's
// limits, RFC 5722's strict overlaps and ICMPv6's long quote) followed by
// 6-byte fragment records:
//
//	0: bits 0-1 ID, bit 2 source, bit 3 protocol (IPv6: another ID), bit 4
//	   MF, bit 5 corrupt one byte, bit 6 advance the clock by half the
//	   timeout, bit 7 a longer header (IPv4 24 bytes, IPv6 56: a
//	   destination options header before the fragment header)
//	1-2: fragment offset field (13 bits, big endian)
//	3-4: payload length: byte 3 plus bits 0-2 of byte 4 as high bits, or
//	   bytes 3-4 as 16 bits when bit 7 of byte 4 is set; bit 5 of byte 4
//	   calls Expire first; bit 6 misaligns the offset by byte 5 & 7
//	5: which byte to corrupt
//
// and checks the invariants: no panic, memory within [0, HighThresh] after
// every call, every returned datagram as long as some last fragment's end and
// made of bytes that were fed at those positions, in IPv6 mode no datagram
// completed from fragments that overlapped (other than exact duplicates),
// every buffer handed back exactly once, and nothing held after Close.
func FuzzReassembler(f *testing.F) {
	f.Add([]byte{0x00,
		0x10, 0x00, 0x00, 0x10, 0x00, 0x00,
		0x00, 0x00, 0x02, 0x08, 0x00, 0x00,
		0x10, 0x00, 0x01, 0x08, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		cfgByte := data[0]
		data = data[1:]
		tsz := buffer.Get(1).Truesize()
		high := [...]int{0, 8 * tsz, 24 * tsz, 64 * tsz}[cfgByte&3]
		effHigh := high
		if effHigh == 0 {
			effHigh = 4 << 20
		}
		clk := fakeclock.New()
		const timeout = 30 * time.Second
		v6 := cfgByte&0x20 != 0
		cfg := Config{
			Timeout:      timeout,
			HighThresh:   high,
			LowThresh:    high / 4 * 3,
			MaxPerSource: [...]int{0, 1, 2, -1}[cfgByte>>2&3],
			MaxDatagrams: [...]int{0, 3}[cfgByte>>4&1],
			Now:          clk.Now,
			OnTimeout: func(key Key, first []byte) {
				if len(first) < IPv4.MinHeaderLen || first[0]>>4 != 4 || len(first) != int(first[0]&0xf)*4+8 {
					t.Errorf("OnTimeout(%v) quote of %d bytes: %x", key, len(first), first)
				}
			},
		}
		if v6 {
			cfg.Limits, cfg.StrictOverlap, cfg.QuoteLen = IPv6, true, reasmFuzzQuote6
			cfg.OnTimeout = func(key Key, first []byte) {
				if len(first) < IPv6.MinHeaderLen || len(first) > reasmFuzzQuote6 || first[0] != 0x60 {
					t.Errorf("OnTimeout(%v) quote of %d bytes: %x", key, len(first), first)
				}
			}
		}
		h := newReasmHarness(t, cfg)
		hist := make(map[Key][]reasmFuzzFrag)
		var frags, completed uint64
		// Bound the work per input so that the fuzzer keeps its pace.
		for count, fed := 0, 0; len(data) >= 6 && count < 256 && fed < 256<<10; count++ {
			rec := data[:6]
			data = data[6:]
			k := reasmFuzzKey(rec[0], v6)
			more := rec[0]&0x10 != 0
			if rec[0]&0x40 != 0 {
				clk.Advance(timeout / 2)
			}
			hl := [2][2]int{{20, 24}, {48, 56}}[b2i(v6)][rec[0]>>7]
			off := int(binary.BigEndian.Uint16(rec[1:3])&0x1fff) * 8
			if rec[4]&0x40 != 0 {
				off += int(rec[5] & 7)
			}
			n := int(rec[3]) | int(rec[4]&7)<<8
			if rec[4]&0x80 != 0 {
				n = int(binary.BigEndian.Uint16(rec[3:5]))
			}
			fed += n
			cpos := -1
			if rec[0]&0x20 != 0 && n > 0 {
				cpos = off + int(rec[5])%n
			}
			if rec[4]&0x20 != 0 {
				h.r.Expire()
			}

			var frag Fragment
			if v6 {
				frag = reasmFuzzFrag6(k, hl, off, more, reasmFuzzPattern(k)[off:off+n])
			} else {
				frag = reasmFrag(k, hl, off, more, reasmFuzzPattern(k)[off:off+n])
			}
			if cpos >= 0 {
				frag.Buf.Bytes()[hl+cpos-off] ^= 0xff
			}
			fr := reasmFuzzFrag{off: off, n: n, more: more, cpos: cpos}
			// Add expires what timed out before it adds; doing it here
			// first lets the history forget those datagrams, so that a
			// fragment starting a new one with the same key is not taken
			// for an overlap of the old one.
			h.r.Expire()
			reasmFuzzForget(h.r, hist)
			droppedAlone := reasmFuzzAloneDrops(h.r.Stats())
			head, ok := h.add(frag)
			switch {
			case off == 0 && !more:
				// Not a fragment: returned alone, leaving any reassembly
				// with the same key untouched.
				if !ok {
					t.Fatal("non-fragment not returned")
				}
				reasmFuzzCheck(t, k, head, []reasmFuzzFrag{fr})
			case ok:
				frags++
				completed++
				if v6 {
					reasmFuzzCheckStrict(t, k, append(hist[k], fr))
				}
				reasmFuzzCheck(t, k, head, append(hist[k], fr))
				delete(hist, k)
			default:
				frags++
				// The history is that of the datagram now held: a fragment
				// dropped alone is left out, and one that killed it (or a
				// datagram gone otherwise) starts it afresh.
				if reasmFuzzAloneDrops(h.r.Stats()) == droppedAlone {
					hist[k] = append(hist[k], fr)
				}
			}
			reasmFuzzForget(h.r, hist)
			if m := h.r.MemoryUsed(); m < 0 || m > effHigh {
				t.Fatalf("MemoryUsed = %d, outside [0, %d]", m, effHigh)
			}
			if n := h.r.InFlight(); n < 0 {
				t.Fatalf("InFlight = %d", n)
			}
			reasmCheckSources(t, h.r)
		}
		if st := h.r.Stats(); st.Fragments.Load() != frags || st.Reassembled.Load() != completed {
			t.Errorf("stats count %d fragments, %d reassembled; fed %d, got %d", st.Fragments.Load(), st.Reassembled.Load(), frags, completed)
		}
		h.finish()
	})
}

// reasmFuzzCheck verifies a returned datagram against what was fed for its
// key since the key last completed.
func reasmFuzzCheck(t *testing.T, k Key, head *buffer.Buffer, hist []reasmFuzzFrag) {
	t.Helper()
	total := head.ChainLen()
	if head.Next != nil {
		for p := head; p != nil; p = p.Next {
			if p.Len() == 0 {
				t.Fatalf("empty part in a %d-byte chain", total)
			}
		}
	}
	endOK := false
	for _, fr := range hist {
		if !fr.more && fr.off+fr.n == total {
			endOK = true
		}
	}
	if !endOK {
		t.Fatalf("datagram of %d bytes, but no last fragment ends there: %+v", total, hist)
	}
	plain := make([]bool, total)   // some fragment fed the pattern byte here
	flipped := make([]bool, total) // some fragment fed the inverted byte here
	for _, fr := range hist {
		for p := max(fr.off, 0); p < min(fr.off+fr.n, total); p++ {
			if p == fr.cpos {
				flipped[p] = true
			} else {
				plain[p] = true
			}
		}
	}
	got := reasmCollect(head)
	pat := reasmFuzzPattern(k)
	for p, c := range got {
		want := pat[p]
		if !(c == want && plain[p] || c == want^0xff && flipped[p]) {
			t.Fatalf("byte %d of %d = %#x, never fed there (pattern %#x)", p, total, c, want)
		}
	}
}

// reasmFuzzQuote6 is the quote the stack asks of IPv6 reassembly: what
// fits in a 1280-byte ICMPv6 error.
const reasmFuzzQuote6 = 1280 - 40 - 8

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// reasmFuzzKey is the key a record's first byte selects.
func reasmFuzzKey(c byte, v6 bool) Key {
	if v6 {
		k := Key{
			Src: netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1 + c>>2&1}),
			Dst: netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 200}),
			ID:  0x10000 + uint32(c&3),
		}
		if c&8 != 0 {
			k.ID += 4
		}
		return k
	}
	k := Key{
		Src:      netip.AddrFrom4([4]byte{192, 0, 2, 1 + c>>2&1}),
		Dst:      netip.AddrFrom4([4]byte{192, 0, 2, 200}),
		Protocol: 17,
		ID:       100 + uint32(c&3),
	}
	if c&8 != 0 {
		k.Protocol = 1
	}
	return k
}

// reasmFuzzFrag6 is reasmFrag for IPv6.
func reasmFuzzFrag6(key Key, hl, off int, more bool, payload []byte) Fragment {
	b := buffer.Get(hl + len(payload))
	b.SetLen(hl + len(payload))
	p := b.Bytes()
	reasmPutHeader6(p[:hl], key, off, more)
	copy(p[hl:], payload)
	return Fragment{Key: key, Offset: off, More: more, HeaderLen: hl, Buf: b}
}

// reasmPutHeader6 writes a plausible IPv6 header, a destination options
// header when there is room, and the fragment header.
func reasmPutHeader6(h []byte, key Key, off int, more bool) {
	clear(h)
	h[0] = 0x60
	h[6], h[7] = 44, 64
	s, d := key.Src.As16(), key.Dst.As16()
	copy(h[8:24], s[:])
	copy(h[24:40], d[:])
	if len(h) > 48 {
		h[6], h[40], h[41] = 60, 44, 0 // a destination options header of PadN
		h[42], h[43] = 1, 4
	}
	f := h[len(h)-8:]
	f[0] = 17
	of := uint16(off/8) << 3
	if more {
		of |= 1
	}
	binary.BigEndian.PutUint16(f[2:], of)
	binary.BigEndian.PutUint32(f[4:], key.ID)
}

// reasmFuzzAloneDrops counts the fragments dropped without touching their
// datagram.
func reasmFuzzAloneDrops(st *Stats) uint64 {
	return st.Duplicates.Load() + st.BadFragment.Load() + st.Tombstoned.Load() + st.Oversize.Load()
}

// reasmFuzzForget drops the history of every key whose datagram the
// reassembler no longer holds: dropped (overlap, length conflict,
// oversize), evicted or timed out.
func reasmFuzzForget(r *Reassembler, hist map[Key][]reasmFuzzFrag) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range hist {
		if d, ok := r.table[k]; !ok || d.dead {
			delete(hist, k)
		}
	}
}

// reasmFuzzCheckStrict checks RFC 5722 on a completed datagram's history:
// each fragment was either new bytes only or an exact duplicate of bytes
// held; any other overlap should have dropped the datagram.
func reasmFuzzCheckStrict(t *testing.T, k Key, hist []reasmFuzzFrag) {
	t.Helper()
	pat := reasmFuzzPattern(k)
	held := map[int]byte{}
	for _, fr := range hist {
		covered := 0
		same := true
		for p := fr.off; p < fr.off+fr.n; p++ {
			c := pat[p]
			if p == fr.cpos {
				c ^= 0xff
			}
			if hc, ok := held[p]; ok {
				covered++
				same = same && hc == c
			}
		}
		switch {
		case covered == 0:
			for p := fr.off; p < fr.off+fr.n; p++ {
				c := pat[p]
				if p == fr.cpos {
					c ^= 0xff
				}
				held[p] = c
			}
		case covered == fr.n && same:
			// An exact duplicate: dropped alone.
		default:
			t.Fatalf("IPv6 datagram %v completed although fragment %+v overlapped held data: %+v", k, fr, hist)
		}
	}
}

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the IPv6 seeds of FuzzReassembler under testdata/fuzz")

// reasmFuzzRec encodes one FuzzReassembler record: c is byte 0 less its
// MF bit, off the byte offset (a multiple of 8), n the payload length.
func reasmFuzzRec(c byte, off, n int, more bool, corrupt byte) []byte {
	if more {
		c |= 0x10
	}
	r := []byte{c, byte(off / 8 >> 8), byte(off / 8), byte(n), byte(n>>8) & 7, corrupt}
	if n > 2047 {
		r[3], r[4] = byte(n), byte(n>>8)|0x80
	}
	return r
}

// reasmFuzzSeeds6 are FuzzReassembler seeds in IPv6 mode (configuration
// bit 5), by name.
func reasmFuzzSeeds6() map[string][]byte {
	in := func(cfg byte, recs ...[]byte) []byte {
		b := []byte{cfg | 0x20}
		for _, r := range recs {
			b = append(b, r...)
		}
		return b
	}
	rec := reasmFuzzRec
	many := func(n int) [][]byte {
		var rs [][]byte
		for i := range n {
			rs = append(rs, rec(byte(i&3)|byte(i>>2&1)<<2, 0, 1232, true, 0))
		}
		return rs
	}
	misaligned := rec(0, 8, 16, true, 3)
	misaligned[4] |= 0x40 // offset 11
	return map[string][]byte{
		"v6-inorder":            in(0, rec(0, 0, 1232, true, 0), rec(0, 1232, 1232, true, 0), rec(0, 2464, 100, false, 0)),
		"v6-reverse":            in(0, rec(0, 2464, 100, false, 0), rec(0, 1232, 1232, true, 0), rec(0, 0, 1232, true, 0)),
		"v6-overlap-same-bytes": in(0, rec(0, 0, 1232, true, 0), rec(0, 1224, 108, false, 0), rec(0, 1232, 100, false, 0)),
		"v6-exact-duplicate":    in(0, rec(0, 0, 1232, true, 0), rec(0, 0, 1232, true, 0), rec(0, 1232, 8, false, 0)),
		"v6-duplicate-inside":   in(0, rec(0, 0, 1232, true, 0), rec(0, 8, 16, true, 0), rec(0, 1232, 8, false, 0)),
		"v6-teardrop":           in(0, rec(0, 0, 64, true, 0), rec(0x20, 32, 64, false, 5), rec(0, 64, 32, false, 0)),
		"v6-two-ends":           in(0, rec(0, 0, 64, true, 0), rec(0, 128, 8, false, 0), rec(0, 64, 8, false, 0)),
		"v6-past-65535":         in(0, rec(0, 65528, 16, false, 0), rec(0, 0, 64, true, 0)),
		"v6-dest-options":       in(0, rec(0x80, 0, 64, true, 0), rec(0, 64, 64, false, 0)),
		"v6-timeout":            in(0, rec(0, 0, 64, true, 0), rec(0x40|1, 0, 8, true, 0), rec(0x40|1, 8, 8, true, 0), rec(0x40|2, 0, 8, true, 0)),
		"v6-memory":             in(1, many(24)...),
		"v6-per-source":         in(1<<2, many(8)...),
		"v6-non-fragment":       in(0, rec(0, 0, 64, true, 0), rec(0, 0, 40, false, 0), rec(0, 64, 8, false, 0)),
		"v6-misaligned":         in(0, rec(0, 0, 60, true, 0), misaligned, rec(0, 0, 64, true, 0), rec(0, 64, 8, false, 0)),
	}
}

// TestFuzzReassemblerSeeds6 checks that testdata/fuzz/FuzzReassembler holds
// the IPv6 seeds built by reasmFuzzSeeds6 (go test -run
// TestFuzzReassemblerSeeds6 -update-seeds rewrites them).
func TestFuzzReassemblerSeeds6(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzReassembler")
	for name, b := range reasmFuzzSeeds6() {
		want := fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b)
		path := filepath.Join(dir, name)
		if *updateSeeds {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is missing or stale (%v): run go test -run TestFuzzReassemblerSeeds6 -update-seeds", path, err)
		}
	}
}

// reasmCheckSources fails when the per-source records disagree with the
// table: every datagram (tombstones too) points to its source's record,
// each record counts and lists exactly its source's datagrams, and no
// record outlives its last datagram.
func reasmCheckSources(t *testing.T, r *Reassembler) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	count := make(map[[16]byte]int)
	for _, d := range r.table {
		k := d.key.Src.As16()
		if s := r.sources[k]; s == nil || d.src != s {
			t.Fatalf("datagram %v: source record %p, the table's %p", d.key, d.src, s)
		}
		count[k]++
	}
	if len(count) != len(r.sources) {
		t.Fatalf("%d source records for %d sources with datagrams", len(r.sources), len(count))
	}
	for k, s := range r.sources {
		n := 0
		for d := s.oldest; d != nil; d = d.snext {
			if d.src != s {
				t.Fatalf("source %x lists a datagram of another", k)
			}
			n++
		}
		if s.n != count[k] || n != count[k] {
			t.Fatalf("source %x: record counts %d, lists %d; the table holds %d", k, s.n, n, count[k])
		}
	}
}
