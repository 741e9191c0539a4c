package ipfrag

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/internal/fakeclock"
)

var reasmKey6 = Key{Src: netip.MustParseAddr("2001:db8::1"), Dst: netip.MustParseAddr("2001:db8::2"), ID: 0xdeadbeef}

// reasmFrag6 builds an IPv6 fragment whose unfragmentable part and
// fragment header take hl bytes (filled with a recognisable pattern: the
// reassembler never reads them).
func reasmFrag6(hl, off int, more bool, payload []byte) Fragment {
	b := buffer.Get(hl + len(payload))
	b.SetLen(hl + len(payload))
	p := b.Bytes()
	for i := range hl {
		p[i] = 0x60 + byte(i)
	}
	copy(p[hl:], payload)
	return Fragment{Key: reasmKey6, Offset: off, More: more, HeaderLen: hl, Buf: b}
}

func newReasmHarness6(t *testing.T, cfg Config) *reasmHarness {
	cfg.Limits, cfg.StrictOverlap = IPv6, true
	return newReasmHarness(t, cfg)
}

// TestReassembleIPv6HeaderLen checks that AddFragment reports the first
// fragment's header length (not the last one's), which the stack needs to
// rebuild the IPv6 header chain, and that the header still sits in front of
// the head.
func TestReassembleIPv6HeaderLen(t *testing.T) {
	h := newReasmHarness6(t, Config{})
	payload := reasmPayload(64, 9)
	h.add(reasmFrag6(48, 32, false, payload[32:]))
	first := reasmFrag6(56, 0, true, payload[:32]) // a destination options header before the fragment header
	h.mu.Lock()
	h.out[first.Buf]++
	h.n++
	h.mu.Unlock()
	head, hl, ok := h.r.AddFragment(first)
	if !ok || hl != 56 {
		t.Fatalf("AddFragment = ok %v, header length %d; want true, 56", ok, hl)
	}
	for p := head; p != nil; p = p.Next {
		h.released(p)
	}
	if hdr := head.Prepend(hl); hdr[0] != 0x60 || hdr[55] != 0x60+55 {
		t.Errorf("header in front of the head = %x", hdr)
	}
	head.TrimFront(hl)
	if got := reasmCollect(head); !bytes.Equal(got, payload) {
		t.Errorf("payload %x, want %x", got, payload)
	}
	h.finish()
}

// TestReassembleIPv6OverlapStrict checks RFC 5722 in strict mode: an
// overlap drops the whole datagram even with identical bytes (IPv4 merges
// those), while an exact duplicate is only dropped itself (erratum 3089).
func TestReassembleIPv6OverlapStrict(t *testing.T) {
	payload := reasmPayload(48, 3)
	t.Run("identical overlap", func(t *testing.T) {
		h := newReasmHarness6(t, Config{})
		h.add(reasmFrag6(48, 0, true, payload[:24]))
		h.add(reasmFrag6(48, 16, true, payload[16:32])) // shares 8 identical bytes
		if _, ok := h.add(reasmFrag6(48, 32, false, payload[32:])); ok {
			t.Fatal("datagram completed despite an overlap")
		}
		st := h.r.Stats()
		if st.Overlaps.Load() != 1 || st.Tombstoned.Load() != 1 {
			t.Errorf("Overlaps %d Tombstoned %d, want 1 1", st.Overlaps.Load(), st.Tombstoned.Load())
		}
		h.finish()
	})
	t.Run("exact duplicate", func(t *testing.T) {
		h := newReasmHarness6(t, Config{})
		h.add(reasmFrag6(48, 0, true, payload[:24]))
		h.add(reasmFrag6(48, 0, true, payload[:24]))
		head, ok := h.add(reasmFrag6(48, 24, false, payload[24:]))
		if !ok || !bytes.Equal(reasmCollect(head), payload) {
			t.Fatalf("datagram not completed after a duplicate (ok %v, head %v)", ok, head != nil)
		}
		if st := h.r.Stats(); st.Duplicates.Load() != 1 || st.Overlaps.Load() != 0 {
			t.Errorf("Duplicates %d Overlaps %d, want 1 0", st.Duplicates.Load(), st.Overlaps.Load())
		}
		h.finish()
	})
}

// TestReassembleIPv6QuoteLen checks that with QuoteLen the timeout hook
// gets the first fragment whole, its headers included, up to QuoteLen
// bytes: ICMPv6 quotes up to 1280 bytes, not a header and 8 bytes.
func TestReassembleIPv6QuoteLen(t *testing.T) {
	clk := fakeclock.New()
	var got [][]byte
	h := newReasmHarness6(t, Config{Now: clk.Now, Timeout: time.Minute, QuoteLen: 1232,
		OnTimeout: func(_ Key, first []byte) { got = append(got, bytes.Clone(first)) }})
	payload := reasmPayload(2000, 5)
	f := reasmFrag6(48, 0, true, payload[:1400])
	want := bytes.Clone(f.Buf.Bytes()[:1232])
	h.add(f)
	clk.Advance(time.Minute)
	h.r.Expire()
	if len(got) != 1 || !bytes.Equal(got[0], want) {
		t.Fatalf("OnTimeout quotes = %d, first %d bytes; want one of 1232 bytes equal to the fragment's start", len(got), len(got[0]))
	}
	h.finish()
}

// TestReassembleIPv6Oversize checks RFC 8200's limit: a fragment that
// would make the payload length exceed 65535 is dropped.
func TestReassembleIPv6Oversize(t *testing.T) {
	h := newReasmHarness6(t, Config{})
	h.add(reasmFrag6(48, 65528, false, make([]byte, 7))) // 65535 bytes after the fragment header
	if st := h.r.Stats(); st.Oversize.Load() != 0 {
		t.Errorf("Oversize %d for a payload of 65535 with a 48-byte header", st.Oversize.Load())
	}
	h.add(reasmFrag6(48, 65528, false, make([]byte, 8)))
	if st := h.r.Stats(); st.Oversize.Load() != 1 {
		t.Errorf("Oversize = %d, want 1", st.Oversize.Load())
	}
	h.finish()
}

// BenchmarkReassemble6 reassembles a 65527-byte UDP payload over IPv6 from
// fragments of a 1500-byte MTU (1448 bytes each behind 48 bytes of
// headers), with RFC 5722's strict overlap check, from pooled buffers.
func BenchmarkReassemble6(b *testing.B) {
	const total, chunk, hl = 65527 + 8, 1448, 48
	payload := reasmPayload(total, 2)
	r := NewReassembler(Config{Limits: IPv6, StrictOverlap: true, QuoteLen: 1232}, nil)
	defer r.Close()
	b.SetBytes(total)
	b.ReportAllocs()
	key := reasmKey6
	for i := 0; b.Loop(); i++ {
		key.ID = uint32(i)
		var head *buffer.Buffer
		var ok bool
		for off := 0; off < total; off += chunk {
			end := min(off+chunk, total)
			buf := buffer.Get(hl + end - off)
			buf.SetLen(hl + end - off)
			copy(buf.Bytes()[hl:], payload[off:end])
			head, _, ok = r.AddFragment(Fragment{Key: key, Offset: off, More: end < total, HeaderLen: hl, Buf: buf})
		}
		if !ok || head.ChainLen() != total {
			b.Fatal("not reassembled")
		}
		head.ReleaseChain()
	}
}
