package ipv6

import (
	"bytes"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the fuzz seed corpora under testdata/fuzz")

type seed struct {
	name string
	b    []byte
}

// TestFuzzSeeds checks that the corpora under testdata/fuzz hold the seeds
// built here (go test -run TestFuzzSeeds -update-seeds rewrites them), so
// that they stay valid inputs as the code changes.
func TestFuzzSeeds(t *testing.T) {
	for target, seeds := range map[string][]seed{
		"FuzzIPv6Header": headerSeeds(),
		"FuzzExtHeaders": extSeeds(),
		"FuzzICMPv6":     icmpSeeds(),
		"FuzzNDP":        ndpSeeds(),
		"FuzzMLD":        mldSeeds(),
	} {
		dir := filepath.Join("testdata", "fuzz", target)
		for _, s := range seeds {
			want := fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", s.b)
			path := filepath.Join(dir, s.name)
			if *updateSeeds {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s is missing or stale (%v): run go test -run TestFuzzSeeds -update-seeds", path, err)
			}
		}
	}
}

func headerSeeds() []seed {
	udp := packet(tHost1, tHost2, ProtocolUDP, udpHeader(4))
	set := func(b []byte, f func([]byte)) []byte { b = slices.Clone(b); f(b); return b }
	return []seed{
		{"udp", udp},
		{"mld-hop-by-hop", packet(tLL1, AllMLDv2Routers, ProtocolHopByHop, optionsHeader(ProtocolICMPv6, routerAlertMLD), make([]byte, 28))},
		{"link-padding", append(slices.Clone(udp), 0, 0, 0, 0, 0, 0)},
		{"class-and-flow-label", set(udp, func(b []byte) { b[0], b[1], b[2], b[3] = 0x6f, 0xff, 0xff, 0xff })},
		{"no-next-header", packet(tHost1, tHost2, ProtocolNoNextHeader)},
		{"jumbogram", set(udp, func(b []byte) { b[4], b[5], b[6] = 0, 0, ProtocolHopByHop })},
		{"version-4", set(udp, func(b []byte) { b[0] = 0x45 })},
		{"short", udp[:39]},
		{"payload-past-frame", udp[:len(udp)-1]},
	}
}

func extSeeds() []seed {
	const udp, dst, frag, rt = ProtocolUDP, ProtocolDestOptions, ProtocolFragment, ProtocolRouting
	unknown := func(typ uint8) []byte { return []byte{typ, 2, 0xab, 0xcd} }
	return []seed{
		{"udp", benchPlainUDP},
		{"hop-dest-atomic-udp", benchExtUDP},
		{"router-alert", packet(tLL1, AllMLDv2Routers, ProtocolHopByHop, optionsHeader(ProtocolICMPv6, routerAlertMLD), make([]byte, 28))},
		{"unknown-option-skip", packet(tHost1, tHost2, dst, optionsHeader(udp, unknown(0x1e)), udpHeader(0))},
		{"unknown-option-discard", packet(tHost1, tHost2, dst, optionsHeader(udp, unknown(0x5e)), udpHeader(0))},
		{"unknown-option-icmp", packet(tHost1, tHost2, dst, optionsHeader(udp, unknown(0x9e)), udpHeader(0))},
		{"unknown-option-icmp-unless-multicast", packet(tHost1, tGroup, dst, optionsHeader(udp, unknown(0xde)), udpHeader(0))},
		{"jumbo-option", packet(tHost1, tHost2, ProtocolHopByHop, optionsHeader(udp, []byte{0xc2, 4, 0, 1, 0, 0}))},
		{"routing-type0-segments-left", packet(tHost1, tHost2, rt, routingHeader(udp, 0, 1), udpHeader(0))},
		{"routing-segments-left-0", packet(tHost1, tHost2, rt, routingHeader(udp, 0, 0), udpHeader(0))},
		{"routing-to-group", packet(tHost1, tGroup, rt, routingHeader(udp, 2, 0), udpHeader(0))},
		{"first-fragment", packet(tHost1, tHost2, frag, fragmentHeader(udp, 0, true, 7), udpHeader(8))},
		{"later-fragment", packet(tHost1, tHost2, frag, fragmentHeader(udp, 1232, false, 7), make([]byte, 3))},
		{"fragment-length-not-8", packet(tHost1, tHost2, frag, fragmentHeader(udp, 8, true, 7), make([]byte, 5))},
		{"fragment-past-65535", packet(tHost1, tHost2, frag, fragmentHeader(udp, 65528, false, 7), make([]byte, 16))},
		{"incomplete-chain", packet(tHost1, tHost2, frag, fragmentHeader(dst, 0, true, 1), []byte{udp, 1, 0, 0, 0, 0, 0, 0})},
		{"hop-by-hop-second", packet(tHost1, tHost2, dst, optionsHeader(ProtocolHopByHop), optionsHeader(udp), udpHeader(0))},
		{"nine-headers", packet(tHost1, tHost2, dst, optionsHeader(dst), optionsHeader(dst), optionsHeader(dst), optionsHeader(dst),
			optionsHeader(dst), optionsHeader(dst), optionsHeader(dst), optionsHeader(dst), optionsHeader(udp), udpHeader(0))},
		{"truncated-header", packet(tHost1, tHost2, dst, []byte{udp, 1, 1, 4, 0, 0, 0, 0})},
		{"eight-bytes-of-padding", packet(tHost1, tHost2, dst, []byte{udp, 1, 1, 4, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0})},
		{"nonzero-padn", packet(tHost1, tHost2, dst, []byte{udp, 0, 1, 4, 0, 0, 9, 0})},
	}
}

// sel encodes the addresses fuzzAddrs picks: a source index (0 fe80::1,
// 1 2001:db8::1, 2 ::, 3 fe80::2) and a destination index (0 fe80::2,
// 1 2001:db8::2, 2 ff02::1, 3 its solicited-node group, 4 ff3e::8000:1,
// 5 ff02::16, 6 fe80::1, 7 ff02::2).
func sel(src, dst int) byte { return byte(src | dst<<2) }

func icmpSeeds() []seed {
	invoking := packet(tHost2, tHost1, ProtocolUDP, udpHeader(12))
	fix := byte(0x80)
	msg := func(s byte, typ, code uint8, rest uint32, body []byte) []byte {
		src, dst := fuzzAddrs(s)
		return append([]byte{s}, icmpMessage(typ, code, rest, body, src, dst)...)
	}
	badSum := msg(sel(1, 1), ICMPEchoRequest, 0, 1, []byte("x"))
	badSum[3] ^= 0xff
	return []seed{
		{"echo-request", msg(sel(1, 1), ICMPEchoRequest, 0, 0x00010001, []byte("ping6"))},
		{"echo-reply-fixed", msg(fix|sel(0, 0), ICMPEchoReply, 0, 0x00010001, []byte("ping6"))},
		{"port-unreachable", msg(sel(1, 1), ICMPDestUnreachable, CodePortUnreachable, 0, invoking)},
		{"packet-too-big", msg(sel(1, 1), ICMPPacketTooBig, 0, 1280, invoking)},
		{"time-exceeded", msg(sel(1, 1), ICMPTimeExceeded, CodeReassemblyTimeout, 0, invoking)},
		{"param-problem", msg(sel(1, 1), ICMPParamProblem, CodeUnrecognizedOption, 42, invoking)},
		{"bad-checksum", badSum},
		{"truncated", []byte{sel(1, 1), ICMPEchoRequest, 0, 0, 0, 0}},
		{"wrong-addresses", append([]byte{sel(3, 2)}, icmpMessage(ICMPEchoRequest, 0, 0, nil, tHost1, tHost2)...)},
	}
}

func ndpSeeds() []seed {
	nd := func(hop, s byte, put func([]byte) int, opts ...func([]byte) int) []byte {
		src, dst := fuzzAddrs(s)
		return append([]byte{hop, s}, ndpMessage(put, src, dst, opts...)...)
	}
	raw := func(opt ...byte) func([]byte) int { return func(b []byte) int { return copy(b, opt) } }
	ra := func(b []byte) int {
		return PutRouterAdvert(b, RouterAdvertFields{CurHopLimit: 64, Flags: RAFlagManaged, RouterLifetime: 1800 * time.Second})
	}
	invoking := packet(tHost1, tHost2, ProtocolUDP, udpHeader(8))
	return []seed{
		{"router-solicit", nd(255, sel(0, 7), PutRouterSolicit, slla)},
		{"router-solicit-unspecified", nd(255, sel(2, 7), PutRouterSolicit)},
		{"router-advert", nd(255, sel(3, 2), ra, slla, func(b []byte) int { return PutMTUOption(b, 1500) },
			func(b []byte) int { return PutPrefixInfoOption(b, tPrefix) },
			func(b []byte) int { return PutRDNSSOption(b, 600, []netip.Addr{tHost1, tHost2}) })},
		{"router-advert-from-global", nd(255, sel(1, 2), ra)},
		{"neighbor-solicit", nd(255, sel(1, 3), func(b []byte) int { return PutNeighborSolicit(b, tHost2) }, slla)},
		{"dad-probe", nd(255, sel(2, 3), func(b []byte) int { return PutNeighborSolicit(b, tHost2) })},
		{"neighbor-advert", nd(255, sel(1, 1), func(b []byte) int { return PutNeighborAdvert(b, NAFlagSolicited|NAFlagOverride, tHost1) }, tlla)},
		{"neighbor-advert-solicited-multicast", nd(255, sel(1, 2), func(b []byte) int { return PutNeighborAdvert(b, NAFlagSolicited, tHost1) })},
		{"redirect", nd(255, sel(0, 1), func(b []byte) int { return PutRedirect(b, tLL2, tHost2) }, tlla,
			raw(append([]byte{OptRedirectedHdr, byte(1 + len(invoking)/8), 0, 0, 0, 0, 0, 0}, invoking...)...))},
		{"unknown-option", nd(255, sel(1, 3), func(b []byte) int { return PutNeighborSolicit(b, tHost2) }, raw(200, 1, 1, 2, 3, 4, 5, 6))},
		{"option-length-0", nd(255, sel(1, 3), func(b []byte) int { return PutNeighborSolicit(b, tHost2) }, raw(OptSourceLinkAddr, 0, 1, 2, 3, 4, 5, 6))},
		{"bad-rdnss-and-prefix", nd(255, sel(0, 2), ra, raw(OptRDNSS, 2, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8),
			raw(append([]byte{OptPrefixInfo, 4, 129}, make([]byte, 29)...)...))},
		{"hop-limit-254", nd(254, sel(1, 3), func(b []byte) int { return PutNeighborSolicit(b, tHost2) }, slla)},
		{"short", []byte{255, sel(1, 3), ICMPNeighborSolicit, 0, 0, 0, 0, 0, 0, 0, 0x20, 0x01}},
	}
}

func mldSeeds() []seed {
	m := func(s byte, b []byte) []byte {
		src, dst := fuzzAddrs(s)
		b = slices.Clone(b)
		PutChecksum(b, src, dst)
		return append([]byte{s}, b...)
	}
	v1 := func(typ uint8, delay uint16, g netip.Addr) []byte {
		b := make([]byte, MLDv1Len)
		PutMLDv1(b, typ, delay, g)
		return b
	}
	q := MLDv2Query{MaxRespCode: EncodeMLDCode(10000), Group: tGroup, QRV: 2, QQIC: 125, Sources: []netip.Addr{tHost1, tHost2}}
	qb := make([]byte, q.Len())
	q.Put(qb)
	g := MLDv2Query{MaxRespCode: 0x8123, QRV: 7, S: true, QQIC: 0x90}
	gb := make([]byte, g.Len())
	g.Put(gb)
	recs := []MLDRecordFields{
		{Type: ChangeToExcludeMode, Group: tGroup2},
		{Type: AllowNewSources, Group: tGroup, Sources: []netip.Addr{tHost1}},
		{Type: BlockOldSources, Group: tGroup, Sources: []netip.Addr{tHost2}},
	}
	rb := make([]byte, MLDv2ReportLen(recs))
	PutMLDv2Report(rb, recs)
	aux := slices.Clone(rb)
	aux[8+1] = 1
	aux = append(aux, 1, 2, 3, 4)
	return []seed{
		{"v1-query", m(sel(0, 2), v1(ICMPMLDQuery, 10000, netip.IPv6Unspecified()))},
		{"v1-report", m(sel(0, 4), v1(ICMPMLDv1Report, 0, tGroup))},
		{"v1-done", m(sel(0, 7), v1(ICMPMLDv1Done, 0, tGroup))},
		{"v2-group-and-source-query", m(sel(0, 4), qb)},
		{"v2-general-query", m(sel(0, 2), gb)},
		{"v2-report", m(sel(0, 5), rb)},
		{"v2-report-aux-data", m(sel(2, 5), aux)},
		{"query-26-bytes", m(sel(0, 2), qb[:26])},
		{"query-missing-source", m(sel(0, 4), qb[:len(qb)-16])},
		{"report-extra-record", m(sel(0, 5), func() []byte { b := slices.Clone(rb); b[7]++; return b }())},
		{"not-mld", m(sel(0, 0), icmpMessage(ICMPEchoRequest, 0, 0, nil, tLL1, tLL2))},
	}
}
