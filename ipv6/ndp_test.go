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

// ndpMessage builds an NDP message with put, appends opts, and checksums
// it for src to dst.
func ndpMessage(put func(b []byte) int, src, dst netip.Addr, opts ...func(b []byte) int) []byte {
	b := make([]byte, 2048)
	n := put(b)
	for _, o := range opts {
		n += o(b[n:])
	}
	b = b[:n]
	PutChecksum(b, src, dst)
	return b
}

func slla(b []byte) int { return PutLinkAddrOption(b, OptSourceLinkAddr, tMAC) }
func tlla(b []byte) int { return PutLinkAddrOption(b, OptTargetLinkAddr, tMAC) }

var tPrefix = PrefixInfo{Prefix: netip.MustParsePrefix("2001:db8:1::/64"), OnLink: true, Autonomous: true,
	ValidLifetime: 86400, PreferredLifetime: 14400}

func TestNDPMessages(t *testing.T) {
	ra := RouterAdvertFields{CurHopLimit: 64, Flags: RAFlagOther, RouterLifetime: 1800 * time.Second,
		ReachableTime: 30 * time.Second, RetransTimer: time.Second}
	servers := []netip.Addr{tHost1, tHost2}
	raMsg := ndpMessage(func(b []byte) int { return PutRouterAdvert(b, ra) }, tLL1, AllNodes, slla,
		func(b []byte) int { return PutMTUOption(b, 1500) },
		func(b []byte) int { return PutPrefixInfoOption(b, tPrefix) },
		func(b []byte) int { return PutRDNSSOption(b, 600, servers) },
		func(b []byte) int { return copy(b, []byte{200, 1, 1, 2, 3, 4, 5, 6}) }) // unknown option
	n := parseNDP(t, raMsg, tLL1, AllNodes)
	if n.Type() != ICMPRouterAdvert || n.CurHopLimit() != 64 || n.Flags() != RAFlagOther || n.RouterLifetime() != 1800*time.Second ||
		n.ReachableTime() != 30*time.Second || n.RetransTimer() != time.Second {
		t.Fatalf("RA fields of %x", raMsg)
	}
	var types []uint8
	for o := range n.Options().All() {
		types = append(types, o.Type())
	}
	if !slices.Equal(types, []uint8{OptSourceLinkAddr, OptMTU, OptPrefixInfo, OptRDNSS, 200}) {
		t.Fatalf("options %v", types)
	}
	if o, ok := n.Options().Find(OptSourceLinkAddr); !ok || mustMAC(t, o) != tMAC {
		t.Fatal("source link-layer address")
	}
	if o, _ := n.Options().Find(OptMTU); mustMTU(t, o) != 1500 {
		t.Fatal("mtu")
	}
	if o, _ := n.Options().Find(OptPrefixInfo); mustPrefix(t, o) != tPrefix {
		t.Fatalf("prefix %+v", mustPrefix(t, o))
	}
	o, _ := n.Options().Find(OptRDNSS)
	if life, count, ok := o.RDNSSLifetime(); !ok || life != 600 || count != 2 || o.RDNSSServer(0) != tHost1 || o.RDNSSServer(1) != tHost2 {
		t.Fatalf("rdnss %x", []byte(o))
	}
	if _, ok := n.Options().Find(OptTargetLinkAddr); ok {
		t.Fatal("found an absent option")
	}

	rs := parseNDP(t, ndpMessage(PutRouterSolicit, tLL2, AllRouters, slla), tLL2, AllRouters)
	if rs.Type() != ICMPRouterSolicit || len(rs.Options()) != 8 {
		t.Fatalf("RS %x", []byte(rs))
	}
	ns := parseNDP(t, ndpMessage(func(b []byte) int { return PutNeighborSolicit(b, tHost2) }, tHost1, SolicitedNode(tHost2), slla), tHost1, SolicitedNode(tHost2))
	if ns.Type() != ICMPNeighborSolicit || ns.Target() != tHost2 {
		t.Fatalf("NS %x", []byte(ns))
	}
	flags := uint8(NAFlagSolicited | NAFlagOverride)
	na := parseNDP(t, ndpMessage(func(b []byte) int { return PutNeighborAdvert(b, flags, tHost2) }, tHost2, tHost1, tlla), tHost2, tHost1)
	if na.Type() != ICMPNeighborAdvert || na.Target() != tHost2 || na.Flags() != flags {
		t.Fatalf("NA %x", []byte(na))
	}
	if o, _ := na.Options().Find(OptTargetLinkAddr); mustMAC(t, o) != tMAC {
		t.Fatal("target link-layer address")
	}
	invoking := packet(tHost1, tHost2, ProtocolUDP, udpHeader(8))
	rd := parseNDP(t, ndpMessage(func(b []byte) int { return PutRedirect(b, tLL2, tHost2) }, tLL1, tHost1, tlla,
		func(b []byte) int {
			return copy(b, append([]byte{OptRedirectedHdr, byte(1 + len(invoking)/8), 0, 0, 0, 0, 0, 0}, invoking...))
		}),
		tLL1, tHost1)
	if rd.Type() != ICMPRedirect || rd.Target() != tLL2 || rd.Destination() != tHost2 {
		t.Fatalf("redirect %x", []byte(rd))
	}
	if o, _ := rd.Options().Find(OptRedirectedHdr); !bytes.Equal(o.RedirectedPacket(), invoking) {
		t.Fatal("redirected header")
	}
}

func parseNDP(t *testing.T, b []byte, src, dst netip.Addr) NDP {
	t.Helper()
	m, err := ParseICMP(b, src, dst)
	if err != nil {
		t.Fatal(err)
	}
	n, err := ParseNDP(m, NDPHopLimit, src, dst)
	if err != nil {
		t.Fatalf("%x: %v", b, err)
	}
	// x/net/icmp sees the same type and body, and its checksum over the
	// pseudo-header agrees with ours.
	x, err := icmp.ParseMessage(ProtocolICMPv6, b)
	if err != nil || x.Type != xipv6.ICMPType(b[0]) {
		t.Fatalf("x/net: %v %v", x, err)
	}
	body, _ := x.Body.Marshal(ProtocolICMPv6)
	xb, err := (&icmp.Message{Type: x.Type, Code: x.Code, Body: &icmp.RawBody{Data: body}}).Marshal(pseudoHeader(src, dst))
	if err != nil || !bytes.Equal(xb, b) {
		t.Fatalf("x/net rebuilds %x from %x: %v", xb, b, err)
	}
	return n
}

func mustMAC(t *testing.T, o NDPOption) [6]byte {
	t.Helper()
	mac, ok := o.LinkAddr()
	if !ok {
		t.Fatalf("link-layer address option %x", []byte(o))
	}
	return mac
}

func mustMTU(t *testing.T, o NDPOption) uint32 {
	t.Helper()
	mtu, ok := o.MTU()
	if !ok {
		t.Fatalf("mtu option %x", []byte(o))
	}
	return mtu
}

func mustPrefix(t *testing.T, o NDPOption) PrefixInfo {
	t.Helper()
	p, ok := o.PrefixInfo()
	if !ok {
		t.Fatalf("prefix option %x", []byte(o))
	}
	return p
}

func TestParseNDPErrors(t *testing.T) {
	ns := func(target netip.Addr, opts ...func([]byte) int) []byte {
		return ndpMessage(func(b []byte) int { return PutNeighborSolicit(b, target) }, tLL1, tLL2, opts...)
	}
	na := func(flags uint8) []byte {
		return ndpMessage(func(b []byte) int { return PutNeighborAdvert(b, flags, tHost2) }, tLL1, tLL2)
	}
	raw := func(opt ...byte) func([]byte) int { return func(b []byte) int { return copy(b, opt) } }
	rd := func(target, dst netip.Addr) []byte {
		return ndpMessage(func(b []byte) int { return PutRedirect(b, target, dst) }, tLL1, tLL2)
	}
	for _, c := range []struct {
		name     string
		b        []byte
		hop      uint8
		src, dst netip.Addr
		want     error
	}{
		{"echo", icmpMessage(ICMPEchoRequest, 0, 0, nil, tLL1, tLL2), 255, tLL1, tLL2, ErrNDPType},
		{"hop limit 254", ns(tHost2), 254, tLL1, tLL2, ErrNDPHopLimit},
		{"code 1", func() []byte { b := ns(tHost2); b[1] = 1; return b }(), 255, tLL1, tLL2, ErrNDPCode},
		{"NS of 23 bytes", ns(tHost2)[:23], 255, tLL1, tLL2, ErrNDPTooShort},
		{"RA of 15 bytes", ndpMessage(func(b []byte) int { return PutRouterAdvert(b, RouterAdvertFields{}) }, tLL1, tLL2)[:15], 255, tLL1, tLL2, ErrNDPTooShort},
		{"not ICMP at all", []byte{ICMPRouterAdvert, 0}, 255, tLL1, tLL2, ErrNDPTooShort},
		{"option of length 0", ns(tHost2, raw(OptSourceLinkAddr, 0, 1, 2, 3, 4, 5, 6)), 255, tLL1, tLL2, ErrNDPOptionLen},
		{"option past the end", ns(tHost2, raw(OptSourceLinkAddr, 2, 1, 2, 3, 4, 5, 6)), 255, tLL1, tLL2, ErrNDPOptionLen},
		{"one option byte", ns(tHost2, raw(OptSourceLinkAddr)), 255, tLL1, tLL2, ErrNDPOptionLen},
		{"multicast target", ns(tGroup), 255, tLL1, tLL2, ErrNDPTarget},
		{"DAD probe with SLLA", ns(tHost2, slla), 255, netip.IPv6Unspecified(), SolicitedNode(tHost2), ErrNDPSourceLinkOpt},
		{"DAD probe to unicast", ns(tHost2), 255, netip.IPv6Unspecified(), tHost2, ErrNDPDestination},
		{"DAD probe", ns(tHost2), 255, netip.IPv6Unspecified(), SolicitedNode(tHost2), nil},
		{"RS from :: with SLLA", ndpMessage(PutRouterSolicit, tLL1, tLL2, slla), 255, netip.IPv6Unspecified(), AllRouters, ErrNDPSourceLinkOpt},
		{"RS from ::", ndpMessage(PutRouterSolicit, tLL1, tLL2), 255, netip.IPv6Unspecified(), AllRouters, nil},
		{"RA from global", ndpMessage(func(b []byte) int { return PutRouterAdvert(b, RouterAdvertFields{}) }, tLL1, tLL2), 255, tHost1, AllNodes, ErrNDPSource},
		{"RA from mapped link-local", ndpMessage(func(b []byte) int { return PutRouterAdvert(b, RouterAdvertFields{}) }, tLL1, tLL2), 255,
			netip.MustParseAddr("::ffff:169.254.0.1"), AllNodes, ErrNDPSource},
		{"solicited NA to a group", na(NAFlagSolicited), 255, tLL1, AllNodes, ErrNDPSolicited},
		{"unsolicited NA to a group", na(NAFlagOverride), 255, tLL1, AllNodes, nil},
		{"redirect from global", rd(tLL2, tHost2), 255, tHost1, tLL2, ErrNDPSource},
		{"redirect to a group", rd(tLL2, tGroup), 255, tLL1, tLL2, ErrNDPTarget},
		{"redirect to a global other than the destination", rd(tHost1, tHost2), 255, tLL1, tLL2, ErrNDPRedirect},
		{"redirect on-link", rd(tHost2, tHost2), 255, tLL1, tLL2, nil},
	} {
		if _, err := ParseNDP(ICMP(c.b), c.hop, c.src, c.dst); err != c.want {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func TestNDPOptionValidity(t *testing.T) {
	// Options of the wrong length are skipped by their readers, not
	// misread.
	for _, c := range []struct {
		name string
		o    NDPOption
	}{
		{"16-byte link-layer address", NDPOption{OptSourceLinkAddr, 2, 1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 0, 0, 0, 0}},
	} {
		if _, ok := c.o.LinkAddr(); ok {
			t.Errorf("%s accepted", c.name)
		}
	}
	if _, ok := (NDPOption{OptMTU, 2, 0, 0, 0, 0, 5, 0xdc, 0, 0, 0, 0, 0, 0, 0, 0}).MTU(); ok {
		t.Error("16-byte MTU option accepted")
	}
	p := make([]byte, 32)
	PutPrefixInfoOption(p, tPrefix)
	if _, ok := NDPOption(p[:24]).PrefixInfo(); ok {
		t.Error("24-byte prefix option accepted")
	}
	p[2] = 129
	if _, ok := NDPOption(p).PrefixInfo(); ok {
		t.Error("prefix length 129 accepted")
	}
	r := make([]byte, RDNSSOptionLen(1))
	PutRDNSSOption(r, 1, []netip.Addr{tHost1})
	for _, bad := range []NDPOption{r[:8], r[:16], append(slices.Clone(r), make([]byte, 8)...)} {
		if _, _, ok := bad.RDNSSLifetime(); ok {
			t.Errorf("RDNSS of %d bytes accepted", len(bad))
		}
	}
	if NDPOption(r[:4]).RedirectedPacket() != nil {
		t.Error("short redirected header")
	}
	// The iterator stops at the first malformed option of an unvalidated
	// run, and at a caller's break.
	run := NDPOptions(append(slices.Clone(r), OptMTU, 0, 1, 2))
	count := 0
	for range run.All() {
		count++
	}
	if count != 1 {
		t.Fatalf("iterated %d options", count)
	}
	for range NDPOptions(append(slices.Clone(r), r...)).All() {
		break
	}
	// More than 127 servers do not fit the length byte.
	many := make([]netip.Addr, 130)
	for i := range many {
		many[i] = tHost1
	}
	big := make([]byte, RDNSSOptionLen(len(many)))
	if n := PutRDNSSOption(big, 1, many); n != 8+16*127 || big[1] != 255 {
		t.Fatalf("%d servers: length %d byte %d", len(many), n, big[1])
	}
}

// FuzzNDP feeds ParseNDP checksummed messages with a hop limit and
// addresses picked by the first two bytes, and checks that an accepted
// message's readers stay inside it and that rebuilding its fixed part and
// known options gives back its bytes.
func FuzzNDP(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 2+ICMPHeaderLen {
			return
		}
		src, dst := fuzzAddrs(in[1])
		b := bytes.Clone(in[2:])
		PutChecksum(b, src, dst)
		m, err := ParseICMP(b, src, dst)
		if err != nil {
			t.Fatal(err)
		}
		n, err := ParseNDP(m, in[0], src, dst)
		if err != nil {
			return
		}
		out := make([]byte, len(b))
		var k int
		switch n.Type() {
		case ICMPRouterSolicit:
			k = PutRouterSolicit(out)
		case ICMPRouterAdvert:
			k = PutRouterAdvert(out, RouterAdvertFields{CurHopLimit: n.CurHopLimit(), Flags: n.Flags(), RouterLifetime: n.RouterLifetime(),
				ReachableTime: n.ReachableTime(), RetransTimer: n.RetransTimer()})
		case ICMPNeighborSolicit:
			k = PutNeighborSolicit(out, n.Target())
		case ICMPNeighborAdvert:
			k = PutNeighborAdvert(out, n.Flags(), n.Target())
		case ICMPRedirect:
			k = PutRedirect(out, n.Target(), n.Destination())
		}
		// Reserved bytes are not rebuilt.
		switch n.Type() {
		case ICMPRouterSolicit, ICMPNeighborSolicit, ICMPRedirect:
			copy(out[4:8], b[4:8])
		case ICMPNeighborAdvert:
			copy(out[5:8], b[5:8])
		}
		for o := range n.Options().All() {
			k += rebuildOption(out[k:], o)
		}
		if k != len(b) {
			t.Fatalf("options cover %d of %d bytes", k, len(b))
		}
		PutChecksum(out, src, dst)
		if !sameButChecksum(out, b) {
			t.Fatalf("rebuilt %x from %x", out, b)
		}
	})
}

// rebuildOption writes o back through the builder of its type when its
// reader accepts it, and copies it otherwise.
func rebuildOption(b []byte, o NDPOption) int {
	switch o.Type() {
	case OptSourceLinkAddr, OptTargetLinkAddr:
		if mac, ok := o.LinkAddr(); ok {
			return PutLinkAddrOption(b, o.Type(), mac)
		}
	case OptMTU:
		if mtu, ok := o.MTU(); ok && o[2] == 0 && o[3] == 0 {
			return PutMTUOption(b, mtu)
		}
	case OptPrefixInfo:
		if p, ok := o.PrefixInfo(); ok && o[3]&0x3f == 0 && [4]byte(o[12:16]) == [4]byte{} {
			return PutPrefixInfoOption(b, p)
		}
	case OptRDNSS:
		if life, count, ok := o.RDNSSLifetime(); ok && o[2] == 0 && o[3] == 0 {
			servers := make([]netip.Addr, count)
			for i := range servers {
				servers[i] = o.RDNSSServer(i)
			}
			return PutRDNSSOption(b, life, servers)
		}
	}
	return copy(b, o)
}

// Reading an NDP or MLD message, options and records included, allocates
// nothing: the stack does it per packet.
func TestParseNDPAndMLDAllocs(t *testing.T) {
	ra := ndpMessage(func(b []byte) int { return PutRouterAdvert(b, RouterAdvertFields{CurHopLimit: 64}) }, tLL1, AllNodes, slla,
		func(b []byte) int { return PutPrefixInfoOption(b, tPrefix) },
		func(b []byte) int { return PutRDNSSOption(b, 600, []netip.Addr{tHost1}) })
	recs := []MLDRecordFields{{Type: ModeIsExclude, Group: tGroup, Sources: []netip.Addr{tHost1}}, {Type: ChangeToIncludeMode, Group: tGroup2}}
	report := make([]byte, MLDv2ReportLen(recs))
	PutMLDv2Report(report, recs)
	PutChecksum(report, tLL1, AllMLDv2Routers)
	sink := 0
	if n := testing.AllocsPerRun(100, func() {
		m, _ := ParseICMP(ra, tLL1, AllNodes)
		n, err := ParseNDP(m, NDPHopLimit, tLL1, AllNodes)
		if err != nil {
			t.Fatal(err)
		}
		for o := range n.Options().All() {
			if p, ok := o.PrefixInfo(); ok {
				sink += p.Prefix.Bits()
			}
			if _, count, ok := o.RDNSSLifetime(); ok {
				sink += count
			}
		}
		m, _ = ParseICMP(report, tLL1, AllMLDv2Routers)
		mm, err := ParseMLD(m)
		if err != nil {
			t.Fatal(err)
		}
		for r := range mm.Records() {
			sink += r.NumSources()
		}
	}); n != 0 {
		t.Fatalf("%v allocations", n)
	}
	if sink == 0 {
		t.Fatal("nothing read")
	}
}
