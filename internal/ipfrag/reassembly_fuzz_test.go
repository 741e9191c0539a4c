package ipfrag

import (
	"encoding/binary"
	"net/netip"
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
	kb := byte(k.ID)*7 ^ k.Src.As4()[3]*3 ^ k.Protocol
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

// FuzzReassembler decodes the input as a configuration byte followed by
// 6-byte fragment records:
//
//	0: bits 0-1 ID, bit 2 source, bit 3 protocol, bit 4 MF, bit 5 corrupt one
//	   byte, bit 6 advance the clock by half the timeout, bit 7 24-byte header
//	1-2: fragment offset field (13 bits, big endian)
//	3-4: payload length: byte 3 plus bits 0-2 of byte 4 as high bits, or
//	   bytes 3-4 as 16 bits when bit 7 of byte 4 is set; bit 5 of byte 4
//	   calls Expire first; bit 6 misaligns the offset by byte 5 & 7
//	5: which byte to corrupt
//
// and checks the invariants: no panic, memory within [0, HighThresh] after
// every call, every returned datagram as long as some last fragment's end and
// made of bytes that were fed at those positions, every buffer handed back
// exactly once, and nothing held after Close.
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
		h := newReasmHarness(t, Config{
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
		})
		hist := make(map[Key][]reasmFuzzFrag)
		var frags, completed uint64
		// Bound the work per input so that the fuzzer keeps its pace.
		for count, fed := 0, 0; len(data) >= 6 && count < 256 && fed < 256<<10; count++ {
			rec := data[:6]
			data = data[6:]
			k := Key{
				Src:      netip.AddrFrom4([4]byte{192, 0, 2, 1 + rec[0]>>2&1}),
				Dst:      netip.AddrFrom4([4]byte{192, 0, 2, 200}),
				Protocol: 17,
				ID:       100 + uint32(rec[0]&3),
			}
			if rec[0]&8 != 0 {
				k.Protocol = 1
			}
			more := rec[0]&0x10 != 0
			if rec[0]&0x40 != 0 {
				clk.Advance(timeout / 2)
			}
			hl := 20
			if rec[0]&0x80 != 0 {
				hl = 24
			}
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

			frag := reasmFrag(k, hl, off, more, reasmFuzzPattern(k)[off:off+n])
			if cpos >= 0 {
				frag.Buf.Bytes()[hl+cpos-off] ^= 0xff
			}
			fr := reasmFuzzFrag{off: off, n: n, more: more, cpos: cpos}
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
				reasmFuzzCheck(t, k, head, append(hist[k], fr))
				delete(hist, k)
			default:
				frags++
				hist[k] = append(hist[k], fr)
			}
			if m := h.r.MemoryUsed(); m < 0 || m > effHigh {
				t.Fatalf("MemoryUsed = %d, outside [0, %d]", m, effHigh)
			}
			if n := h.r.InFlight(); n < 0 {
				t.Fatalf("InFlight = %d", n)
			}
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
