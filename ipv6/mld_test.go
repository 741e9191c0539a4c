package ipv6

import (
	"bytes"
	"net/netip"
	"slices"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	xipv6 "golang.org/x/net/ipv6"
)

var tSrcs = []netip.Addr{tHost1, tHost2}

func TestMLDCodes(t *testing.T) {
	for _, tc := range []struct {
		code uint16
		ms   int
	}{{0, 0}, {10000, 10000}, {0x7fff, 32767}, {0x8000, 32768}, {0x8001, 32776}, {0x9000, 65536}, {0xffff, 8387584}} {
		if got := DecodeMLDCode(tc.code); got != tc.ms {
			t.Errorf("DecodeMLDCode(%#x) = %d, want %d", tc.code, got, tc.ms)
		}
		if got := EncodeMLDCode(tc.ms); got != tc.code {
			t.Errorf("EncodeMLDCode(%d) = %#x, want %#x", tc.ms, got, tc.code)
		}
	}
	for v := 0; v < 9_000_000; v += 997 {
		c := EncodeMLDCode(v)
		if d := DecodeMLDCode(c); d > v || c < 0xffff && DecodeMLDCode(c+1) <= v && c != 0x7fff {
			t.Fatalf("EncodeMLDCode(%d) = %#x (decodes to %d) is not the largest code not above it", v, c, d)
		}
	}
	for _, tc := range []struct {
		code uint8
		s    int
	}{{0, 0}, {125, 125}, {127, 127}, {0x80, 128}, {0x8f, 248}, {0xff, 31744}} {
		if got := DecodeQQIC(tc.code); got != tc.s {
			t.Errorf("DecodeQQIC(%#x) = %d, want %d", tc.code, got, tc.s)
		}
		if got := EncodeQQIC(tc.s); got != tc.code {
			t.Errorf("EncodeQQIC(%d) = %#x, want %#x", tc.s, got, tc.code)
		}
	}
	for v := 0; v < 40000; v += 7 {
		c := EncodeQQIC(v)
		if d := DecodeQQIC(c); d > v || c < 0xff && DecodeQQIC(c+1) <= v && c != 127 {
			t.Fatalf("EncodeQQIC(%d) = %#x (decodes to %d)", v, c, d)
		}
	}
	if EncodeMLDCode(-1) != 0 || EncodeQQIC(-1) != 0 || EncodeMLDCode(1<<30) != 0xffff || EncodeQQIC(1<<20) != 0xff {
		t.Fatal("out-of-range values do not saturate")
	}
}

// parseMLD checksums b for src to dst, parses it, and checks that x/net
// reads the same type and code.
func parseMLD(t *testing.T, b []byte, src, dst netip.Addr) MLD {
	t.Helper()
	PutChecksum(b, src, dst)
	m, err := ParseICMP(b, src, dst)
	if err != nil {
		t.Fatal(err)
	}
	mm, err := ParseMLD(m)
	if err != nil {
		t.Fatalf("%x: %v", b, err)
	}
	if x, err := icmp.ParseMessage(ProtocolICMPv6, b); err != nil || x.Type != xipv6.ICMPType(b[0]) || x.Checksum != int(m.Checksum()) {
		t.Fatalf("x/net: %+v %v", x, err)
	}
	return mm
}

func TestMLDv1(t *testing.T) {
	for _, tc := range []struct {
		typ     uint8
		delay   uint16
		version int
	}{{ICMPMLDQuery, 10000, 1}, {ICMPMLDQuery, 0, 1}, {ICMPMLDv1Report, 0, 0}, {ICMPMLDv1Done, 0, 0}} {
		b := make([]byte, MLDv1Len)
		PutMLDv1(b, tc.typ, tc.delay, tGroup2)
		m := parseMLD(t, b, tLL1, tGroup2)
		if m.Type() != tc.typ || m.Group() != tGroup2 || m.QueryVersion() != tc.version || m.MaxRespCode() != tc.delay {
			t.Fatalf("%d: %x", tc.typ, b)
		}
		if tc.version == 1 && m.MaxRespDelay() != time.Duration(tc.delay)*time.Millisecond {
			t.Fatalf("delay %v", m.MaxRespDelay())
		}
	}
}

func TestMLDv2Query(t *testing.T) {
	q := MLDv2Query{MaxRespCode: EncodeMLDCode(100000), Group: tGroup, S: true, QRV: 3, QQIC: EncodeQQIC(300), Sources: tSrcs}
	b := make([]byte, q.Len())
	if n := q.Put(b); n != 28+32 {
		t.Fatalf("length %d", n)
	}
	m := parseMLD(t, b, tLL1, tGroup)
	if m.QueryVersion() != 2 || m.Group() != tGroup || !m.SuppressRouterProcessing() || m.QRV() != 3 ||
		m.QueryInterval() != 288*time.Second || m.MaxRespDelay() != time.Duration(DecodeMLDCode(q.MaxRespCode))*time.Millisecond ||
		m.NumSources() != 2 || m.Source(0) != tHost1 || m.Source(1) != tHost2 {
		t.Fatalf("parsed %x wrong: interval %v", b, m.QueryInterval())
	}
	g := MLDv2Query{MaxRespCode: 1000}
	gb := make([]byte, g.Len())
	g.Put(gb)
	if m := parseMLD(t, gb, tLL1, AllNodes); !m.Group().IsUnspecified() || m.NumSources() != 0 || m.MaxRespDelay() != time.Second {
		t.Fatalf("general query %x", gb)
	}
}

func TestMLDv2Report(t *testing.T) {
	recs := []MLDRecordFields{
		{Type: ChangeToExcludeMode, Group: tGroup2},
		{Type: AllowNewSources, Group: tGroup, Sources: tSrcs},
		{Type: ModeIsInclude, Group: netip.MustParseAddr("ff3e::9"), Sources: tSrcs[1:]},
	}
	b := make([]byte, MLDv2ReportLen(recs))
	if n := PutMLDv2Report(b, recs); n != 8+20+52+36 || n != len(b) {
		t.Fatalf("length %d", n)
	}
	m := parseMLD(t, b, tLL1, AllMLDv2Routers)
	if m.Type() != ICMPMLDv2Report || m.NumRecords() != 3 || m.QueryVersion() != 0 {
		t.Fatalf("report %x", b)
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
	for range m.Records() {
		break
	}
}

func TestParseMLDErrors(t *testing.T) {
	q := MLDv2Query{Group: tGroup, Sources: tSrcs}
	qb := make([]byte, q.Len())
	q.Put(qb)
	recs := []MLDRecordFields{{Type: ModeIsExclude, Group: tGroup, Sources: tSrcs}}
	rb := make([]byte, MLDv2ReportLen(recs))
	PutMLDv2Report(rb, recs)
	set := func(b []byte, f func([]byte)) []byte { b = slices.Clone(b); f(b); return b }
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrMLDTooShort},
		{"echo", icmpMessage(ICMPEchoRequest, 0, 0, nil, tLL1, tLL2), ErrMLDType},
		{"neighbor solicitation", make([]byte, 24), ErrMLDType},
		{"v1 report of 23 bytes", set(make([]byte, 23), func(b []byte) { b[0] = ICMPMLDv1Report }), ErrMLDTooShort},
		{"query of 26 bytes", qb[:26], ErrMLDLength},
		{"query missing a source", qb[:len(qb)-16], ErrMLDTruncated},
		{"query source count 3", set(qb, func(b []byte) { b[27] = 3 }), ErrMLDTruncated},
		{"report of 7 bytes", rb[:7], ErrMLDTooShort},
		{"report with an extra record", set(rb, func(b []byte) { b[7] = 2 }), ErrMLDTruncated},
		{"record source count past the end", set(rb, func(b []byte) { b[8+3] = 3 }), ErrMLDTruncated},
		{"record aux data past the end", set(rb, func(b []byte) { b[8+1] = 1 }), ErrMLDTruncated},
		{"record cut in its header", rb[:8+19], ErrMLDTruncated},
		{"record with aux data", append(set(rb, func(b []byte) { b[8+1] = 1 }), 1, 2, 3, 4), nil},
		{"good query", qb, nil},
		{"good report", rb, nil},
	} {
		if _, err := ParseMLD(ICMP(c.b)); err != c.want {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

// FuzzMLD feeds ParseMLD checksummed messages and checks that an accepted
// message's readers stay inside it and that rebuilding it gives back its
// bytes where the format carries nothing the builders leave out.
func FuzzMLD(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 1+ICMPHeaderLen {
			return
		}
		src, dst := fuzzAddrs(in[0])
		b := bytes.Clone(in[1:])
		PutChecksum(b, src, dst)
		m, err := ParseICMP(b, src, dst)
		if err != nil {
			t.Fatal(err)
		}
		mm, err := ParseMLD(m)
		if err != nil {
			return
		}
		var out []byte
		switch {
		case mm.QueryVersion() == 2:
			_ = mm.MaxRespDelay()
			q := MLDv2Query{MaxRespCode: mm.MaxRespCode(), Group: mm.Group(), S: mm.SuppressRouterProcessing(), QRV: mm.QRV(), QQIC: mm.QQIC()}
			for i := 0; i < mm.NumSources(); i++ {
				q.Sources = append(q.Sources, mm.Source(i))
			}
			out = make([]byte, q.Len())
			q.Put(out)
			if b[1] != 0 || [2]byte(b[6:8]) != [2]byte{} || b[24]&0xf0 != 0 || len(out) != len(b) {
				return // code, reserved bits and trailing bytes are not rebuilt
			}
		case mm.Type() == ICMPMLDv2Report:
			var recs []MLDRecordFields
			for r := range mm.Records() {
				if r.AuxDataLen() != 0 {
					return
				}
				rf := MLDRecordFields{Type: r.Type(), Group: r.Group()}
				for i := 0; i < r.NumSources(); i++ {
					rf.Sources = append(rf.Sources, r.Source(i))
				}
				recs = append(recs, rf)
			}
			if len(recs) != mm.NumRecords() {
				t.Fatalf("iterated %d of %d records", len(recs), mm.NumRecords())
			}
			out = make([]byte, MLDv2ReportLen(recs))
			PutMLDv2Report(out, recs)
			if b[1] != 0 || [2]byte(b[4:6]) != [2]byte{} || len(out) != len(b) {
				return
			}
		default:
			out = make([]byte, MLDv1Len)
			PutMLDv1(out, mm.Type(), mm.MaxRespCode(), mm.Group())
			if b[1] != 0 || [2]byte(b[6:8]) != [2]byte{} || len(b) != MLDv1Len {
				return
			}
		}
		PutChecksum(out, src, dst)
		if !sameButChecksum(out, b) {
			t.Fatalf("rebuilt %x from %x", out, b)
		}
	})
}
