package ipv4

import (
	"bytes"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/tapnet/tapnet/internal/checksum"
)

var (
	tGroup = netip.MustParseAddr("239.1.2.3")
	tSrc1  = netip.MustParseAddr("192.0.2.7")
	tSrc2  = netip.MustParseAddr("198.51.100.9")
)

func TestIGMPCode(t *testing.T) {
	for _, tc := range []struct {
		code uint8
		val  int
	}{
		{0, 0}, {1, 1}, {100, 100}, {127, 127},
		{0x80, 128}, {0x81, 136}, {0x8f, 248}, {0x90, 256}, {0xff, 31744},
	} {
		if got := DecodeIGMPCode(tc.code); got != tc.val {
			t.Errorf("Decode(%#x) = %d, want %d", tc.code, got, tc.val)
		}
		if got := EncodeIGMPCode(tc.val); got != tc.code {
			t.Errorf("Encode(%d) = %#x, want %#x", tc.val, got, tc.code)
		}
	}
	// Every value encodes to the largest code not above it.
	for v := 0; v < 40000; v += 7 {
		c := EncodeIGMPCode(v)
		d := DecodeIGMPCode(c)
		if d > v && v <= 31744 || d > 31744 {
			t.Fatalf("Encode(%d) = %#x decodes to %d", v, c, d)
		}
		if c < 0xff && DecodeIGMPCode(c+1) <= v && c != 127 {
			t.Fatalf("Encode(%d) = %#x is not the largest fitting code", v, c)
		}
	}
	if EncodeIGMPCode(-5) != 0 {
		t.Fatal("negative values encode to 0")
	}
}

func TestIGMPv2Messages(t *testing.T) {
	for _, tc := range []struct {
		typ, code uint8
		version   int
		maxResp   time.Duration
	}{
		{IGMPMembershipQuery, 0, 1, 10 * time.Second},
		{IGMPMembershipQuery, 100, 2, 10 * time.Second},
		{IGMPMembershipQuery, 5, 2, 500 * time.Millisecond},
		{IGMPv2MembershipReport, 0, 0, 0},
		{IGMPv1MembershipReport, 0, 0, 0},
		{IGMPv2LeaveGroup, 0, 0, 0},
	} {
		b := make([]byte, IGMPLen)
		PutIGMP(b, tc.typ, tc.code, tGroup)
		m, err := ParseIGMP(b)
		if err != nil {
			t.Fatalf("%#x: %v", tc.typ, err)
		}
		if m.Type() != tc.typ || m.MaxRespCode() != tc.code || m.Group() != tGroup || m.QueryVersion() != tc.version {
			t.Errorf("%#x: parsed type %#x code %d group %v version %d", tc.typ, m.Type(), m.MaxRespCode(), m.Group(), m.QueryVersion())
		}
		if tc.version != 0 && m.MaxRespTime() != tc.maxResp {
			t.Errorf("%#x/%d: max resp %v, want %v", tc.typ, tc.code, m.MaxRespTime(), tc.maxResp)
		}
		b[5] ^= 1
		if _, err := ParseIGMP(b); err != ErrIGMPChecksum {
			t.Errorf("corrupted: %v, want ErrIGMPChecksum", err)
		}
	}
}

func TestIGMPv3Query(t *testing.T) {
	q := IGMPv3Query{MaxRespCode: 0x8f, Group: tGroup, S: true, QRV: 3, QQIC: 125, Sources: []netip.Addr{tSrc1, tSrc2}}
	b := make([]byte, q.Len())
	q.Put(b)
	m, err := ParseIGMP(b)
	if err != nil {
		t.Fatal(err)
	}
	if m.QueryVersion() != 3 || m.Group() != tGroup || !m.SuppressRouterProcessing() || m.QRV() != 3 ||
		m.QueryInterval() != 125*time.Second || m.MaxRespTime() != 24800*time.Millisecond ||
		m.NumSources() != 2 || m.Source(0) != tSrc1 || m.Source(1) != tSrc2 {
		t.Fatalf("parsed %x wrong", b)
	}
	// A general query: the group is zero.
	g := IGMPv3Query{MaxRespCode: 10}
	gb := make([]byte, g.Len())
	g.Put(gb)
	if m, err := ParseIGMP(gb); err != nil || !m.Group().IsUnspecified() || m.NumSources() != 0 {
		t.Fatalf("general query: %v %v", m, err)
	}
	// Lengths between v2 and v3 are invalid; a source count past the end
	// is truncated.
	if _, err := ParseIGMP(withChecksum(append(slices.Clone(gb[:8]), 0, 0))); err != ErrIGMPLength {
		t.Errorf("10-byte query: %v", err)
	}
	short := slices.Clone(b[:len(b)-4])
	if _, err := ParseIGMP(withChecksum(short)); err != ErrIGMPTruncated {
		t.Errorf("truncated sources: %v", err)
	}
	if _, err := ParseIGMP(b[:7]); err != ErrIGMPTooShort {
		t.Errorf("7 bytes: %v", err)
	}
}

func withChecksum(b []byte) []byte {
	b[2], b[3] = 0, 0
	c := checksum.Checksum(b)
	b[2], b[3] = byte(c>>8), byte(c)
	return b
}

func TestIGMPv3Report(t *testing.T) {
	recs := []GroupRecordFields{
		{Type: ChangeToExcludeMode, Group: tGroup},
		{Type: AllowNewSources, Group: netip.MustParseAddr("239.9.9.9"), Sources: []netip.Addr{tSrc1, tSrc2}},
		{Type: ModeIsInclude, Group: netip.MustParseAddr("224.0.0.251"), Sources: []netip.Addr{tSrc2}},
	}
	b := make([]byte, IGMPv3ReportLen(recs))
	if n := PutIGMPv3Report(b, recs); n != 8+8+16+12 || n != len(b) {
		t.Fatalf("length %d", n)
	}
	m, err := ParseIGMP(b)
	if err != nil {
		t.Fatal(err)
	}
	if m.Type() != IGMPv3MembershipReport || m.NumRecords() != 3 {
		t.Fatalf("type %#x records %d", m.Type(), m.NumRecords())
	}
	i := 0
	for r := range m.Records() {
		want := recs[i]
		if r.Type() != want.Type || r.Group() != want.Group || r.NumSources() != len(want.Sources) || r.AuxDataLen() != 0 {
			t.Fatalf("record %d: %x", i, []byte(r))
		}
		for j, s := range want.Sources {
			if r.Source(j) != s {
				t.Fatalf("record %d source %d: %v", i, j, r.Source(j))
			}
		}
		i++
	}
	if i != 3 {
		t.Fatalf("iterated %d records", i)
	}
	// Claiming one more record than present is truncation.
	bad := slices.Clone(b)
	bad[7]++
	if _, err := ParseIGMP(withChecksum(bad)); err != ErrIGMPTruncated {
		t.Errorf("extra record: %v", err)
	}
	// So is a source count past the end, and auxiliary data past it.
	bad = slices.Clone(b)
	bad[8+8+3] = 9
	if _, err := ParseIGMP(withChecksum(bad)); err != ErrIGMPTruncated {
		t.Errorf("long source count: %v", err)
	}
	bad = slices.Clone(b)
	bad[8+1] = 200
	if _, err := ParseIGMP(withChecksum(bad)); err != ErrIGMPTruncated {
		t.Errorf("long aux data: %v", err)
	}
}

func TestRouterAlertHeader(t *testing.T) {
	b := make([]byte, RouterAlertHeaderLen+IGMPLen)
	PutRouterAlertHeader(b, Fields{TOS: IGMPTOS, TotalLen: len(b), ID: 7, DF: true, TTL: 1, Protocol: ProtocolIGMP,
		Src: tSrc1, Dst: AllRoutersGroup})
	PutIGMP(b[RouterAlertHeaderLen:], IGMPv2LeaveGroup, 0, tGroup)
	h, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.HeaderLen() != 24 || h.TTL() != 1 || h.TOS() != 0xc0 || !h.DontFragment() || h.Protocol() != ProtocolIGMP ||
		h.Src() != tSrc1 || h.Dst() != AllRoutersGroup || !bytes.Equal(b[20:24], []byte{0x94, 4, 0, 0}) {
		t.Fatalf("header %x", b[:24])
	}
}

// FuzzIGMP checks that ParseIGMP never panics, that the accessors of an
// accepted message stay inside it, and that re-encoding a parsed message
// gives back the same bytes.
func FuzzIGMP(f *testing.F) {
	q := IGMPv3Query{MaxRespCode: 100, Group: tGroup, QRV: 2, QQIC: 125, Sources: []netip.Addr{tSrc1}}
	qb := make([]byte, q.Len())
	q.Put(qb)
	f.Add(qb)
	v2 := make([]byte, IGMPLen)
	PutIGMP(v2, IGMPv2MembershipReport, 0, tGroup)
	f.Add(v2)
	recs := []GroupRecordFields{{Type: ModeIsExclude, Group: tGroup, Sources: []netip.Addr{tSrc2}}}
	rb := make([]byte, IGMPv3ReportLen(recs))
	PutIGMPv3Report(rb, recs)
	f.Add(rb)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseIGMP(b)
		if err != nil {
			return
		}
		_ = m.Group()
		_ = m.MaxRespCode()
		switch {
		case m.QueryVersion() == 3:
			_ = m.MaxRespTime()
			_ = m.QueryInterval()
			q := IGMPv3Query{MaxRespCode: m.MaxRespCode(), Group: m.Group(), S: m.SuppressRouterProcessing(), QRV: m.QRV(), QQIC: b[9]}
			for i := 0; i < m.NumSources(); i++ {
				q.Sources = append(q.Sources, m.Source(i))
			}
			out := make([]byte, q.Len())
			q.Put(out)
			if q.Len() == len(b) && b[8]&0xf0 == 0 && !sameButChecksum(out, b) {
				t.Fatalf("query round trip: %x -> %x", b, out)
			}
		case m.Type() == IGMPv3MembershipReport:
			var recs []GroupRecordFields
			aux := false
			for r := range m.Records() {
				rf := GroupRecordFields{Type: r.Type(), Group: r.Group()}
				for i := 0; i < r.NumSources(); i++ {
					rf.Sources = append(rf.Sources, r.Source(i))
				}
				aux = aux || r.AuxDataLen() > 0
				recs = append(recs, rf)
			}
			if len(recs) != m.NumRecords() {
				t.Fatalf("iterated %d of %d records", len(recs), m.NumRecords())
			}
			out := make([]byte, IGMPv3ReportLen(recs))
			PutIGMPv3Report(out, recs)
			// Reserved bytes and auxiliary data are not rebuilt.
			if !aux && len(out) == len(b) && b[1] == 0 && b[4] == 0 && b[5] == 0 && !sameButChecksum(out, b) {
				t.Fatalf("report round trip: %x -> %x", b, out)
			}
			if _, err := ParseIGMP(out); err != nil {
				t.Fatalf("rebuilt report does not parse: %v", err)
			}
		case len(b) == IGMPLen:
			out := make([]byte, IGMPLen)
			PutIGMP(out, m.Type(), m.MaxRespCode(), m.Group())
			if !sameButChecksum(out, b) {
				t.Fatalf("round trip: %x -> %x", b, out)
			}
		}
	})
}

// sameButChecksum compares two IGMP messages except for the checksum field:
// a one's-complement sum has two encodings of zero (0x0000 and 0xffff) and
// both verify, so a rebuilt message may use the other one.
func sameButChecksum(a, b []byte) bool {
	return len(a) == len(b) && bytes.Equal(a[:2], b[:2]) && bytes.Equal(a[4:], b[4:])
}
