package mld_test

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tapnet/tapnet/internal/fakeclock"
	"github.com/tapnet/tapnet/internal/mcasttest"
	"github.com/tapnet/tapnet/ipv6"
	"github.com/tapnet/tapnet/mld"
)

var (
	group   = netip.MustParseAddr("ff0e::db8:1")
	group2  = netip.MustParseAddr("ff3e::db8:2")
	s1      = netip.MustParseAddr("2001:db8::7")
	s2      = netip.MustParseAddr("2001:db8::8")
	s3      = netip.MustParseAddr("2001:db8::9")
	router  = netip.MustParseAddr("fe80::1")
	self    = netip.MustParseAddr("fe80::2")
	nodeLoc = netip.MustParseAddr("ff01::db8:1") // interface-local
)

// fast repeats unsolicited reports within 30 ms.
var fast = mld.Config{UnsolicitedReportInterval: 30 * time.Millisecond}

// host is a Host on a manual clock whose messages are collected as
// summaries; the test plays the timer by calling Fire.
type host struct {
	t *testing.T
	*mcasttest.Recorder
	*mld.Host
}

func newHost(t *testing.T, cfg mld.Config, mtu int) *host {
	t.Helper()
	x := &host{t: t, Recorder: mcasttest.New(t)}
	x.Drive(x) // through x, so that a test may replace x.Host
	cfg.Now = x.Clock.Now
	x.Host = mld.New(cfg, mtu, mld.Hooks{Send: x.record(mtu)}, nil)
	t.Cleanup(x.Close)
	return x
}

// record returns a Send hook that completes each message's checksum, as a
// caller does, checks it and keeps its summary.
func (x *host) record(mtu int) func(netip.Addr, []byte) {
	return func(dst netip.Addr, msg []byte) {
		if len(msg) > mtu-ipv6.HeaderLen-ipv6.RouterAlertHopByHopLen {
			x.t.Errorf("%d-byte message for MTU %d", len(msg), mtu)
		}
		ipv6.PutChecksum(msg, self, dst)
		icmp, err := ipv6.ParseICMP(msg, self, dst)
		if err != nil {
			x.t.Fatalf("sent a bad ICMPv6 message: %v", err)
		}
		m, err := ipv6.ParseMLD(icmp)
		if err != nil {
			x.t.Fatalf("sent a bad MLD message: %v", err)
		}
		if m.Type() == ipv6.ICMPMLDv2Report && dst != ipv6.AllMLDv2Routers {
			x.t.Fatalf("v2 report to %v", dst)
		}
		x.Sent = append(x.Sent, summary(dst, m))
	}
}

var recordNames = map[uint8]string{1: "IS_IN", 2: "IS_EX", 3: "TO_IN", 4: "TO_EX", 5: "ALLOW", 6: "BLOCK"}

// summary reads a message as "v2 TO_EX(ff0e::db8:1){}" or
// "v1report ff0e::db8:1 ->ff0e::db8:1".
func summary(dst netip.Addr, m ipv6.MLD) string {
	switch m.Type() {
	case ipv6.ICMPMLDv2Report:
		var parts []string
		for r := range m.Records() {
			var srcs []string
			for i := range r.NumSources() {
				srcs = append(srcs, r.Source(i).String())
			}
			parts = append(parts, fmt.Sprintf("%s(%v){%s}", recordNames[r.Type()], r.Group(), strings.Join(srcs, ",")))
		}
		return "v2 " + strings.Join(parts, " ")
	case ipv6.ICMPMLDv1Report:
		return fmt.Sprintf("v1report %v ->%v", m.Group(), dst)
	case ipv6.ICMPMLDv1Done:
		return fmt.Sprintf("done %v ->%v", m.Group(), dst)
	}
	return fmt.Sprintf("type %d", m.Type())
}

func (x *host) receive(msg []byte) {
	x.t.Helper()
	if err := x.Receive(msg, router); err != nil {
		x.t.Fatal(err)
	}
}

// v2Query delivers an MLDv2 query from the router.
func (x *host) v2Query(q ipv6.MLDv2Query) {
	x.t.Helper()
	b := make([]byte, q.Len())
	q.Put(b)
	x.receive(b)
}

// v1Message delivers an MLDv1 query, report or done from the router.
func (x *host) v1Message(typ uint8, maxDelay uint16, addr netip.Addr) {
	x.t.Helper()
	b := make([]byte, ipv6.MLDv1Len)
	if !addr.IsValid() {
		addr = netip.IPv6Unspecified()
	}
	ipv6.PutMLDv1(b, typ, maxDelay, addr)
	x.receive(b)
}

// socket plays one socket's filters.
type socket struct {
	h *host
	f map[netip.Addr]mld.Filter
}

func (x *host) socket() *socket { return &socket{x, map[netip.Addr]mld.Filter{}} }

func (s *socket) set(addr netip.Addr, f mld.Filter) {
	s.h.ChangeMembership(addr, s.f[addr], f)
	s.f[addr] = f
}

func (s *socket) join(addr netip.Addr, blocked ...netip.Addr) {
	s.set(addr, mld.Filter{Mode: mld.Exclude, Sources: blocked})
}

func (s *socket) include(addr netip.Addr, srcs ...netip.Addr) {
	s.set(addr, mld.Filter{Mode: mld.Include, Sources: srcs})
}

func (s *socket) leave(addr netip.Addr) { s.set(addr, mld.Filter{}) }

func (s *socket) close() {
	for a := range s.f {
		s.leave(a)
	}
}

func TestJoinLeaveAnySource(t *testing.T) {
	x := newHost(t, fast, 1500)
	a := x.socket()
	a.join(group)
	// A join is a filter-mode change, INCLUDE{} to EXCLUDE{}, sent
	// Robustness (2) times: at once, then within the interval.
	x.Expect(0, "v2 TO_EX(ff0e::db8:1){}")
	x.Expect(30*time.Millisecond, "v2 TO_EX(ff0e::db8:1){}")
	x.Idle()
	// A second socket joining and leaving changes nothing on the wire.
	b := x.socket()
	b.join(group)
	b.close()
	x.Idle()
	a.leave(group)
	x.Expect(0, "v2 TO_IN(ff0e::db8:1){}")
	x.Expect(30*time.Millisecond, "v2 TO_IN(ff0e::db8:1){}")
	x.Idle()
	if g := x.Groups(); len(g) != 0 {
		t.Fatalf("groups left after leave: %v", g)
	}
	if got := x.Stats().ReportsSent.Load(); got != 4 {
		t.Fatalf("ReportsSent = %d, want 4", got)
	}
}

// TestUnsolicitedInterval: by default MLDv2 repeats a state change within
// 1 s (RFC 3810 9.11).
func TestUnsolicitedInterval(t *testing.T) {
	x := newHost(t, mld.Config{}, 1500)
	x.socket().join(group)
	x.Expect(0, "v2 TO_EX(ff0e::db8:1){}")
	if d := x.Deadline().Sub(x.Clock.Now()); d < 0 || d > time.Second {
		t.Fatalf("retransmission in %v, want within 1 s", d)
	}
	x.Expect(time.Second, "v2 TO_EX(ff0e::db8:1){}")
	x.Idle()
}

func TestSourceChanges(t *testing.T) {
	x := newHost(t, fast, 1500)
	a := x.socket()
	step := func(change func(), want string) {
		t.Helper()
		change()
		x.Expect(0, want)
		x.Expect(30*time.Millisecond, want)
		x.Idle()
	}
	step(func() { a.include(group2, s1) }, "v2 ALLOW(ff3e::db8:2){2001:db8::7}")
	step(func() { a.include(group2, s1, s2) }, "v2 ALLOW(ff3e::db8:2){2001:db8::8}")
	step(func() { a.include(group2, s2) }, "v2 BLOCK(ff3e::db8:2){2001:db8::7}")
	step(func() { a.leave(group2) }, "v2 BLOCK(ff3e::db8:2){2001:db8::8}")
	if len(x.Groups()) != 0 {
		t.Fatalf("still a member: %v", x.Groups())
	}
	step(func() { a.join(group) }, "v2 TO_EX(ff0e::db8:1){}")
	step(func() { a.join(group, s3) }, "v2 BLOCK(ff0e::db8:1){2001:db8::9}")
	step(func() { a.join(group) }, "v2 ALLOW(ff0e::db8:1){2001:db8::9}")
	step(a.close, "v2 TO_IN(ff0e::db8:1){}")
}

func TestInterfaceStateMerge(t *testing.T) {
	x := newHost(t, fast, 1500)
	a, b, c := x.socket(), x.socket(), x.socket()
	check := func(want string) {
		t.Helper()
		got := "none"
		if f, ok := x.Groups()[group]; ok {
			got = fmt.Sprintf("%s %v", recordNames[uint8(f.Mode)], f.Sources)
		}
		if got != want {
			t.Fatalf("interface state %s, want %s", got, want)
		}
	}
	a.join(group, s1, s2)
	b.join(group, s2)
	check("IS_EX [2001:db8::8]")
	c.include(group, s2)
	check("IS_EX []")
	a.leave(group)
	b.leave(group)
	check("IS_IN [2001:db8::8]")
	if x.Accepts(group, s1) || !x.Accepts(group, s2) {
		t.Fatal("INCLUDE{S2} should accept S2 only")
	}
	c.close()
	check("none")
	if x.IsMember(group) || !x.IsMember(ipv6.AllNodes) || !x.Accepts(ipv6.AllNodes, s1) {
		t.Fatal("membership after every socket left")
	}
}

func TestV2Queries(t *testing.T) {
	x := newHost(t, fast, 1500)
	asm, ssm := x.socket(), x.socket()
	asm.join(group, s1)
	ssm.include(group2, s2)
	x.Settle()

	// A general query (maximum response 200 ms) is answered once, for
	// every group, with current-state records.
	x.v2Query(ipv6.MLDv2Query{MaxRespCode: 200, QRV: 2, QQIC: 125})
	x.Expect(200*time.Millisecond, "v2 IS_EX(ff0e::db8:1){2001:db8::7} IS_IN(ff3e::db8:2){2001:db8::8}")
	x.Idle()
	// Multicast address specific: only that group.
	x.v2Query(ipv6.MLDv2Query{MaxRespCode: 100, Group: group})
	x.Expect(100*time.Millisecond, "v2 IS_EX(ff0e::db8:1){2001:db8::7}")
	// Multicast address and source specific: the queried sources we want.
	x.v2Query(ipv6.MLDv2Query{MaxRespCode: 100, Group: group, Sources: []netip.Addr{s1, s3}})
	x.Expect(100*time.Millisecond, "v2 IS_IN(ff0e::db8:1){2001:db8::9}")
	x.v2Query(ipv6.MLDv2Query{MaxRespCode: 100, Group: group2, Sources: []netip.Addr{s1, s2}})
	x.Expect(100*time.Millisecond, "v2 IS_IN(ff3e::db8:2){2001:db8::8}")
	// Nothing wanted among the queried sources: no answer.
	x.v2Query(ipv6.MLDv2Query{MaxRespCode: 100, Group: group2, Sources: []netip.Addr{s1}})
	// A group we are not in: no answer.
	x.v2Query(ipv6.MLDv2Query{MaxRespCode: 100, Group: netip.MustParseAddr("ff0e::db8:7")})
	// A general query listing sources is malformed: no answer.
	x.v2Query(ipv6.MLDv2Query{MaxRespCode: 100, Sources: []netip.Addr{s1}})
	x.Idle()
	if q := x.Stats().Queries.Load(); q != 7 {
		t.Fatalf("Queries = %d, want 7", q)
	}
	// The query's robustness applies to later state changes.
	x.v2Query(ipv6.MLDv2Query{MaxRespCode: 0, Group: group, QRV: 3})
	x.Expect(100*time.Millisecond, "v2 IS_EX(ff0e::db8:1){2001:db8::7}")
	ssm.leave(group2)
	x.Expect(0, "v2 BLOCK(ff3e::db8:2){2001:db8::8}")
	x.Expect(30*time.Millisecond, "v2 BLOCK(ff3e::db8:2){2001:db8::8}")
	x.Expect(30*time.Millisecond, "v2 BLOCK(ff3e::db8:2){2001:db8::8}")
	x.Idle()
}

// TestExponentialMaxResp: a Maximum Response Code from 32768 up is the
// exponential form (RFC 3810 5.1.3), and the answer comes within it.
func TestExponentialMaxResp(t *testing.T) {
	x := newHost(t, fast, 1500)
	x.socket().join(group)
	x.Settle()
	code := uint16(0x9000) // mantissa 0, exponent 1: 0x1000 << 4 ms
	limit := time.Duration(ipv6.DecodeMLDCode(code)) * time.Millisecond
	if limit != 65536*time.Millisecond {
		t.Fatalf("code %#x decodes to %v", code, limit)
	}
	x.v2Query(ipv6.MLDv2Query{MaxRespCode: code, Group: group})
	if d := x.Deadline().Sub(x.Clock.Now()); d < 0 || d > limit {
		t.Fatalf("answer due in %v, want within %v", d, limit)
	}
	x.Expect(limit, "v2 IS_EX(ff0e::db8:1){}")
}

func TestV1Compatibility(t *testing.T) {
	cfg := fast
	cfg.OlderQuerierTimeout = 600 * time.Millisecond
	x := newHost(t, cfg, 1500)
	a := x.socket()
	a.join(group)
	x.Settle()
	// An MLDv1 general query (maximum response 100 ms): the host falls
	// back to MLDv1 and answers with a report sent to the group.
	x.v1Message(ipv6.ICMPMLDQuery, 100, netip.Addr{})
	if v := x.Version(); v != 1 {
		t.Fatalf("version %d after an MLDv1 query", v)
	}
	x.Expect(100*time.Millisecond, "v1report ff0e::db8:1 ->ff0e::db8:1")
	// Joining in MLDv1 mode: unsolicited reports, twice.
	a.include(group2, s1)
	x.Expect(0, "v1report ff3e::db8:2 ->ff3e::db8:2")
	x.Expect(30*time.Millisecond, "v1report ff3e::db8:2 ->ff3e::db8:2")
	// Source changes mean nothing to MLDv1.
	a.include(group2, s1, s2)
	x.Idle()
	// Leaving as the last reporter sends Done to all-routers.
	a.leave(group2)
	x.Expect(0, "done ff3e::db8:2 ->ff02::2")
	x.Idle()
	if x.Stats().DonesSent.Load() != 1 {
		t.Fatalf("DonesSent = %d", x.Stats().DonesSent.Load())
	}
	// An MLDv2 query in MLDv1 mode is answered as MLDv1 would: its code
	// read as milliseconds.
	x.v2Query(ipv6.MLDv2Query{MaxRespCode: 300, Group: group})
	x.Expect(300*time.Millisecond, "v1report ff0e::db8:1 ->ff0e::db8:1")
	// The querier falls silent: back to MLDv2.
	x.Clock.Advance(600 * time.Millisecond)
	if v := x.Version(); v != 2 {
		t.Fatalf("version %d after the MLDv1 querier timed out", v)
	}
	a.leave(group)
	x.Expect(0, "v2 TO_IN(ff0e::db8:1){}")
}

// TestV1OlderQuerierTimeout: by default an MLDv1 query holds MLDv1 mode
// for Robustness × Query Interval + Query Response Interval, 260 s (RFC
// 3810 9.12), and an MLDv2 querier's QRV and QQIC set those.
func TestV1OlderQuerierTimeout(t *testing.T) {
	x := newHost(t, mld.Config{}, 1500)
	x.v1Message(ipv6.ICMPMLDQuery, 100, netip.Addr{})
	x.Clock.Advance(260*time.Second - time.Millisecond)
	if v := x.Version(); v != 1 {
		t.Fatalf("version %d just before 260 s", v)
	}
	x.Clock.Advance(time.Millisecond)
	if v := x.Version(); v != 2 {
		t.Fatalf("version %d after 260 s", v)
	}
	// QRV 3 and QQIC 20 s: 3 × 20 + 10 = 70 s.
	x.v2Query(ipv6.MLDv2Query{MaxRespCode: 100, QRV: 3, QQIC: 20})
	x.v1Message(ipv6.ICMPMLDQuery, 100, netip.Addr{})
	x.Clock.Advance(70*time.Second - time.Millisecond)
	if v := x.Version(); v != 1 {
		t.Fatalf("version %d just before 70 s", v)
	}
	x.Clock.Advance(time.Millisecond)
	if v := x.Version(); v != 2 {
		t.Fatalf("version %d after 70 s", v)
	}
}

// TestV2QueryLongCodeInV1Mode: an MLDv1 host reads an exponential code
// as plain milliseconds, capped at 32767 as Linux does.
func TestV2QueryLongCodeInV1Mode(t *testing.T) {
	x := newHost(t, mld.Config{Version: 1, UnsolicitedReportInterval: 30 * time.Millisecond}, 1500)
	x.socket().join(group)
	x.Settle()
	x.v2Query(ipv6.MLDv2Query{MaxRespCode: 0xffff, Group: group})
	if d := x.Deadline().Sub(x.Clock.Now()); d < 0 || d > 32767*time.Millisecond {
		t.Fatalf("answer due in %v, want within 32.767 s", d)
	}
	x.Expect(32767*time.Millisecond, "v1report ff0e::db8:1 ->ff0e::db8:1")
}

// TestV1Suppression: another host's report cancels ours (RFC 2710 4), and
// a host that did not send the last report does not send Done.
func TestV1Suppression(t *testing.T) {
	x := newHost(t, mld.Config{Version: 1, UnsolicitedReportInterval: 30 * time.Millisecond}, 1500)
	a := x.socket()
	a.join(group)
	x.Expect(0, "v1report ff0e::db8:1 ->ff0e::db8:1")
	x.Expect(30*time.Millisecond, "v1report ff0e::db8:1 ->ff0e::db8:1")
	x.v1Message(ipv6.ICMPMLDQuery, 500, group)
	// Another host's report may come from :: (RFC 3810 5.2.13).
	b := make([]byte, ipv6.MLDv1Len)
	ipv6.PutMLDv1(b, ipv6.ICMPMLDv1Report, 0, group)
	if err := x.Receive(b, netip.IPv6Unspecified()); err != nil {
		t.Fatal(err)
	}
	x.Expect(time.Second)
	if x.Stats().OthersReports.Load() != 1 {
		t.Fatal("the other host's report was not seen")
	}
	a.leave(group)
	x.Expect(time.Second)
}

// TestV2NoSuppression: an MLDv2 host answers whatever others report.
func TestV2NoSuppression(t *testing.T) {
	x := newHost(t, fast, 1500)
	x.socket().join(group)
	x.Settle()
	x.v2Query(ipv6.MLDv2Query{MaxRespCode: 100, Group: group})
	x.v1Message(ipv6.ICMPMLDv1Report, 0, group)
	x.Expect(100*time.Millisecond, "v2 IS_EX(ff0e::db8:1){}")
}

// sources returns count sources in 2001:db8::/32, different for every
// batch.
func sources(batch, count int) []netip.Addr {
	out := make([]netip.Addr, count)
	for i := range out {
		k := batch*count + i
		out[i] = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 12: byte(k >> 24), 13: byte(k >> 16), 14: byte(k >> 8), 15: byte(k + 1)})
	}
	return out
}

// TestReportSplitting: records that do not fit one report are spread
// over several, sized for the IPv6 and hop-by-hop headers.
func TestReportSplitting(t *testing.T) {
	// MTU 1280: 1280-48-8 bytes per report, 75 sources per record.
	x := newHost(t, fast, 1280)
	var all []netip.Addr
	for i := range 3 {
		srcs := sources(i, 30)
		x.socket().include(group2, srcs...)
		all = append(all, srcs...)
	}
	x.Settle()
	x.v2Query(ipv6.MLDv2Query{MaxRespCode: 100})
	sent := x.After(100 * time.Millisecond)
	if len(sent) != 2 {
		t.Fatalf("%d reports, want 2: %q", len(sent), sent)
	}
	var got []string
	for _, m := range sent {
		for _, rec := range strings.Fields(strings.TrimPrefix(m, "v2 ")) {
			srcs, ok := strings.CutPrefix(rec, "IS_IN(ff3e::db8:2){")
			if !ok {
				t.Fatalf("record %s", rec)
			}
			got = append(got, strings.Split(strings.TrimSuffix(srcs, "}"), ",")...)
		}
	}
	var want []string
	for _, a := range all {
		want = append(want, a.String())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("sources over the reports: %v", got)
	}
}

// TestExcludeTruncated: an EXCLUDE list that does not fit is cut short,
// as splitting it would change its meaning.
func TestExcludeTruncated(t *testing.T) {
	x := newHost(t, fast, 1280)
	blocked := sources(0, 80)
	x.socket().join(group, blocked...)
	x.Settle()
	x.v2Query(ipv6.MLDv2Query{MaxRespCode: 100})
	sent := x.After(100 * time.Millisecond)
	var want []string
	for _, a := range blocked[:75] {
		want = append(want, a.String())
	}
	if w := "v2 IS_EX(ff0e::db8:1){" + strings.Join(want, ",") + "}"; !slices.Equal(sent, []string{w}) {
		t.Fatalf("sent %q, want the first 75 sources", sent)
	}
}

// TestTinyMTU: an MTU below the IPv6 minimum is packed for 1280 bytes,
// not looped on.
func TestTinyMTU(t *testing.T) {
	x := newHost(t, fast, 1280)
	x.Host = mld.New(mld.Config{Now: x.Clock.Now}, 20, mld.Hooks{Send: x.record(1280)}, nil)
	defer x.Close()
	x.socket().include(group2, sources(0, 100)...)
	if got := x.After(0); len(got) != 2 {
		t.Fatalf("sent %q, want two reports", got)
	}
}

func TestMalformed(t *testing.T) {
	x := newHost(t, fast, 1500)
	x.socket().join(group)
	x.Settle()
	query := make([]byte, ipv6.MLDv1Len)
	ipv6.PutMLDv1(query, ipv6.ICMPMLDQuery, 100, netip.IPv6Unspecified())
	report := make([]byte, ipv6.MLDv1Len)
	ipv6.PutMLDv1(report, ipv6.ICMPMLDv1Report, 0, group)
	withSource := ipv6.MLDv2Query{MaxRespCode: 100, Group: group, Sources: []netip.Addr{s1}}
	truncated := make([]byte, withSource.Len())
	withSource.Put(truncated)
	truncated = truncated[:ipv6.MLDv2QueryMinLen]
	echo := make([]byte, ipv6.MLDv1Len)
	ipv6.PutICMPHeader(echo, ipv6.ICMPEchoRequest, 0, 0)
	for _, c := range []struct {
		name string
		msg  []byte
		src  netip.Addr
		err  error
	}{
		{"empty", nil, router, ipv6.ErrMLDTooShort},
		{"short query", query[:20], router, ipv6.ErrMLDTooShort},
		{"25-byte query", append(query[:24:24], 0), router, ipv6.ErrMLDLength},
		{"sources past the end", truncated, router, ipv6.ErrMLDTruncated},
		{"not MLD", echo, router, ipv6.ErrMLDType},
		{"query from a global address", query, s1, mld.ErrSource},
		{"query from ::", query, netip.IPv6Unspecified(), mld.ErrSource},
		{"query from IPv4-mapped 169.254/16", query, netip.MustParseAddr("::ffff:169.254.0.1"), mld.ErrSource},
		{"report from a global address", report, s1, mld.ErrSource},
	} {
		if err := x.Receive(c.msg, c.src); !errors.Is(err, c.err) {
			t.Errorf("%s: %v, want %v", c.name, err, c.err)
		}
	}
	x.Idle()
	st := x.Stats()
	if st.Malformed.Load() != 5 || st.BadSource.Load() != 4 || st.Queries.Load() != 0 || st.Received.Load() != 0 || st.OthersReports.Load() != 0 {
		t.Fatalf("malformed %d, bad source %d, queries %d, received %d, others' reports %d",
			st.Malformed.Load(), st.BadSource.Load(), st.Queries.Load(), st.Received.Load(), st.OthersReports.Load())
	}
	// Routers' messages a host ignores are counted as received.
	done := make([]byte, ipv6.MLDv1Len)
	ipv6.PutMLDv1(done, ipv6.ICMPMLDv1Done, 0, group)
	v2report := make([]byte, ipv6.MLDv2ReportMinLen)
	ipv6.PutMLDv2Report(v2report, nil)
	x.receive(done)
	x.receive(v2report)
	x.Idle()
	if st.Received.Load() != 2 {
		t.Fatalf("received %d", st.Received.Load())
	}
}

func heapAlloc() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestSourceQueryFloodBounded: queries naming thousands of new sources
// for an any-source group are not all kept until the answer is due; past
// the cap the answer is the group's whole state, one small report.
func TestSourceQueryFloodBounded(t *testing.T) {
	x := newHost(t, fast, 1500)
	x.socket().join(group)
	x.Settle()
	// 89 sources fill a 1500-byte frame behind the IPv6 and hop-by-hop
	// headers.
	const queries, perQuery = 3000, 89
	msg := make([]byte, ipv6.MLDv2QueryMinLen+16*perQuery)
	before := heapAlloc()
	for i := range queries {
		q := ipv6.MLDv2Query{MaxRespCode: 1000, Group: group, Sources: sources(i, perQuery)}
		q.Put(msg)
		x.receive(msg)
	}
	growth := int64(heapAlloc()) - int64(before)
	t.Logf("heap growth after %d queries of %d sources: %d KB", queries, perQuery, growth>>10)
	if growth > 8<<20 {
		t.Errorf("heap grew by %d MB", growth>>20)
	}
	if got := x.PendingQuerySources(); got > mld.MaxQuerySourcesPerGroup {
		t.Errorf("%d query sources recorded, cap %d", got, mld.MaxQuerySourcesPerGroup)
	}
	st := x.Stats()
	if got := st.QuerySourcesIgnored.Load() + st.QuerySourcesDropped.Load(); got != queries*perQuery {
		t.Errorf("ignored+dropped sources %d, want %d", got, queries*perQuery)
	}
	x.Expect(time.Second, "v2 IS_EX(ff0e::db8:1){}")
	x.Idle()
	if got := x.PendingQuerySources(); got != 0 {
		t.Errorf("%d query sources still recorded after the answer", got)
	}
}

// TestSourceQueryCaps: a query's sources are kept up to the per-group and
// per-host caps and answered exactly; a group over a cap is answered with
// its whole state.
func TestSourceQueryCaps(t *testing.T) {
	x := newHost(t, fast, 1500)
	perGroup, perHost := mld.MaxQuerySourcesPerGroup, mld.MaxQuerySourcesPerHost
	full := perHost / perGroup
	groups := make([]netip.Addr, full+2)
	sock := x.socket()
	for i := range groups {
		groups[i] = netip.AddrFrom16([16]byte{0: 0xff, 1: 0x0e, 2: 0x0d, 3: 0xb8, 15: byte(i + 1)})
		sock.join(groups[i], s1)
	}
	x.Settle()
	srcs := sources(1, perGroup+1)
	for _, g := range groups[:full] {
		first := append(slices.Clone(srcs[:perGroup/2]), srcs[0], s1)
		x.v2Query(ipv6.MLDv2Query{MaxRespCode: 1000, Group: g, Sources: first})
		x.v2Query(ipv6.MLDv2Query{MaxRespCode: 1000, Group: g, Sources: srcs[perGroup/2 : perGroup]})
	}
	if got := x.PendingQuerySources(); got != perHost {
		t.Fatalf("%d sources recorded, want %d", got, perHost)
	}
	x.v2Query(ipv6.MLDv2Query{MaxRespCode: 1000, Group: groups[full], Sources: srcs[:1]})
	x.v2Query(ipv6.MLDv2Query{MaxRespCode: 1000, Group: groups[full+1], Sources: srcs})
	if got := x.PendingQuerySources(); got != perHost {
		t.Fatalf("%d sources recorded, want %d", got, perHost)
	}
	st := x.Stats()
	if got := st.QuerySourcesIgnored.Load(); got != uint64(full) {
		t.Errorf("QuerySourcesIgnored = %d, want %d (S1 once per group)", got, full)
	}
	if got, want := st.QuerySourcesDropped.Load(), uint64(1+perGroup+1); got != want {
		t.Errorf("QuerySourcesDropped = %d, want %d", got, want)
	}
	var asked []string
	for _, a := range srcs[:perGroup] {
		asked = append(asked, a.String())
	}
	want := map[string]bool{}
	for i, g := range groups {
		rec := fmt.Sprintf("IS_IN(%v){%s}", g, strings.Join(asked, ","))
		if i >= full {
			rec = fmt.Sprintf("IS_EX(%v){%v}", g, s1)
		}
		want[rec] = true
	}
	for _, m := range x.After(time.Second) {
		for _, rec := range strings.Fields(strings.TrimPrefix(m, "v2 ")) {
			if !want[rec] {
				t.Fatalf("unexpected record %s", rec)
			}
			delete(want, rec)
		}
	}
	if len(want) > 0 {
		t.Fatalf("answers missing: %v", want)
	}
	x.Idle()
	if got := x.PendingQuerySources(); got != 0 {
		t.Fatalf("%d sources recorded after the answers", got)
	}
}

// TestZeroMaxRespFlood: a query with Maximum Response Code 0 allows a
// tenth of a second, and repeated queries while an answer is pending add
// none.
func TestZeroMaxRespFlood(t *testing.T) {
	x := newHost(t, fast, 1500)
	x.socket().join(group)
	x.Settle()
	for _, c := range []struct {
		name  string
		query ipv6.MLDv2Query
		want  string
	}{
		{"general", ipv6.MLDv2Query{}, "v2 IS_EX(ff0e::db8:1){}"},
		{"address-specific", ipv6.MLDv2Query{Group: group}, "v2 IS_EX(ff0e::db8:1){}"},
		{"address-and-source", ipv6.MLDv2Query{Group: group, Sources: []netip.Addr{s1}}, "v2 IS_IN(ff0e::db8:1){2001:db8::7}"},
	} {
		for range 2000 {
			x.v2Query(c.query)
			x.Fire() // the clock stands: nothing is due yet, unless the delay drawn was 0
		}
		got := append(x.Sent, x.After(mld.MinQueryResponse)...)
		x.Sent = nil
		if !slices.Equal(got, []string{c.want}) {
			t.Errorf("%s: 2000 queries with code 0 drew %q, want one %s", c.name, got, c.want)
		}
		x.Idle()
	}
}

// TestUnreportedGroups: like Linux, neither the all-nodes group nor groups
// of a scope below link-local are ever reported (RFC 3810 6), even to a
// query for them, in either version, though sockets receive them. Other
// link-scope groups, solicited-node ones among them, are reported.
func TestUnreportedGroups(t *testing.T) {
	x := newHost(t, fast, 1500)
	reserved := netip.MustParseAddr("ff00::db8:1")
	a := x.socket()
	for _, g := range []netip.Addr{ipv6.AllNodes, nodeLoc, reserved, netip.MustParseAddr("ff11::db8:1")} {
		a.join(g)
		x.Idle()
		if !x.IsMember(g) || !x.Accepts(g, s1) {
			t.Fatalf("%v joined but not received", g)
		}
	}
	snm := ipv6.SolicitedNode(netip.MustParseAddr("2001:db8::1:2:3"))
	a.join(snm)
	x.Expect(0, "v2 TO_EX(ff02::1:ff02:3){}")
	x.Settle()
	for _, g := range []netip.Addr{ipv6.AllNodes, nodeLoc, reserved} {
		x.v2Query(ipv6.MLDv2Query{MaxRespCode: 100, Group: g})
		x.v2Query(ipv6.MLDv2Query{MaxRespCode: 100, Group: g, Sources: []netip.Addr{s1}})
	}
	x.v2Query(ipv6.MLDv2Query{MaxRespCode: 100})
	x.Expect(time.Second, "v2 IS_EX(ff02::1:ff02:3){}")
	// Nor in MLDv1 mode.
	x.v1Message(ipv6.ICMPMLDQuery, 100, netip.Addr{})
	x.Expect(time.Second, "v1report ff02::1:ff02:3 ->ff02::1:ff02:3")
	a.join(netip.MustParseAddr("ff01::db8:2"))
	a.leave(nodeLoc)
	a.leave(ipv6.AllNodes)
	x.Expect(time.Second)
}

// TestSilentHost: without a Send hook, as on loopback, a host tracks
// membership and never schedules anything.
func TestSilentHost(t *testing.T) {
	scheduled := 0
	h := mld.New(mld.Config{}, 65536, mld.Hooks{Schedule: func(time.Duration) { scheduled++ }}, nil)
	defer h.Close()
	h.ChangeMembership(group, mld.Filter{}, mld.Filter{Mode: mld.Exclude})
	b := make([]byte, ipv6.MLDv2QueryMinLen)
	(&ipv6.MLDv2Query{MaxRespCode: 100}).Put(b)
	if err := h.Receive(b, router); err != nil {
		t.Fatal(err)
	}
	h.Fire()
	if !h.IsMember(group) || !h.Deadline().IsZero() || scheduled != 0 {
		t.Fatalf("member %v, deadline %v, %d Schedule calls", h.IsMember(group), h.Deadline(), scheduled)
	}
	h.ChangeMembership(group, mld.Filter{Mode: mld.Exclude}, mld.Filter{})
	if len(h.Groups()) != 0 {
		t.Fatalf("groups left: %v", h.Groups())
	}
}

// TestScheduleHook: the host asks for Fire when work falls due, asks
// again only when the deadline moves, and Close withdraws the request.
func TestScheduleHook(t *testing.T) {
	clk := fakeclock.New()
	var asks []time.Duration
	sent := 0
	h := mld.New(mld.Config{Now: clk.Now, Robustness: 1}, 1500, mld.Hooks{
		Send:     func(netip.Addr, []byte) { sent++ },
		Schedule: func(d time.Duration) { asks = append(asks, d) },
	}, nil)
	h.ChangeMembership(group, mld.Filter{}, mld.Filter{Mode: mld.Exclude})
	h.Fire()
	if sent != 1 || !slices.Equal(asks, []time.Duration{0}) || !h.Deadline().IsZero() {
		t.Fatalf("after a join and Fire: %d sent, Schedule(%v), deadline %v", sent, asks, h.Deadline())
	}
	b := make([]byte, ipv6.MLDv2QueryMinLen)
	(&ipv6.MLDv2Query{MaxRespCode: 5000}).Put(b)
	if err := h.Receive(b, router); err != nil {
		t.Fatal(err)
	}
	if len(asks) != 2 || asks[1] < 0 || asks[1] > 5*time.Second {
		t.Fatalf("after a 5 s query: Schedule(%v)", asks)
	}
	h.Close()
	if len(asks) != 3 || asks[2] != -1 {
		t.Fatalf("after Close: Schedule(%v), want a final -1", asks)
	}
	clk.Advance(time.Hour)
	h.Fire()
	h.ChangeMembership(group2, mld.Filter{}, mld.Filter{Mode: mld.Exclude})
	if sent != 1 || len(asks) != 3 {
		t.Fatalf("closed host: %d sent, Schedule(%v)", sent, asks)
	}
}

// BenchmarkAccepts is the receive path's per-datagram question for a
// joined group.
func BenchmarkAccepts(b *testing.B) {
	h := mld.New(mld.Config{}, 1500, mld.Hooks{}, nil)
	defer h.Close()
	h.ChangeMembership(group, mld.Filter{}, mld.Filter{Mode: mld.Exclude, Sources: []netip.Addr{s2}})
	b.ReportAllocs()
	for b.Loop() {
		if !h.Accepts(group, s1) {
			b.Fatal("not accepted")
		}
	}
}

// TestQueriesAllocateNothing: a query whose answer is already pending,
// general or naming sources already recorded, costs no allocation, so a
// query flood costs no garbage.
func TestQueriesAllocateNothing(t *testing.T) {
	x := newHost(t, fast, 1500)
	x.socket().join(group)
	x.Settle()
	for _, q := range []ipv6.MLDv2Query{
		{MaxRespCode: 1000},
		{MaxRespCode: 1000, Group: group, Sources: []netip.Addr{s1, s2}},
	} {
		b := make([]byte, q.Len())
		q.Put(b)
		x.receive(b)
		if n := testing.AllocsPerRun(100, func() { x.receive(b) }); n != 0 {
			t.Errorf("%d allocations per query %+v", int(n), q)
		}
	}
}
