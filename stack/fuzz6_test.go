package stack_test

// FuzzStack6: the whole stack fuzzed as FuzzStack does, on a dual-stack
// NIC, with records that build IPv6 packets, ICMPv6 (NDP, MLD) messages and
// UDP6 datagrams.

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/checksum"
	"github.com/tapnet/tapnet/ipv6"
	"github.com/tapnet/tapnet/stack"
)

var (
	relOurIP6    = netip.MustParseAddr("2001:db8::1")
	relPeerIP6   = netip.MustParseAddr("2001:db8::2")
	relOurLL     = ipv6.AddrFromPrefix(ipv6.LinkLocalPrefix, ipv6.EUI64(relOurMAC))
	relPeerLL    = ipv6.AddrFromPrefix(ipv6.LinkLocalPrefix, ipv6.EUI64(relPeerMAC))
	relAllNodes6 = netip.MustParseAddr("ff02::1")
	relOurSNM    = ipv6.SolicitedNode(relOurIP6)
	relGroup6    = netip.MustParseAddr("ff0e::1:2:3")
)

var updateStackSeeds = flag.Bool("update-seeds", false, "rewrite the FuzzStack6 seed corpus under testdata/fuzz")

// newRelEnv6 is newRelEnv on a dual-stack NIC: 192.0.2.1/24 and
// 2001:db8::1/64, usable at once (no DAD), accepting router
// advertisements; the peer is known by both its IPv6 addresses.
func newRelEnv6(t testing.TB, opts stack.Options) *relEnv {
	t.Helper()
	e := &relEnv{t: t, s: stack.New(opts), link: newRelLink(relOurMAC, 1500)}
	t.Cleanup(func() { e.s.Close() })
	nic, err := e.s.AddNIC(e.link, stack.NICOptions{
		Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("2001:db8::1/64")},
		IPv6:      stack.IPv6Options{DADTransmits: -1, AcceptRA: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.nic = nic
	e.link.inject(relARP(1, relPeerMAC, relPeerIP, ethernet.MAC{}, relOurIP, ethernet.Broadcast))
	e.learnPeer6()
	e.link.take()
	return e
}

// learnPeer6 has the peer solicit both our addresses, which makes the
// stack learn its two addresses (stale, usable at once).
func (e *relEnv) learnPeer6() {
	e.link.inject(rel6NS(relPeerIP6, relOurIP6, ipv6.SolicitedNode(relOurIP6), true))
	e.link.inject(rel6NS(relPeerLL, relOurLL, ipv6.SolicitedNode(relOurLL), true))
}

// IPv6 frame builders.

// Extension headers for rel6Build carry their own type in a byte past
// their end, so that a header needs no separate argument.
func rel6Ext(typ uint8, body []byte) []byte { return append(bytes.Clone(body), typ) }

func rel6ExtType(x []byte) uint8 { return x[len(x)-1] }

// rel6Strip drops the type byte rel6Ext appended.
func rel6Strip(x []byte) []byte { return x[:len(x)-1] }

// rel6Opts builds a hop-by-hop or destination options header holding
// opts, padded to 8 bytes.
func rel6Opts(typ uint8, opts []byte) []byte {
	b := append([]byte{0, 0}, opts...)
	for pad := (8 - len(b)%8) % 8; pad > 0; {
		if pad == 1 {
			b = append(b, ipv6.OptPad1)
			pad = 0
		} else {
			b = append(b, ipv6.OptPadN, byte(pad-2))
			b = append(b, make([]byte, pad-2)...)
			pad = 0
		}
	}
	b[1] = byte(len(b)/8 - 1)
	return rel6Ext(typ, b)
}

// rel6RouterAlert is the hop-by-hop header MLD comes with.
func rel6RouterAlert() []byte {
	return rel6Opts(ipv6.ProtocolHopByHop, []byte{ipv6.OptRouterAlert, 2, 0, 0})
}

// rel6Frag is a fragment header.
func rel6Frag(off int, more bool, id uint32) []byte {
	b := make([]byte, 8)
	of := uint16(off/8) << 3
	if more {
		of |= 1
	}
	binary.BigEndian.PutUint16(b[2:], of)
	binary.BigEndian.PutUint32(b[4:], id)
	return rel6Ext(ipv6.ProtocolFragment, b)
}

// rel6Build builds an IPv6 packet whose extension headers, made by
// rel6Ext, precede payload; it links their next-header fields.
func rel6Build(src, dst netip.Addr, hop, proto uint8, payload []byte, exts ...[]byte) []byte {
	var body []byte
	next := proto
	for i := len(exts) - 1; i >= 0; i-- {
		x := bytes.Clone(rel6Strip(exts[i]))
		x[0] = next
		next = rel6ExtType(exts[i])
		body = append(x, body...)
	}
	body = append(body, payload...)
	b := make([]byte, ipv6.HeaderLen+len(body))
	ipv6.Put(b, ipv6.Fields{PayloadLen: len(body), NextHeader: next, HopLimit: hop, Src: src, Dst: dst})
	copy(b[ipv6.HeaderLen:], body)
	return b
}

// rel6ICMP builds an ICMPv6 message with a correct checksum.
func rel6ICMP(src, dst netip.Addr, typ, code uint8, rest uint32, body []byte) []byte {
	b := make([]byte, ipv6.ICMPHeaderLen+len(body))
	copy(b[ipv6.ICMPHeaderLen:], body)
	ipv6.PutICMPHeader(b, typ, code, rest)
	ipv6.PutChecksum(b, src, dst)
	return b
}

// rel6UDP builds a UDP header and payload with a correct checksum.
func rel6UDP(src, dst netip.Addr, sport, dport uint16, data []byte) []byte {
	b := make([]byte, 8+len(data))
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(len(b)))
	copy(b[8:], data)
	rel6FixUDPChecksum(b, src, dst)
	return b
}

func rel6FixUDPChecksum(b []byte, src, dst netip.Addr) {
	b[6], b[7] = 0, 0
	c := ^checksum.Fold(checksum.Sum(b, ipv6.PseudoHeaderSum(src, dst, 17, len(b))))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(b[6:], c)
}

// rel6EtherDst is where a packet to dst goes on Ethernet: our MAC, or the
// group's MAC.
func rel6EtherDst(dst netip.Addr) ethernet.MAC {
	if dst.IsMulticast() {
		return ipv6.MulticastMAC(dst)
	}
	return relOurMAC
}

// rel6Frame wraps an IPv6 packet from the peer in a frame to its
// destination.
func rel6Frame(pkt []byte) []byte {
	return relEther(rel6EtherDst(ipv6.Header(pkt).Dst()), relPeerMAC, ethernet.TypeIPv6, pkt)
}

// rel6ICMPFrame is a frame carrying an ICMPv6 message from src to dst.
func rel6ICMPFrame(src, dst netip.Addr, hop, typ, code uint8, rest uint32, body []byte, exts ...[]byte) []byte {
	return rel6Frame(rel6Build(src, dst, hop, ipv6.ProtocolICMPv6, rel6ICMP(src, dst, typ, code, rest, body), exts...))
}

// rel6UDPFrame is a frame carrying a UDP6 datagram.
func rel6UDPFrame(src, dst netip.Addr, sport, dport uint16, data []byte) []byte {
	return rel6Frame(rel6Build(src, dst, 64, 17, rel6UDP(src, dst, sport, dport, data)))
}

// rel6NS is a neighbour solicitation for target, with the peer's
// link-layer address when slla.
func rel6NS(src, target, dst netip.Addr, slla bool) []byte {
	body := target.AsSlice()
	body = append(body, make([]byte, 0, 8)...)
	if slla {
		o := make([]byte, 8)
		ipv6.PutLinkAddrOption(o, ipv6.OptSourceLinkAddr, relPeerMAC)
		body = append(body, o...)
	}
	return rel6ICMPFrame(src, dst, 255, ipv6.ICMPNeighborSolicit, 0, 0, body)
}

// rel6NA is a neighbour advertisement for target with the peer's MAC.
func rel6NA(src, target, dst netip.Addr, flags uint32) []byte {
	o := make([]byte, 8)
	ipv6.PutLinkAddrOption(o, ipv6.OptTargetLinkAddr, relPeerMAC)
	return rel6ICMPFrame(src, dst, 255, ipv6.ICMPNeighborAdvert, 0, flags, append(target.AsSlice(), o...))
}

// rel6RA is a router advertisement from the peer's link-local address
// with the options given.
func rel6RA(lifetime uint16, opts ...[]byte) []byte {
	body := make([]byte, 8) // reachable time, retrans timer
	o := make([]byte, 8)
	ipv6.PutLinkAddrOption(o, ipv6.OptSourceLinkAddr, relPeerMAC)
	body = append(body, o...)
	for _, x := range opts {
		body = append(body, x...)
	}
	rest := uint32(64)<<24 | uint32(lifetime)
	return rel6ICMPFrame(relPeerLL, relAllNodes6, 255, ipv6.ICMPRouterAdvert, 0, rest, body)
}

// Fuzz records for IPv6 (ctl bit 7 set; FuzzStack6 only):
//
//	ctl bits 0-1: 0 IPv6 packet as given; 1 IPv6 packet repaired; 2 ICMPv6
//	              message in a packet built here; 3 UDP datagram in a
//	              packet built here
//	ctl bit 2:    Ethernet destination 33:33:00:00:00:01 instead of the
//	              destination's own
//	ctl bits 3-4: addresses (see rel6FuzzAddrs)
//	ctl bit 5:    mode 1: also fix the UDP length; mode 2: hop-by-hop
//	              Router Alert and hop limit 1 (MLD); mode 3: zero checksum
//	ctl bit 6:    inject the frame twice (as for IPv4)
//
// Repairing (mode 1) sets version 6, the payload length and, for
// unfragmented UDP and ICMPv6 behind any extension headers, the transport
// checksum.
func relFuzzFrame6(ctl byte, body []byte) []byte {
	var pkt []byte
	switch ctl & 3 {
	case 0:
		pkt = body
	case 1:
		pkt = relFuzzRepair6(body, ctl)
	case 2:
		src, dst := rel6FuzzAddrs(ctl, true)
		hop := uint8(255)
		var exts [][]byte
		if ctl&32 != 0 {
			hop, exts = 1, [][]byte{rel6RouterAlert()}
		}
		m := body
		if len(m) >= 4 {
			m = bytes.Clone(m)
			ipv6.PutChecksum(m, src, dst)
		}
		pkt = rel6Build(src, dst, hop, ipv6.ProtocolICMPv6, m, exts...)
	case 3:
		src, dst := rel6FuzzAddrs(ctl, false)
		u := body
		if len(u) >= 8 {
			binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
			if ctl&32 != 0 {
				u[6], u[7] = 0, 0
			} else {
				rel6FixUDPChecksum(u, src, dst)
			}
		}
		pkt = rel6Build(src, dst, 64, 17, u)
	}
	ethDst := relOurMAC
	if len(pkt) >= ipv6.HeaderLen {
		ethDst = rel6EtherDst(ipv6.Header(pkt).Dst())
	}
	if ctl&4 != 0 {
		ethDst = ipv6.MulticastMAC(relAllNodes6)
	}
	return relEther(ethDst, relPeerMAC, ethernet.TypeIPv6, pkt)
}

// rel6FuzzAddrs picks a record's source and destination from ctl bits 3-4:
// for ICMPv6, peer link-local to ours, peer to our global address, DAD
// probe (unspecified to our solicited-node group), peer link-local to all
// nodes; for UDP, peer to our global address, link-local to link-local,
// peer to all nodes, peer to a global group.
func rel6FuzzAddrs(ctl byte, icmp bool) (src, dst netip.Addr) {
	sel := ctl >> 3 & 3
	if icmp {
		return [4]netip.Addr{relPeerLL, relPeerIP6, netip.IPv6Unspecified(), relPeerLL}[sel],
			[4]netip.Addr{relOurLL, relOurIP6, relOurSNM, relAllNodes6}[sel]
	}
	return [4]netip.Addr{relPeerIP6, relPeerLL, relPeerIP6, relPeerIP6}[sel],
		[4]netip.Addr{relOurIP6, relOurLL, relAllNodes6, relGroup6}[sel]
}

func relFuzzRepair6(p []byte, ctl byte) []byte {
	if len(p) < ipv6.HeaderLen {
		return p
	}
	p[0] = 0x60 | p[0]&0x0f
	binary.BigEndian.PutUint16(p[4:], uint16(len(p)-ipv6.HeaderLen))
	if sel := ctl >> 3 & 3; sel != 0 {
		src := [4]netip.Addr{{}, relPeerIP6, relPeerLL, relPeerLL}[sel]
		dst := [4]netip.Addr{{}, relOurIP6, relOurLL, relAllNodes6}[sel]
		s, d := src.As16(), dst.As16()
		copy(p[8:], s[:])
		copy(p[24:], d[:])
	}
	ext, err := ipv6.WalkExtHeaders(p)
	if err != nil || ext.Fragmented || ext.Offset > len(p) {
		return p
	}
	h := ipv6.Header(p)
	l4 := p[ext.Offset:]
	switch ext.Protocol {
	case 17:
		if len(l4) < 8 {
			break
		}
		if ctl&32 != 0 {
			binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
		}
		if l := int(binary.BigEndian.Uint16(l4[4:])); l >= 8 && l <= len(l4) {
			rel6FixUDPChecksum(l4[:l], h.Src(), h.Dst())
		}
	case ipv6.ProtocolICMPv6:
		if len(l4) >= 4 {
			ipv6.PutChecksum(l4, h.Src(), h.Dst())
		}
	}
	return p
}

// rel6Seeds are FuzzStack6's seeds, by name: inputs that reach every part
// of the IPv6 layer.
func rel6Seeds() []seedInput {
	raw := func(frames ...[]byte) []byte {
		var in []byte
		for _, f := range frames {
			in = append(in, relFuzzRecord(0, f)...)
		}
		return in
	}
	us, peer, ll, pll := relOurIP6, relPeerIP6, relOurLL, relPeerLL
	echo := func(src, dst netip.Addr, data []byte) []byte {
		return rel6ICMPFrame(src, dst, 64, ipv6.ICMPEchoRequest, 0, 0x00070001, data)
	}
	// A UDP datagram to the echo port, in fragments of 1232 bytes.
	big := rel6UDP(peer, us, 5000, 7, bytes.Repeat([]byte("fragmented"), 300))
	frags := func(id uint32, parts ...[2]int) [][]byte {
		var fs [][]byte
		for _, pr := range parts {
			fs = append(fs, rel6Frame(rel6Build(peer, us, 64, 17, big[pr[0]:pr[1]], rel6Frag(pr[0], pr[1] < len(big), id))))
		}
		return fs
	}
	// What we sent the peer, quoted by its errors.
	ours := rel6Build(us, peer, 64, 17, rel6UDP(us, peer, 5353, 53, []byte("query")))
	prefix := func(p string, onLink, auto bool) []byte {
		o := make([]byte, 32)
		ipv6.PutPrefixInfoOption(o, ipv6.PrefixInfo{Prefix: netip.MustParsePrefix(p), OnLink: onLink, Autonomous: auto,
			ValidLifetime: 3600, PreferredLifetime: 1800})
		return o
	}
	mtu := func(m uint32) []byte { o := make([]byte, 8); ipv6.PutMTUOption(o, m); return o }
	rdnss := func() []byte {
		srv := []netip.Addr{netip.MustParseAddr("2001:db8::53")}
		o := make([]byte, ipv6.RDNSSOptionLen(len(srv)))
		ipv6.PutRDNSSOption(o, 600, srv)
		return o
	}
	mldQuery := func(v2 bool, group netip.Addr, sources ...netip.Addr) []byte {
		body := group.AsSlice()
		if v2 {
			body = append(body, 2, 125, 0, byte(len(sources)))
			for _, s := range sources {
				body = append(body, s.AsSlice()...)
			}
		}
		dst := relAllNodes6
		if group.IsValid() && !group.IsUnspecified() {
			dst = group
		}
		return rel6ICMPFrame(pll, dst, 1, ipv6.ICMPMLDQuery, 0, 1000<<16, body, rel6RouterAlert())
	}
	dstOpt := func(typ uint8) []byte {
		return rel6Frame(rel6Build(peer, us, 64, 17, rel6UDP(peer, us, 5000, 7, []byte("opt")),
			rel6Opts(ipv6.ProtocolDestOptions, []byte{typ, 2, 0xab, 0xcd})))
	}
	routing := func(segLeft uint8) []byte {
		rh := append([]byte{0, 2, 0, segLeft, 0, 0, 0, 0}, relGroup6.AsSlice()...)
		return rel6Frame(rel6Build(peer, us, 64, 17, rel6UDP(peer, us, 5000, 7, []byte("rt0")), rel6Ext(ipv6.ProtocolRouting, rh)))
	}
	var nine [][]byte
	for range 9 {
		nine = append(nine, rel6Opts(ipv6.ProtocolDestOptions, nil))
	}
	udpWith := func(sum func(u []byte)) []byte {
		u := rel6UDP(peer, us, 5000, 7, []byte("checksum"))
		sum(u)
		return rel6Frame(rel6Build(peer, us, 64, 17, u))
	}
	ptb := rel6ICMPFrame(peer, us, 64, ipv6.ICMPPacketTooBig, 0, 1280, ours)
	ptbSmall := rel6ICMPFrame(peer, us, 64, ipv6.ICMPPacketTooBig, 0, 576, ours)
	unreach := rel6ICMPFrame(peer, us, 64, ipv6.ICMPDestUnreachable, ipv6.CodePortUnreachable, 0, ours)
	echoFrame := echo(peer, us, []byte("ping6"))
	return []seedInput{
		{"ping6-global", raw(echoFrame)},
		{"ping6-link-local", raw(echo(pll, ll, []byte("ping6")))},
		{"ping6-all-nodes", raw(echo(pll, relAllNodes6, []byte("ping6")))},
		{"ns-global", raw(rel6NS(peer, us, relOurSNM, true))},
		{"ns-unicast-no-slla", raw(rel6NS(pll, ll, ll, false))},
		{"ns-dad-probe", raw(rel6NS(netip.IPv6Unspecified(), us, relOurSNM, false))},
		{"ns-not-ours", raw(rel6NS(peer, netip.MustParseAddr("2001:db8::99"), us, true))},
		{"na-solicited", raw(rel6NA(peer, peer, us, 0x60000000))},
		{"na-unsolicited-for-our-address", raw(rel6NA(pll, us, relAllNodes6, 0x20000000))},
		{"rs", raw(rel6ICMPFrame(pll, ll, 255, ipv6.ICMPRouterSolicit, 0, 0, nil))},
		{"ra-prefix-mtu-rdnss", raw(rel6RA(1800, prefix("2001:db8:1::/64", true, true), mtu(1400), rdnss()))},
		{"ra-small-mtu-then-ping", raw(rel6RA(1800, mtu(1280)), echo(peer, us, bytes.Repeat([]byte("x"), 1400)))},
		{"ra-zero-lifetime", raw(rel6RA(0, prefix("2001:db8:2::/64", true, false)))},
		{"redirect", raw(rel6ICMPFrame(pll, ll, 255, ipv6.ICMPRedirect, 0, 0, append(peer.AsSlice(), us.AsSlice()...)))},
		{"frags-in-order", raw(frags(1, [2]int{0, 1232}, [2]int{1232, 2464}, [2]int{2464, len(big)})...)},
		{"frags-reverse", raw(frags(2, [2]int{2464, len(big)}, [2]int{1232, 2464}, [2]int{0, 1232})...)},
		{"frags-overlap", raw(frags(3, [2]int{0, 1232}, [2]int{1224, 2464}, [2]int{2464, len(big)})...)},
		{"frags-duplicate", raw(frags(4, [2]int{0, 1232}, [2]int{0, 1232}, [2]int{1232, 2464}, [2]int{2464, len(big)})...)},
		{"frag-first-only", raw(frags(5, [2]int{0, 1232})...)},
		{"frag-atomic", raw(rel6Frame(rel6Build(peer, us, 64, 17, rel6UDP(peer, us, 5000, 7, []byte("atomic")), rel6Frag(0, false, 6))))},
		{"frag-ping", raw(func() [][]byte {
			m := rel6ICMP(peer, us, ipv6.ICMPEchoRequest, 0, 0x00080001, bytes.Repeat([]byte("big ping "), 200))
			return [][]byte{
				rel6Frame(rel6Build(peer, us, 64, ipv6.ProtocolICMPv6, m[:1232], rel6Frag(0, true, 7))),
				rel6Frame(rel6Build(peer, us, 64, ipv6.ProtocolICMPv6, m[1232:], rel6Frag(1232, false, 7))),
			}
		}()...)},
		{"hop-by-hop-router-alert-udp", raw(rel6Frame(rel6Build(peer, us, 64, 17, rel6UDP(peer, us, 5000, 7, []byte("ra")), rel6RouterAlert())))},
		{"dest-option-00-skip", raw(dstOpt(0x1e))},
		{"dest-option-01-discard", raw(dstOpt(0x5e))},
		{"dest-option-10-icmp", raw(dstOpt(0x9e))},
		{"dest-option-11-icmp-unless-multicast", raw(dstOpt(0xde))},
		{"routing-type0-segments-left", raw(routing(1))},
		{"routing-type0-done", raw(routing(0))},
		{"nine-headers", raw(rel6Frame(rel6Build(peer, us, 64, 17, rel6UDP(peer, us, 5000, 7, nil), nine...)))},
		{"unknown-next-header", raw(rel6Frame(rel6Build(peer, us, 64, 253, []byte("?"))))},
		{"no-next-header", raw(rel6Frame(rel6Build(peer, us, 64, ipv6.ProtocolNoNextHeader, nil)))},
		{"mldv1-general-query", raw(mldQuery(false, netip.IPv6Unspecified()))},
		{"mldv2-general-query", raw(mldQuery(true, netip.IPv6Unspecified()))},
		{"mldv2-group-query", raw(mldQuery(true, relOurSNM))},
		{"mldv2-source-query", raw(mldQuery(true, relOurSNM, peer, us))},
		{"mld-without-router-alert", raw(rel6ICMPFrame(pll, relAllNodes6, 1, ipv6.ICMPMLDQuery, 0, 0, make([]byte, 16)))},
		{"mldv1-report", raw(rel6ICMPFrame(pll, relOurSNM, 1, ipv6.ICMPMLDv1Report, 0, 0, relOurSNM.AsSlice(), rel6RouterAlert()))},
		{"udp6-open", raw(rel6UDPFrame(peer, us, 5000, 7, []byte("hello")))},
		{"udp6-closed", raw(rel6UDPFrame(peer, us, 5000, 9, []byte("closed")))},
		{"udp6-link-local", raw(rel6UDPFrame(pll, ll, 5000, 7, []byte("ll")))},
		{"udp6-all-nodes", raw(rel6UDPFrame(pll, relAllNodes6, 5000, 7, []byte("group")))},
		{"udp6-connected", raw(rel6UDPFrame(peer, us, 53, 5353, []byte("answer")))},
		{"udp6-zero-checksum", raw(udpWith(func(u []byte) { u[6], u[7] = 0, 0 }))},
		{"udp6-bad-checksum", raw(udpWith(func(u []byte) { u[6] ^= 0x55 }))},
		{"packet-too-big", raw(ptb)},
		{"packet-too-big-small-mtu", raw(ptbSmall, rel6UDPFrame(peer, us, 5000, 7, bytes.Repeat([]byte("y"), 1400)))},
		{"port-unreachable-quoting-ours", raw(unreach)},
		{"time-exceeded-truncated-quote", raw(rel6ICMPFrame(peer, us, 64, ipv6.ICMPTimeExceeded, 0, 0, ours[:20]))},
		{"truncated-header", raw(echoFrame[:14+30])},
		{"truncated-payload", raw(echoFrame[:len(echoFrame)-3])},
		{"truncated-ext-header", relFuzzRecord(0x80|1, rel6Build(peer, us, 64, 17, nil, rel6Opts(ipv6.ProtocolDestOptions, make([]byte, 20)))[:40+6])},
		{"martian-source", raw(rel6UDPFrame(relAllNodes6, us, 5000, 7, nil))},
		{"records", append(append(append(relFuzzRecord(0x80|1|1<<3, ours), relFuzzRecord(0x80|2|3<<3|32, append([]byte{ipv6.ICMPMLDQuery, 0, 0, 0, 0, 0, 0, 0}, make([]byte, 16)...))...),
			relFuzzRecord(0x80|3, rel6UDP(peer, us, 5000, 7, []byte("record")))...),
			relFuzzRecord(0x80|2|2<<3|64, rel6ICMP(netip.IPv6Unspecified(), relOurSNM, ipv6.ICMPNeighborSolicit, 0, 0, us.AsSlice()))...)},
		{"ipv4-too", raw(relUDPFrame(relPeerIP, relOurIP, 5000, 7, []byte("v4")), rel6UDPFrame(peer, us, 5000, 7, []byte("v6")))},
	}
}

// rel6Endpoint is a transport endpoint of the stack's own that queues what
// it gets, up to a bound.
type rel6Endpoint struct {
	pkts chan stack.Packet
}

func (ep *rel6Endpoint) HandlePacket(p stack.Packet) stack.Delivery {
	select {
	case ep.pkts <- p:
		return stack.Delivered
	default:
		p.Payload.Release()
		return stack.ReceiveBufferFull
	}
}
func (ep *rel6Endpoint) HandleError(stack.ControlError)                      {}
func (ep *rel6Endpoint) AcceptMulticast(_, _ netip.Addr, _ stack.NICID) bool { return true }
func (ep *rel6Endpoint) StackClosed()                                        {}

// bind6 registers a rel6Endpoint as id, until cleanup.
func (e *relEnv) bind6(id stack.TransportID) *rel6Endpoint {
	e.t.Helper()
	ep := &rel6Endpoint{pkts: make(chan stack.Packet, 64)}
	id, err := e.s.RegisterEndpoint(17, id, ep, false, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { e.s.UnregisterEndpoint(17, id, ep); drain6(ep) })
	return ep
}

// drain6 returns what ep queued, releasing the stack's buffers.
func drain6(ep *rel6Endpoint) []relDatagram {
	var out []relDatagram
	for {
		select {
		case p := <-ep.pkts:
			b := make([]byte, p.Payload.Len())
			p.Payload.CopyTo(b)
			p.Payload.Release()
			out = append(out, relDatagram{data: b, src: p.Src, dst: p.Dst.Addr()})
		default:
			return out
		}
	}
}

// checkEchoed checks that the stack sent "still alive" to the peer at to.
func (e *relEnv) checkEchoed(to netip.Addr) {
	e.t.Helper()
	for _, out := range e.link.take() {
		s := relParseSent(e.t, out)
		if s.proto == 17 && s.dst == to && s.ethDst == relPeerMAC && len(s.l4) > 8 && string(s.l4[8:]) == "still alive" {
			return
		}
	}
	e.t.Fatalf("echo reply not sent to %v", to)
}

type seedInput struct {
	name string
	b    []byte
}

// TestFuzzStack6Seeds checks that testdata/fuzz/FuzzStack6 holds the seeds
// built by rel6Seeds (go test -run TestFuzzStack6Seeds -update-seeds
// rewrites them), so that they stay valid inputs as the code changes; the
// fuzz target itself runs them as part of go test.
func TestFuzzStack6Seeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzStack6")
	for _, s := range rel6Seeds() {
		want := fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", s.b)
		path := filepath.Join(dir, s.name)
		if *updateStackSeeds {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is missing or stale (%v): run go test -run TestFuzzStack6Seeds -update-seeds", path, err)
		}
	}
}

// FuzzStack6 is FuzzStack on a dual-stack NIC: IPv4 records as there, and
// IPv6 ones (relFuzzFrame6). After every frame it checks that whatever the
// stack sent is well formed (relParseSent) and that reassembly of either
// family stays within its memory limit; at the end that the counters of
// both families add up and that the echo endpoints still answer over IPv4
// and IPv6.
func FuzzStack6(f *testing.F) {
	for _, s := range rel6Seeds() {
		f.Add(s.b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const reasmHigh = 64 << 10
		reasm := stack.ReassemblyOptions{HighThresh: reasmHigh, LowThresh: reasmHigh / 2}
		e := newRelEnv6(t, stack.Options{
			Reassembly:    reasm,
			Reassembly6:   reasm,
			ICMPRateLimit: stack.RateLimitOptions{Now: relTicking()},
		})
		// The endpoints are the stack's own. The echo endpoint is a
		// dual-stack wildcard (no local address: both families, as a
		// "udp" socket on [::]:7 is on Linux; :: alone is IPv6 only).
		echo := e.bind6(stack.TransportID{LocalPort: 7})
		conn4 := e.bind6(stack.TransportID{LocalAddr: relOurIP, LocalPort: 5353, RemoteAddr: relPeerIP, RemotePort: 53})
		conn6 := e.bind6(stack.TransportID{LocalAddr: relOurIP6, LocalPort: 5353, RemoteAddr: relPeerIP6, RemotePort: 53})
		for _, fr := range relFuzzDecode(data, true) {
			e.link.inject(fr)
			for _, out := range e.link.take() {
				relParseSent(t, out)
			}
			st := e.s.Stats()
			if m := st.Reassembly.MemoryUsed.Load(); m > reasmHigh {
				t.Fatalf("IPv4 reassembly holds %d bytes, limit %d", m, reasmHigh)
			}
			if m := st.Reassembly6.MemoryUsed.Load(); m > reasmHigh {
				t.Fatalf("IPv6 reassembly holds %d bytes, limit %d", m, reasmHigh)
			}
		}
		relCheckBalance(t, e.s.Stats().Snapshot())
		if n := e.nic.NeighborCache().Len(); n > 1024 {
			t.Fatalf("neighbour table holds %d entries", n)
		}

		// The endpoints still work over both families: the peer, announced
		// again in case the input displaced it, sends to the echo port and
		// gets its datagram back.
		e.link.inject(relARP(1, relPeerMAC, relPeerIP, ethernet.MAC{}, relOurIP, ethernet.Broadcast))
		e.learnPeer6()
		drain6(echo)
		drain6(conn4)
		drain6(conn6)
		e.link.take()
		for _, peer := range []struct {
			ip, us netip.Addr
			frame  func(src, dst netip.Addr, sport, dport uint16, data []byte) []byte
			conn   *rel6Endpoint
		}{{relPeerIP, relOurIP, relUDPFrame, conn4}, {relPeerIP6, relOurIP6, rel6UDPFrame, conn6}} {
			from := netip.AddrPortFrom(peer.ip, 5000)
			e.link.inject(peer.frame(peer.ip, peer.us, 5000, 7, []byte("still alive")))
			if got := drain6(echo); len(got) != 1 || string(got[0].data) != "still alive" || got[0].src != from {
				t.Fatalf("echo endpoint read %v after the input, want one datagram from %v", got, from)
			}
			r, err := e.s.FindRoute(0, peer.us, peer.ip)
			if err != nil {
				t.Fatalf("no route back to %v: %v", peer.ip, err)
			}
			if err := e.s.WriteUDP(&r, 7, 5000, []byte("still alive"), stack.WriteOptions{}); err != nil {
				t.Fatalf("echo write to %v: %v", peer.ip, err)
			}
			e.checkEchoed(peer.ip)
			e.link.inject(peer.frame(peer.ip, peer.us, 53, 5353, []byte("conn")))
			if got := drain6(peer.conn); len(got) != 1 || string(got[0].data) != "conn" {
				t.Fatalf("connected endpoint of %v read %v", peer.us, got)
			}
		}
		relCheckBalance(t, e.s.Stats().Snapshot())
	})
}
