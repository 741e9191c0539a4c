package igmp_test

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tapnet/tapnet/igmp"
	"github.com/tapnet/tapnet/internal/fakeclock"
	"github.com/tapnet/tapnet/internal/mcasttest"
	"github.com/tapnet/tapnet/ipv4"
)

var (
	group  = netip.MustParseAddr("239.1.2.3")
	group2 = netip.MustParseAddr("239.1.2.4")
	s1     = netip.MustParseAddr("192.0.2.7")
	s2     = netip.MustParseAddr("192.0.2.8")
	s3     = netip.MustParseAddr("192.0.2.9")
)

// fast repeats unsolicited reports within 30 ms.
var fast = igmp.Config{UnsolicitedReportInterval: 30 * time.Millisecond}

// host is a Host on a manual clock whose messages are collected as
// summaries; the test plays the timer by calling Fire.
type host struct {
	t *testing.T
	*mcasttest.Recorder
	*igmp.Host
}

func newHost(t *testing.T, cfg igmp.Config, mtu int) *host {
	t.Helper()
	x := &host{t: t, Recorder: mcasttest.New(t)}
	x.Drive(x) // through x, so that a test may replace x.Host
	cfg.Now = x.Clock.Now
	x.Host = igmp.New(cfg, mtu, igmp.Hooks{Send: x.record(mtu)}, nil)
	t.Cleanup(x.Close)
	return x
}

// record returns a Send hook that checks each message and keeps its
// summary.
func (x *host) record(mtu int) func(netip.Addr, []byte) {
	return func(dst netip.Addr, msg []byte) {
		if len(msg) > mtu-ipv4.RouterAlertHeaderLen {
			x.t.Errorf("%d-byte message for MTU %d", len(msg), mtu)
		}
		m, err := ipv4.ParseIGMP(msg)
		if err != nil {
			x.t.Fatalf("sent a bad IGMP message: %v", err)
		}
		if m.Type() == ipv4.IGMPv3MembershipReport && dst != ipv4.AllIGMPv3RoutersGroup {
			x.t.Fatalf("v3 report to %v", dst)
		}
		x.Sent = append(x.Sent, summary(dst, m))
	}
}

var recordNames = map[uint8]string{1: "IS_IN", 2: "IS_EX", 3: "TO_IN", 4: "TO_EX", 5: "ALLOW", 6: "BLOCK"}

// summary reads a message as "v3 TO_EX(239.1.2.3){}" or
// "v2report 239.1.2.3 ->239.1.2.3".
func summary(dst netip.Addr, m ipv4.IGMP) string {
	switch m.Type() {
	case ipv4.IGMPv3MembershipReport:
		var parts []string
		for r := range m.Records() {
			var srcs []string
			for i := range r.NumSources() {
				srcs = append(srcs, r.Source(i).String())
			}
			parts = append(parts, fmt.Sprintf("%s(%v){%s}", recordNames[r.Type()], r.Group(), strings.Join(srcs, ",")))
		}
		return "v3 " + strings.Join(parts, " ")
	case ipv4.IGMPv2MembershipReport:
		return fmt.Sprintf("v2report %v ->%v", m.Group(), dst)
	case ipv4.IGMPv1MembershipReport:
		return fmt.Sprintf("v1report %v ->%v", m.Group(), dst)
	case ipv4.IGMPv2LeaveGroup:
		return fmt.Sprintf("leave %v ->%v", m.Group(), dst)
	}
	return fmt.Sprintf("type %#x", m.Type())
}

func (x *host) receive(msg []byte) {
	x.t.Helper()
	if err := x.Receive(msg); err != nil {
		x.t.Fatal(err)
	}
}

func (x *host) v3Query(q ipv4.IGMPv3Query) {
	x.t.Helper()
	b := make([]byte, q.Len())
	q.Put(b)
	x.receive(b)
}

func (x *host) v2Message(typ, code uint8, addr netip.Addr) {
	x.t.Helper()
	b := make([]byte, ipv4.IGMPLen)
	if !addr.IsValid() {
		addr = netip.IPv4Unspecified()
	}
	ipv4.PutIGMP(b, typ, code, addr)
	x.receive(b)
}

// socket plays one socket's filters, as internal/udpsock keeps them.
type socket struct {
	h *host
	f map[netip.Addr]igmp.Filter
}

func (x *host) socket() *socket { return &socket{x, map[netip.Addr]igmp.Filter{}} }

func (s *socket) set(addr netip.Addr, f igmp.Filter) {
	s.h.ChangeMembership(addr, s.f[addr], f)
	s.f[addr] = f
}

func (s *socket) join(addr netip.Addr, blocked ...netip.Addr) {
	s.set(addr, igmp.Filter{Mode: igmp.Exclude, Sources: blocked})
}

func (s *socket) include(addr netip.Addr, srcs ...netip.Addr) {
	s.set(addr, igmp.Filter{Mode: igmp.Include, Sources: srcs})
}

func (s *socket) leave(addr netip.Addr) { s.set(addr, igmp.Filter{}) }

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
	x.Expect(0, "v3 TO_EX(239.1.2.3){}")
	x.Expect(30*time.Millisecond, "v3 TO_EX(239.1.2.3){}")
	x.Idle()
	// A second socket joining and leaving changes nothing on the wire.
	b := x.socket()
	b.join(group)
	b.close()
	x.Idle()
	a.leave(group)
	x.Expect(0, "v3 TO_IN(239.1.2.3){}")
	x.Expect(30*time.Millisecond, "v3 TO_IN(239.1.2.3){}")
	x.Idle()
	if g := x.Groups(); len(g) != 0 {
		t.Fatalf("groups left after leave: %v", g)
	}
	if got := x.Stats().ReportsSent.Load(); got != 4 {
		t.Fatalf("ReportsSent = %d, want 4", got)
	}
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
	step(func() { a.include(group, s1) }, "v3 ALLOW(239.1.2.3){192.0.2.7}")
	step(func() { a.include(group, s1, s2) }, "v3 ALLOW(239.1.2.3){192.0.2.8}")
	step(func() { a.include(group, s2) }, "v3 BLOCK(239.1.2.3){192.0.2.7}")
	// The last source leaves the group.
	step(func() { a.leave(group) }, "v3 BLOCK(239.1.2.3){192.0.2.8}")
	if len(x.Groups()) != 0 {
		t.Fatalf("still a member: %v", x.Groups())
	}
	// Any-source with a blocked source: BLOCK on exclude, ALLOW on
	// include again.
	step(func() { a.join(group2) }, "v3 TO_EX(239.1.2.4){}")
	step(func() { a.join(group2, s3) }, "v3 BLOCK(239.1.2.4){192.0.2.9}")
	step(func() { a.join(group2) }, "v3 ALLOW(239.1.2.4){192.0.2.9}")
	step(a.close, "v3 TO_IN(239.1.2.4){}")
}

// TestPendingChangesMerge: a change made while retransmissions are
// pending is folded into them (RFC 3376 5.1): the mode change report
// carries the current source list.
func TestPendingChangesMerge(t *testing.T) {
	x := newHost(t, igmp.Config{UnsolicitedReportInterval: 300 * time.Millisecond}, 1500)
	a := x.socket()
	a.join(group)
	x.Expect(0, "v3 TO_EX(239.1.2.3){}")
	a.join(group, s1)
	x.Expect(0, "v3 BLOCK(239.1.2.3){192.0.2.7} TO_EX(239.1.2.3){192.0.2.7}")
	x.Expect(300*time.Millisecond, "v3 BLOCK(239.1.2.3){192.0.2.7}")
	x.Idle()
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
	check("IS_EX [192.0.2.7 192.0.2.8]")
	b.join(group, s2)
	check("IS_EX [192.0.2.8]") // excluded only where every excluding socket excludes
	c.include(group, s2)
	check("IS_EX []") // and no including socket includes
	if !x.Accepts(group, s1) || !x.IsMember(group) {
		t.Fatal("S1 should be accepted")
	}
	a.leave(group)
	b.leave(group)
	check("IS_IN [192.0.2.8]")
	if x.Accepts(group, s1) || !x.Accepts(group, s2) {
		t.Fatal("INCLUDE{S2} should accept S2 only")
	}
	c.close()
	check("none")
	if x.IsMember(group) || x.Accepts(group, s2) {
		t.Fatal("no socket left, still accepting")
	}
	if !x.IsMember(ipv4.AllHostsGroup) || !x.Accepts(ipv4.AllHostsGroup, s1) {
		t.Fatal("the all-hosts group is always received")
	}
}

func TestV3Queries(t *testing.T) {
	x := newHost(t, fast, 1500)
	asm, ssm := x.socket(), x.socket()
	asm.join(group, s1)
	ssm.include(group2, s2)
	x.Settle()

	// A general query (max response 0.2 s) is answered once, for every
	// group, with current-state records.
	x.v3Query(ipv4.IGMPv3Query{MaxRespCode: 2, QRV: 2, QQIC: 125})
	x.Expect(200*time.Millisecond, "v3 IS_EX(239.1.2.3){192.0.2.7} IS_IN(239.1.2.4){192.0.2.8}")
	x.Idle()
	// Group-specific: only that group.
	x.v3Query(ipv4.IGMPv3Query{MaxRespCode: 1, Group: group})
	x.Expect(100*time.Millisecond, "v3 IS_EX(239.1.2.3){192.0.2.7}")
	// Group-and-source-specific: the queried sources we want.
	x.v3Query(ipv4.IGMPv3Query{MaxRespCode: 1, Group: group, Sources: []netip.Addr{s1, s3}})
	x.Expect(100*time.Millisecond, "v3 IS_IN(239.1.2.3){192.0.2.9}")
	x.v3Query(ipv4.IGMPv3Query{MaxRespCode: 1, Group: group2, Sources: []netip.Addr{s1, s2}})
	x.Expect(100*time.Millisecond, "v3 IS_IN(239.1.2.4){192.0.2.8}")
	// Nothing wanted among the queried sources: no answer.
	x.v3Query(ipv4.IGMPv3Query{MaxRespCode: 1, Group: group2, Sources: []netip.Addr{s1}})
	// A group we are not in: no answer.
	x.v3Query(ipv4.IGMPv3Query{MaxRespCode: 1, Group: netip.MustParseAddr("239.7.7.7")})
	// A general query listing sources is malformed: no answer.
	x.v3Query(ipv4.IGMPv3Query{MaxRespCode: 1, Sources: []netip.Addr{s1}})
	x.Idle()
	if q := x.Stats().Queries.Load(); q != 7 {
		t.Fatalf("Queries = %d, want 7", q)
	}
	// The query's robustness applies to later state changes.
	x.v3Query(ipv4.IGMPv3Query{MaxRespCode: 0, Group: group, QRV: 3})
	x.Expect(100*time.Millisecond, "v3 IS_EX(239.1.2.3){192.0.2.7}")
	ssm.leave(group2)
	x.Expect(0, "v3 BLOCK(239.1.2.4){192.0.2.8}")
	x.Expect(30*time.Millisecond, "v3 BLOCK(239.1.2.4){192.0.2.8}")
	x.Expect(30*time.Millisecond, "v3 BLOCK(239.1.2.4){192.0.2.8}")
	x.Idle()
}

func TestV2Compatibility(t *testing.T) {
	cfg := fast
	cfg.OlderQuerierTimeout = 600 * time.Millisecond
	x := newHost(t, cfg, 1500)
	a := x.socket()
	a.join(group)
	x.Settle()
	// A v2 general query (max response 0.1 s): the host falls back to v2
	// and answers with a v2 report sent to the group.
	x.v2Message(ipv4.IGMPMembershipQuery, 1, netip.Addr{})
	if v := x.Version(); v != 2 {
		t.Fatalf("version %d after a v2 query", v)
	}
	x.Expect(100*time.Millisecond, "v2report 239.1.2.3 ->239.1.2.3")
	// Joining in v2 mode: unsolicited v2 reports, twice.
	a.include(group2, s1)
	x.Expect(0, "v2report 239.1.2.4 ->239.1.2.4")
	x.Expect(30*time.Millisecond, "v2report 239.1.2.4 ->239.1.2.4")
	// Source changes mean nothing to v2.
	a.include(group2, s1, s2)
	x.Idle()
	// Leaving as the last reporter sends Leave Group to all-routers.
	a.leave(group2)
	x.Expect(0, "leave 239.1.2.4 ->224.0.0.2")
	x.Idle()
	if x.Stats().LeavesSent.Load() != 1 {
		t.Fatalf("LeavesSent = %d", x.Stats().LeavesSent.Load())
	}
	// The querier falls silent: back to v3.
	x.Clock.Advance(600 * time.Millisecond)
	if v := x.Version(); v != 3 {
		t.Fatalf("version %d after the v2 querier timed out", v)
	}
	a.leave(group)
	x.Expect(0, "v3 TO_IN(239.1.2.3){}")
}

// TestV2Suppression: another host's report cancels ours (RFC 2236 3),
// and a host that did not send the last report does not send Leave.
func TestV2Suppression(t *testing.T) {
	x := newHost(t, igmp.Config{Version: 2, UnsolicitedReportInterval: 30 * time.Millisecond}, 1500)
	a := x.socket()
	a.join(group)
	x.Expect(0, "v2report 239.1.2.3 ->239.1.2.3")
	x.Expect(30*time.Millisecond, "v2report 239.1.2.3 ->239.1.2.3")
	// Query with 0.5 s to answer; another host answers first.
	x.v2Message(ipv4.IGMPMembershipQuery, 5, group)
	x.v2Message(ipv4.IGMPv2MembershipReport, 0, group)
	x.Expect(time.Second)
	if x.Stats().OthersReports.Load() != 1 {
		t.Fatal("the other host's report was not seen")
	}
	a.leave(group)
	x.Expect(time.Second)
}

func TestV1Compatibility(t *testing.T) {
	x := newHost(t, fast, 1500)
	// A v1 query (code 0) allows up to 10 s.
	x.v2Message(ipv4.IGMPMembershipQuery, 0, netip.Addr{})
	if v := x.Version(); v != 1 {
		t.Fatalf("version %d after a v1 query", v)
	}
	a := x.socket()
	a.join(group)
	x.Expect(0, "v1report 239.1.2.3 ->239.1.2.3")
	x.Expect(30*time.Millisecond, "v1report 239.1.2.3 ->239.1.2.3")
	// v1 has no Leave.
	a.leave(group)
	x.Expect(time.Second)
	// A v3 query heard in v1 mode is answered as a v1 query, within 10 s.
	a.join(group2)
	x.Settle()
	x.v3Query(ipv4.IGMPv3Query{MaxRespCode: 1, Group: group2})
	x.Expect(10*time.Second, "v1report 239.1.2.4 ->239.1.2.4")
}

// TestReportSplitting: records that do not fit one report are spread
// over several.
func TestReportSplitting(t *testing.T) {
	// MTU 100: 100-24-8 bytes per report, 15 sources per record.
	x := newHost(t, fast, 100)
	var all []netip.Addr
	for i := range 3 {
		var srcs []netip.Addr
		for j := range 10 {
			srcs = append(srcs, netip.AddrFrom4([4]byte{198, 51, 100, byte(10*i + j + 1)}))
		}
		x.socket().include(group, srcs...)
		all = append(all, srcs...)
	}
	x.Settle()
	x.v3Query(ipv4.IGMPv3Query{MaxRespCode: 1})
	sent := x.After(100 * time.Millisecond)
	if len(sent) != 2 {
		t.Fatalf("%d reports, want 2: %q", len(sent), sent)
	}
	var got []string
	for _, m := range sent {
		for _, rec := range strings.Fields(strings.TrimPrefix(m, "v3 ")) {
			srcs, ok := strings.CutPrefix(rec, "IS_IN(239.1.2.3){")
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
	// MTU 68, the IPv4 minimum: 7 sources fit one record.
	x := newHost(t, fast, 68)
	var blocked []netip.Addr
	for j := range 10 {
		blocked = append(blocked, netip.AddrFrom4([4]byte{198, 51, 100, byte(j + 1)}))
	}
	x.socket().join(group, blocked...)
	x.Settle()
	x.v3Query(ipv4.IGMPv3Query{MaxRespCode: 1})
	x.Expect(100*time.Millisecond, "v3 IS_EX(239.1.2.3){198.51.100.1,198.51.100.2,198.51.100.3,198.51.100.4,198.51.100.5,198.51.100.6,198.51.100.7}")
}

// TestSetMTU: reports are packed for the MTU of the moment, as when the
// interface's MTU is lowered after the host was made.
func TestSetMTU(t *testing.T) {
	x := newHost(t, fast, 68)
	x.Host = igmp.New(igmp.Config{Now: x.Clock.Now}, 1500, igmp.Hooks{Send: x.record(100)}, nil)
	x.SetMTU(100) // 15 sources per record
	var srcs []netip.Addr
	for j := range 20 {
		srcs = append(srcs, netip.AddrFrom4([4]byte{198, 51, 100, byte(j + 1)}))
	}
	x.socket().include(group, srcs...)
	if got := x.After(0); len(got) != 2 {
		t.Fatalf("sent %q, want two reports", got)
	}
}

// TestTinyMTU: an MTU below the IPv4 minimum is packed for 68 bytes, not
// looped on.
func TestTinyMTU(t *testing.T) {
	x := newHost(t, fast, 68)
	x.Host = igmp.New(igmp.Config{Now: x.Clock.Now}, 20, igmp.Hooks{Send: x.record(68)}, nil)
	var srcs []netip.Addr
	for j := range 10 {
		srcs = append(srcs, netip.AddrFrom4([4]byte{198, 51, 100, byte(j + 1)}))
	}
	x.socket().include(group, srcs...)
	if got := x.After(0); len(got) != 2 {
		t.Fatalf("sent %q, want two reports", got)
	}
}

func TestMalformed(t *testing.T) {
	x := newHost(t, fast, 1500)
	x.socket().join(group)
	x.Settle()
	bad := make([]byte, ipv4.IGMPLen)
	ipv4.PutIGMP(bad, ipv4.IGMPMembershipQuery, 1, netip.IPv4Unspecified())
	bad[2] ^= 0xff
	if err := x.Receive(bad); !errors.Is(err, ipv4.ErrIGMPChecksum) {
		t.Fatalf("bad checksum: %v", err)
	}
	if err := x.Receive([]byte{0x11, 1, 0}); !errors.Is(err, ipv4.ErrIGMPTooShort) {
		t.Fatalf("short: %v", err)
	}
	x.Idle()
	st := x.Stats()
	if st.BadChecksum.Load() != 1 || st.Malformed.Load() != 1 || st.Queries.Load() != 0 || st.Received.Load() != 0 {
		t.Fatalf("bad checksum %d, malformed %d, queries %d, received %d",
			st.BadChecksum.Load(), st.Malformed.Load(), st.Queries.Load(), st.Received.Load())
	}
}

// distinctSources returns count sources, different for every batch.
func distinctSources(batch, count int) []netip.Addr {
	out := make([]netip.Addr, count)
	for i := range out {
		k := batch*count + i
		out[i] = netip.AddrFrom4([4]byte{10, byte(k >> 16), byte(k >> 8), byte(k)})
	}
	return out
}

func heapAlloc() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestSourceQueryFloodBounded: group-and-source queries naming thousands
// of new sources for an any-source group are not all kept until the
// answer is due; past the cap the answer is the group's whole state, one
// small report, as Linux sends.
func TestSourceQueryFloodBounded(t *testing.T) {
	x := newHost(t, fast, 1500)
	x.socket().join(group)
	x.Settle()
	const queries, perQuery = 3000, 366 // 366 sources fill a 1500-byte frame
	msg := make([]byte, ipv4.IGMPv3QueryMinLen+4*perQuery)
	before := heapAlloc()
	for i := range queries {
		q := ipv4.IGMPv3Query{MaxRespCode: 10, Group: group, Sources: distinctSources(i, perQuery)}
		q.Put(msg)
		x.receive(msg)
	}
	growth := int64(heapAlloc()) - int64(before)
	t.Logf("heap growth after %d queries of %d sources: %d KB", queries, perQuery, growth>>10)
	if growth > 8<<20 {
		t.Errorf("heap grew by %d MB", growth>>20)
	}
	if got := x.PendingQuerySources(); got > igmp.MaxQuerySourcesPerGroup {
		t.Errorf("%d query sources recorded, cap %d", got, igmp.MaxQuerySourcesPerGroup)
	}
	st := x.Stats()
	if got := st.QuerySourcesIgnored.Load() + st.QuerySourcesDropped.Load(); got != queries*perQuery {
		t.Errorf("ignored+dropped sources %d, want %d", got, queries*perQuery)
	}
	x.Expect(time.Second, "v3 IS_EX(239.1.2.3){}")
	x.Idle()
	if got := x.PendingQuerySources(); got != 0 {
		t.Errorf("%d query sources still recorded after the answer", got)
	}
}

// TestSourceQueryCaps: a group-and-source query's sources are kept up to
// the per-group and per-host caps and answered exactly; a group over a
// cap is answered with its whole state.
func TestSourceQueryCaps(t *testing.T) {
	x := newHost(t, fast, 1500)
	perGroup, perHost := igmp.MaxQuerySourcesPerGroup, igmp.MaxQuerySourcesPerHost
	full := perHost / perGroup // groups whose sources fill the host's cap
	groups := make([]netip.Addr, full+2)
	sock := x.socket()
	for i := range groups {
		groups[i] = netip.AddrFrom4([4]byte{239, 2, 0, byte(i + 1)})
		sock.join(groups[i], s1)
	}
	x.Settle()
	srcs := make([]netip.Addr, perGroup+1)
	for i := range srcs {
		srcs[i] = netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)})
	}
	// Each of the first groups is asked about perGroup sources in two
	// queries; the first repeats a source and names the excluded S1,
	// which is not kept.
	for _, g := range groups[:full] {
		first := append(slices.Clone(srcs[:perGroup/2]), srcs[0], s1)
		x.v3Query(ipv4.IGMPv3Query{MaxRespCode: 10, Group: g, Sources: first})
		x.v3Query(ipv4.IGMPv3Query{MaxRespCode: 10, Group: g, Sources: srcs[perGroup/2 : perGroup]})
	}
	if got := x.PendingQuerySources(); got != perHost {
		t.Fatalf("%d sources recorded, want %d", got, perHost)
	}
	// Then one source is too many for the host, and perGroup+1 too many
	// for a group.
	x.v3Query(ipv4.IGMPv3Query{MaxRespCode: 10, Group: groups[full], Sources: srcs[:1]})
	x.v3Query(ipv4.IGMPv3Query{MaxRespCode: 10, Group: groups[full+1], Sources: srcs})
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
		for _, rec := range strings.Fields(strings.TrimPrefix(m, "v3 ")) {
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

// TestZeroMaxRespFlood: like Linux, a query with Max Resp Code 0 allows a
// tenth of a second, and repeated queries while an answer is pending add
// none.
func TestZeroMaxRespFlood(t *testing.T) {
	x := newHost(t, fast, 1500)
	x.socket().join(group)
	x.Settle()
	for _, c := range []struct {
		name  string
		query ipv4.IGMPv3Query
		want  string
	}{
		{"general", ipv4.IGMPv3Query{MaxRespCode: 0}, "v3 IS_EX(239.1.2.3){}"},
		{"group-specific", ipv4.IGMPv3Query{MaxRespCode: 0, Group: group}, "v3 IS_EX(239.1.2.3){}"},
		{"group-and-source", ipv4.IGMPv3Query{MaxRespCode: 0, Group: group, Sources: []netip.Addr{s1}}, "v3 IS_IN(239.1.2.3){192.0.2.7}"},
	} {
		for range 2000 {
			x.v3Query(c.query)
			x.Fire() // the clock stands: nothing is due yet, unless the delay drawn was 0
		}
		got := append(x.Sent, x.After(igmp.MinQueryResponse)...)
		x.Sent = nil
		if !slices.Equal(got, []string{c.want}) {
			t.Errorf("%s: 2000 queries with code 0 drew %q, want one %s", c.name, got, c.want)
		}
		x.Idle()
	}
}

// TestAllHostsNeverReported: the all-hosts group is never reported (RFC
// 3376 5), even to a query for it, even when a socket joined it.
func TestAllHostsNeverReported(t *testing.T) {
	x := newHost(t, fast, 1500)
	a := x.socket()
	a.join(ipv4.AllHostsGroup)
	x.Idle()
	a.join(group)
	x.Settle()
	x.v3Query(ipv4.IGMPv3Query{MaxRespCode: 1, Group: ipv4.AllHostsGroup})
	x.v3Query(ipv4.IGMPv3Query{MaxRespCode: 1, Group: ipv4.AllHostsGroup, Sources: []netip.Addr{s1}})
	x.v3Query(ipv4.IGMPv3Query{MaxRespCode: 1})
	x.Expect(time.Second, "v3 IS_EX(239.1.2.3){}")
	// Nor in v2 mode.
	x.v2Message(ipv4.IGMPMembershipQuery, 1, ipv4.AllHostsGroup)
	x.Expect(time.Second)
	a.leave(ipv4.AllHostsGroup)
	x.Expect(time.Second)
}

// TestSilentHost: without a Send hook, as on loopback, a host tracks
// membership and never schedules anything.
func TestSilentHost(t *testing.T) {
	scheduled := 0
	h := igmp.New(igmp.Config{}, 65536, igmp.Hooks{Schedule: func(time.Duration) { scheduled++ }}, nil)
	defer h.Close()
	h.ChangeMembership(group, igmp.Filter{}, igmp.Filter{Mode: igmp.Exclude})
	b := make([]byte, ipv4.IGMPv3QueryMinLen)
	(&ipv4.IGMPv3Query{MaxRespCode: 1}).Put(b)
	if err := h.Receive(b); err != nil {
		t.Fatal(err)
	}
	h.Fire()
	if !h.IsMember(group) || !h.Deadline().IsZero() || scheduled != 0 {
		t.Fatalf("member %v, deadline %v, %d Schedule calls", h.IsMember(group), h.Deadline(), scheduled)
	}
	h.ChangeMembership(group, igmp.Filter{Mode: igmp.Exclude}, igmp.Filter{})
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
	h := igmp.New(igmp.Config{Now: clk.Now, Robustness: 1}, 1500, igmp.Hooks{
		Send:     func(netip.Addr, []byte) { sent++ },
		Schedule: func(d time.Duration) { asks = append(asks, d) },
	}, nil)
	h.ChangeMembership(group, igmp.Filter{}, igmp.Filter{Mode: igmp.Exclude})
	if !slices.Equal(asks, []time.Duration{0}) {
		t.Fatalf("after a join: Schedule(%v), want 0", asks)
	}
	h.Fire()
	// The request Fire answered is spent; nothing is left to ask for.
	if sent != 1 || len(asks) != 1 || !h.Deadline().IsZero() {
		t.Fatalf("after Fire: %d sent, Schedule(%v), deadline %v", sent, asks, h.Deadline())
	}
	b := make([]byte, ipv4.IGMPv3QueryMinLen)
	(&ipv4.IGMPv3Query{MaxRespCode: 50}).Put(b)
	if err := h.Receive(b); err != nil {
		t.Fatal(err)
	}
	if len(asks) != 2 || asks[1] < 0 || asks[1] > 5*time.Second {
		t.Fatalf("after a 5 s query: Schedule(%v)", asks)
	}
	if err := h.Receive(b); err != nil { // the answer stands: no call
		t.Fatal(err)
	}
	h.Close()
	if len(asks) != 3 || asks[2] != -1 {
		t.Fatalf("after Close: Schedule(%v), want a final -1", asks)
	}
	clk.Advance(time.Hour)
	h.Fire()
	h.ChangeMembership(group2, igmp.Filter{}, igmp.Filter{Mode: igmp.Exclude})
	if sent != 1 || len(asks) != 3 {
		t.Fatalf("closed host: %d sent, Schedule(%v)", sent, asks)
	}
}

// TestSuppressionWithdraws: a report heard from another host cancels our
// only pending report, and the Schedule request with it.
func TestSuppressionWithdraws(t *testing.T) {
	clk := fakeclock.New()
	var asks []time.Duration
	h := igmp.New(igmp.Config{Now: clk.Now, Version: 2}, 1500, igmp.Hooks{
		Send:     func(netip.Addr, []byte) {},
		Schedule: func(d time.Duration) { asks = append(asks, d) },
	}, nil)
	defer h.Close()
	h.ChangeMembership(group, igmp.Filter{}, igmp.Filter{Mode: igmp.Exclude})
	b := make([]byte, ipv4.IGMPLen)
	ipv4.PutIGMP(b, ipv4.IGMPv2MembershipReport, 0, group)
	if err := h.Receive(b); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(asks, []time.Duration{0, -1}) || !h.Deadline().IsZero() {
		t.Fatalf("Schedule(%v), deadline %v; want 0 then -1", asks, h.Deadline())
	}
}
