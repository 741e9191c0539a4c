package stack_test

// Helpers of the reliability tests: a link that lets a test inject frames
// synchronously (so counters are exact when inject returns) and records what
// the stack sends, frame builders, and the stats invariants.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/checksum"
	"github.com/tapnet/tapnet/internal/udpsock"
	"github.com/tapnet/tapnet/ipv6"
	"github.com/tapnet/tapnet/link"
	"github.com/tapnet/tapnet/stack"
)

var (
	relOurMAC  = ethernet.MAC{0x02, 0, 0, 0, 0, 0x01}
	relPeerMAC = ethernet.MAC{0x02, 0, 0, 0, 0, 0x02}
	relOurIP   = netip.MustParseAddr("192.0.2.1")
	relPeerIP  = netip.MustParseAddr("192.0.2.2")
	relBcastIP = netip.MustParseAddr("192.0.2.255")
	relLimited = netip.MustParseAddr("255.255.255.255")
	relOffLink = netip.MustParseAddr("198.51.100.7")
	relGroup   = netip.MustParseAddr("239.1.2.3")
	relAllHost = netip.MustParseAddr("224.0.0.1")
)

// relLink is a link.Device driven by the test: inject hands a frame to the
// stack's receive loop and returns once the stack processed it, and every
// frame the stack writes is copied into out.
type relLink struct {
	mac ethernet.MAC
	mtu int

	in     chan []byte   // a frame for the receive loop
	ack    chan struct{} // the receive loop came back for more: the frame was processed
	done   chan struct{} // closed by Close
	failed chan struct{} // closed by fail
	once   sync.Once

	mu       sync.Mutex
	pending  bool     // a frame was handed out and not yet acknowledged
	out      [][]byte // frames written
	maxOut   int      // frames kept in out; later ones are only counted
	overflow int
	written  int
	closed   bool
	err      error
}

func newRelLink(mac ethernet.MAC, mtu int) *relLink {
	return &relLink{mac: mac, mtu: mtu, maxOut: 4096, in: make(chan []byte), ack: make(chan struct{}),
		done: make(chan struct{}), failed: make(chan struct{})}
}

func (l *relLink) Info() link.Info {
	return link.Info{MTU: l.mtu, Layer: link.LayerEthernet, MAC: l.mac, BatchSize: 4}
}

// ReadFrames acknowledges the frame it handed out before, which the stack
// has processed by the time it reads again, then waits for the next.
func (l *relLink) ReadFrames(frames []link.Frame) (int, error) {
	l.mu.Lock()
	pending := l.pending
	l.pending = false
	l.mu.Unlock()
	if pending {
		select {
		case l.ack <- struct{}{}:
		case <-l.done:
		}
	}
	select {
	case f := <-l.in:
		l.mu.Lock()
		l.pending = true
		l.mu.Unlock()
		frames[0].Len = copy(frames[0].Buf[frames[0].Off:], f)
		return 1, nil
	case <-l.failed:
		l.mu.Lock()
		defer l.mu.Unlock()
		return 0, l.err
	case <-l.done:
		return 0, net.ErrClosed
	}
}

func (l *relLink) WriteFrames(frames []link.Frame) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range frames {
		if l.closed {
			return i, net.ErrClosed
		}
		f := frames[i].Bytes()
		if n := len(f); n < ethernet.HeaderLen || n > l.mtu+ethernet.HeaderLen {
			return i, syscall.EMSGSIZE
		}
		l.written++
		if len(l.out) < l.maxOut {
			l.out = append(l.out, slices.Clone(f))
		} else {
			l.overflow++
		}
	}
	return len(frames), nil
}

func (l *relLink) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.once.Do(func() { close(l.done) })
	return nil
}

// inject hands frame to the stack as if received, and returns once the
// stack has processed it.
func (l *relLink) inject(frame []byte) {
	select {
	case l.in <- frame:
	case <-l.done:
		return
	}
	select {
	case <-l.ack:
	case <-l.done:
	}
}

// fail makes the link stop on its own, as a vanished device does.
func (l *relLink) fail(err error) {
	l.mu.Lock()
	l.err = err
	l.mu.Unlock()
	close(l.failed)
}

// readLink reads dev until it fails, as a stack would, and passes each
// frame to fn (the frame's memory is reused afterwards).
func readLink(dev link.Device, fn func(frame []byte)) {
	frames := make([]link.Frame, 8)
	for i := range frames {
		frames[i] = link.Frame{Buf: make([]byte, 65600)}
	}
	for {
		n, err := dev.ReadFrames(frames)
		for i := range n {
			fn(frames[i].Bytes())
		}
		if err != nil {
			return
		}
	}
}

// writeLink writes one frame to dev.
func writeLink(dev link.Device, frame []byte) error {
	_, err := dev.WriteFrames([]link.Frame{{Buf: frame, Len: len(frame)}})
	return err
}

// take returns and forgets the frames written so far.
func (l *relLink) take() [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.out
	l.out = nil
	l.overflow = 0
	return out
}

// relEnv is a stack at 192.0.2.1/24 on a relLink whose peer, 192.0.2.2, is
// already in the ARP cache.
type relEnv struct {
	t    testing.TB
	s    *stack.Stack
	link *relLink
	nic  *stack.NIC
}

func newRelEnv(t testing.TB, opts stack.Options) *relEnv {
	t.Helper()
	e := &relEnv{t: t, s: stack.New(opts), link: newRelLink(relOurMAC, 1500)}
	t.Cleanup(func() { e.s.Close() })
	// An IPv4 host: IPv6 would add its own traffic (DAD, MLD) to what the
	// tests count; the IPv6 tests have their own environment.
	nic, err := e.s.AddNIC(e.link, stack.NICOptions{Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")},
		IPv6: stack.IPv6Options{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	e.nic = nic
	// The peer asks for us: the stack learns it, stale as Linux's
	// neigh_event_ns makes it, and answers.
	e.link.inject(relARP(1, relPeerMAC, relPeerIP, ethernet.MAC{}, relOurIP, ethernet.Broadcast))
	if _, st, ok := nic.ARP().Lookup(relPeerIP); !ok || st.String() != "stale" {
		t.Fatalf("peer not learned from its ARP request: %v %v", st, ok)
	}
	e.link.take()
	return e
}

// listen binds a UDP endpoint to addr (":port" style: any address when
// addr is invalid) and closes it at cleanup.
func (e *relEnv) listen(addr netip.Addr, port uint16) *udpsock.Endpoint {
	e.t.Helper()
	ep := udpsock.New(e.s)
	if !addr.IsValid() {
		addr = netip.IPv4Unspecified()
	}
	if err := ep.Bind(netip.AddrPortFrom(addr, port)); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { ep.Close() })
	return ep
}

var relNow = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// relDatagram is what relRead returns.
type relDatagram struct {
	data []byte
	src  netip.AddrPort
	dst  netip.Addr
}

// relRead drains ep without blocking; socket errors (ECONNREFUSED and the
// like, which a read reports once) are skipped.
func relRead(ep *udpsock.Endpoint) []relDatagram {
	var out []relDatagram
	buf := make([]byte, 70000)
	for i := 0; i < 1<<20; i++ {
		info, err := ep.Read(buf, false, relNow)
		var errno syscall.Errno
		switch {
		case err == nil:
			out = append(out, relDatagram{data: slices.Clone(buf[:info.N]), src: info.Src, dst: info.Dst})
		case errors.As(err, &errno):
		default:
			return out
		}
	}
	return out
}

// Frame builders.

func relEther(dst, src ethernet.MAC, typ uint16, payload []byte) []byte {
	f := make([]byte, ethernet.HeaderLen+len(payload))
	ethernet.PutHeader(f, dst, src, typ)
	copy(f[ethernet.HeaderLen:], payload)
	return f
}

// relARP builds an Ethernet/IPv4 ARP frame from the sender to ethDst.
func relARP(op uint16, smac ethernet.MAC, sip netip.Addr, tmac ethernet.MAC, tip netip.Addr, ethDst ethernet.MAC) []byte {
	p := make([]byte, 28)
	binary.BigEndian.PutUint16(p[0:], 1)
	binary.BigEndian.PutUint16(p[2:], 0x0800)
	p[4], p[5] = 6, 4
	binary.BigEndian.PutUint16(p[6:], op)
	copy(p[8:], smac[:])
	s, tg := sip.As4(), tip.As4()
	copy(p[14:], s[:])
	copy(p[18:], tmac[:])
	copy(p[24:], tg[:])
	return relEther(ethDst, smac, ethernet.TypeARP, p)
}

// relIP describes an IPv4 packet to build.
type relIP struct {
	tos      uint8
	id       uint16
	df, mf   bool
	offset   int // bytes
	ttl      uint8
	proto    uint8
	src, dst netip.Addr
	opts     []byte // options, padded by the caller to a multiple of 4
	payload  []byte
}

// relIPv4 serializes p with a correct header checksum.
func relIPv4(p relIP) []byte {
	hl := 20 + len(p.opts)
	b := make([]byte, hl+len(p.payload))
	b[0] = 0x40 | byte(hl/4)
	b[1] = p.tos
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	binary.BigEndian.PutUint16(b[4:], p.id)
	ff := uint16(p.offset/8) & 0x1fff
	if p.df {
		ff |= 0x4000
	}
	if p.mf {
		ff |= 0x2000
	}
	binary.BigEndian.PutUint16(b[6:], ff)
	b[8] = p.ttl
	b[9] = p.proto
	s, d := p.src.As4(), p.dst.As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	copy(b[20:], p.opts)
	copy(b[hl:], p.payload)
	relFixIPChecksum(b)
	return b
}

// relFixIPChecksum recomputes the header checksum of the packet in b, as far
// as its IHL and length allow.
func relFixIPChecksum(b []byte) {
	if len(b) < 20 {
		return
	}
	hl := int(b[0]&0xf) * 4
	if hl < 20 || hl > len(b) {
		hl = 20
	}
	b[10], b[11] = 0, 0
	binary.BigEndian.PutUint16(b[10:], checksum.Checksum(b[:hl]))
}

// relUDP builds a UDP header and payload with a correct checksum.
func relUDP(src, dst netip.Addr, sport, dport uint16, data []byte) []byte {
	b := make([]byte, 8+len(data))
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(len(b)))
	copy(b[8:], data)
	relFixUDPChecksum(b, src, dst)
	return b
}

func relFixUDPChecksum(b []byte, src, dst netip.Addr) {
	b[6], b[7] = 0, 0
	sum := checksum.PseudoHeader(src.As4(), dst.As4(), 17, len(b))
	c := ^checksum.Fold(checksum.Sum(b, sum))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(b[6:], c)
}

// relICMP builds an ICMP message with a correct checksum.
func relICMP(typ, code uint8, rest uint32, body []byte) []byte {
	b := make([]byte, 8+len(body))
	b[0], b[1] = typ, code
	binary.BigEndian.PutUint32(b[4:], rest)
	copy(b[8:], body)
	binary.BigEndian.PutUint16(b[2:], checksum.Checksum(b))
	return b
}

// relUDPFrame is a well-formed frame from the peer carrying a UDP datagram.
func relUDPFrame(src, dst netip.Addr, sport, dport uint16, data []byte) []byte {
	ethDst := relOurMAC
	if dst == relBcastIP || dst == relLimited {
		ethDst = ethernet.Broadcast
	} else if dst.Is4() && dst.As4()[0]&0xf0 == 0xe0 {
		ethDst = ethernet.MulticastIPv4(dst.As4())
	}
	ip := relIPv4(relIP{ttl: 64, proto: 17, id: 1, src: src, dst: dst, payload: relUDP(src, dst, sport, dport, data)})
	return relEther(ethDst, relPeerMAC, ethernet.TypeIPv4, ip)
}

// relSent is a frame the stack sent, parsed.
type relSent struct {
	ethDst, ethSrc ethernet.MAC
	etherType      uint16
	ip             []byte // the IP packet (header included)
	proto          uint8  // the upper-layer protocol (IPv6: behind the extension headers)
	src, dst       netip.Addr
	l4             []byte // the IP payload
}

// relParseSent parses and validates a frame the stack wrote: whatever the
// stack sends must be well formed, with correct checksums.
func relParseSent(t testing.TB, f []byte) relSent {
	t.Helper()
	if len(f) < 14 {
		t.Fatalf("stack sent a %d-byte runt", len(f))
	}
	h := ethernet.Header(f)
	s := relSent{ethDst: h.Dst(), ethSrc: h.Src(), etherType: h.Type()}
	if s.ethSrc != relOurMAC {
		t.Fatalf("frame sent from %v, not our MAC", s.ethSrc)
	}
	p := f[14:]
	switch s.etherType {
	case ethernet.TypeARP:
		if len(p) != 28 {
			t.Fatalf("ARP frame of %d bytes", len(p))
		}
		return s
	case ethernet.TypeIPv4:
	case ethernet.TypeIPv6:
		return relParseSent6(t, s, p)
	default:
		t.Fatalf("stack sent EtherType %#04x", s.etherType)
	}
	if len(p) < 20 || p[0]>>4 != 4 {
		t.Fatalf("bad IPv4 packet sent: %x", p)
	}
	hl := int(p[0]&0xf) * 4
	tl := int(binary.BigEndian.Uint16(p[2:]))
	if hl < 20 || tl < hl || tl != len(p) {
		t.Fatalf("sent IPv4 header: IHL %d, total length %d, packet %d bytes", hl, tl, len(p))
	}
	if checksum.Checksum(p[:hl]) != 0 {
		t.Fatalf("sent IPv4 header checksum wrong: %x", p[:hl])
	}
	s.ip, s.proto = p, p[9]
	s.src, s.dst = netip.AddrFrom4([4]byte(p[12:16])), netip.AddrFrom4([4]byte(p[16:20]))
	s.l4 = p[hl:]
	frag := binary.BigEndian.Uint16(p[6:])&0x3fff != 0
	dhcpBroadcast := s.src.IsUnspecified() && s.dst == relLimited && s.proto == 17 // a DHCP client's
	if !dhcpBroadcast && (s.src.As4()[0] == 127 || s.src.As4()[0] == 0 || s.src.As4()[0] >= 224) {
		t.Fatalf("stack sent a packet from martian source %v", s.src)
	}
	if frag {
		return s
	}
	switch s.proto {
	case 1:
		if len(s.l4) < 8 || checksum.Checksum(s.l4) != 0 {
			t.Fatalf("sent ICMP message malformed or with a bad checksum: %x", s.l4)
		}
	case 17:
		if len(s.l4) < 8 || int(binary.BigEndian.Uint16(s.l4[4:])) != len(s.l4) {
			t.Fatalf("sent UDP length wrong: %x", s.l4)
		}
		sum := checksum.PseudoHeader(s.src.As4(), s.dst.As4(), 17, len(s.l4))
		if binary.BigEndian.Uint16(s.l4[6:]) == 0 || checksum.Fold(checksum.Sum(s.l4, sum)) != 0xffff {
			t.Fatalf("sent UDP checksum wrong: %x", s.l4)
		}
	}
	return s
}

// relParseSent6 validates an IPv6 packet the stack sent (p, from the frame
// in s): a header whose payload length is the packet's, no martian
// source, the group's MAC for a group, extension headers that walk, NDP
// with hop limit 255 and MLD with 1 and a Router Alert, correct checksums,
// and ICMPv6 errors that fit the minimum MTU and never quote an error.
func relParseSent6(t testing.TB, s relSent, p []byte) relSent {
	t.Helper()
	h, err := ipv6.Parse(p)
	if err != nil || ipv6.HeaderLen+h.PayloadLen() != len(p) {
		t.Fatalf("bad IPv6 packet sent (%v): %x", err, p)
	}
	s.ip, s.src, s.dst = p, h.Src(), h.Dst()
	if s.src.IsMulticast() || s.src.IsLoopback() || !s.dst.IsValid() || s.dst.IsUnspecified() || s.dst.IsLoopback() {
		t.Fatalf("stack sent an IPv6 packet from %v to %v", s.src, s.dst)
	}
	if s.dst.IsMulticast() && s.ethDst != ethernet.MAC(ipv6.MulticastMAC(s.dst)) {
		t.Fatalf("packet to %v sent to MAC %v", s.dst, s.ethDst)
	}
	ext, err := ipv6.WalkExtHeaders(p)
	if err != nil {
		t.Fatalf("sent IPv6 extension headers do not walk (%v): %x", err, p)
	}
	s.proto, s.l4 = ext.Protocol, p[ext.Offset:]
	if ext.Fragmented && !ext.AtomicFragment {
		if len(p) > 1500 {
			t.Fatalf("fragment of %d bytes sent", len(p))
		}
		return s
	}
	switch s.proto {
	case ipv6.ProtocolICMPv6:
		m, err := ipv6.ParseICMP(s.l4, s.src, s.dst)
		if err != nil {
			t.Fatalf("sent ICMPv6 message malformed (%v): %x", err, s.l4)
		}
		relCheckSentICMPv6(t, s, h, ext, m)
	case 17:
		if len(s.l4) < 8 || int(binary.BigEndian.Uint16(s.l4[4:])) != len(s.l4) {
			t.Fatalf("sent UDP length wrong: %x", s.l4)
		}
		sum := ipv6.PseudoHeaderSum(s.src, s.dst, 17, len(s.l4))
		if binary.BigEndian.Uint16(s.l4[6:]) == 0 || checksum.Fold(checksum.Sum(s.l4, sum)) != 0xffff {
			t.Fatalf("sent UDP checksum wrong: %x", s.l4)
		}
	default:
		t.Fatalf("stack sent IPv6 protocol %d", s.proto)
	}
	if s.src.IsUnspecified() && s.proto != ipv6.ProtocolICMPv6 {
		t.Fatalf("stack sent protocol %d from ::", s.proto)
	}
	return s
}

// relCheckSentICMPv6 checks the rules of the ICMPv6 message m the stack
// sent.
func relCheckSentICMPv6(t testing.TB, s relSent, h ipv6.Header, ext ipv6.ExtHeaders, m ipv6.ICMP) {
	t.Helper()
	switch typ := m.Type(); {
	case typ >= ipv6.ICMPRouterSolicit && typ <= ipv6.ICMPRedirect:
		if h.HopLimit() != 255 {
			t.Fatalf("NDP type %d sent with hop limit %d", typ, h.HopLimit())
		}
	case typ == ipv6.ICMPMLDv1Report || typ == ipv6.ICMPMLDv1Done || typ == ipv6.ICMPMLDv2Report || typ == ipv6.ICMPMLDQuery:
		if h.HopLimit() != 1 || !ext.RouterAlert {
			t.Fatalf("MLD type %d sent with hop limit %d, router alert %v", typ, h.HopLimit(), ext.RouterAlert)
		}
	case m.IsError():
		if len(s.ip) > ipv6.MinMTU {
			t.Fatalf("ICMPv6 error of %d bytes sent", len(s.ip))
		}
		if s.dst.IsMulticast() || s.src.IsUnspecified() {
			t.Fatalf("ICMPv6 error sent from %v to %v", s.src, s.dst)
		}
		if q := m.Body(); len(q) > ipv6.HeaderLen && q[6] == ipv6.ProtocolICMPv6 && q[ipv6.HeaderLen] < 128 {
			t.Fatalf("ICMPv6 error sent about an ICMPv6 error: %x", m)
		}
	case typ == ipv6.ICMPEchoRequest:
		t.Fatalf("stack sent an echo request")
	}
	if s.src.IsUnspecified() && m.Type() != ipv6.ICMPNeighborSolicit && m.Type() != ipv6.ICMPMLDv2Report &&
		m.Type() != ipv6.ICMPMLDv1Report && m.Type() != ipv6.ICMPRouterSolicit {
		t.Fatalf("ICMPv6 type %d sent from ::", m.Type())
	}
}

// Counters.

// relDelta returns the counters that changed between two snapshots.
func relDelta(before, after map[string]uint64) map[string]uint64 {
	d := map[string]uint64{}
	for k, v := range after {
		if v != before[k] {
			d[k] = v - before[k]
		}
	}
	return d
}

func relFormat(m map[string]uint64) string {
	keys := slices.Collect(maps.Keys(m))
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%d", k, m[k])
	}
	return "{" + strings.TrimSpace(b.String()) + "}"
}

// relIPNonDrops are the IP counters that do not count a packet's end.
var relIPNonDrops = map[string]bool{
	"IP.Received": true, "IP.Delivered": true, "IP.WithOptions": true, "IP.FragmentsIn": true,
	"IP.Reassembled": true, "IP.UnknownProtocol": true, "IP.Sent": true, "IP.FragmentsOut": true, "IP.NoRoute": true, "IP.Loopback": true,
}

// relCheckBalance checks that the counters add up: every frame received
// ends in exactly one place. Counters added later to the IP group are
// taken for drop reasons.
func relCheckBalance(t testing.TB, m map[string]uint64) {
	t.Helper()
	var errs []string
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Sprintf(format, args...))
		}
	}
	ipFromLink := m["IP.Received"] - m["IP.Loopback"] + m["IPv6.Received"] - m["IPv6.Loopback"]
	link := m["Link.Runts"] + m["Link.UnknownEtherType"] + m["Link.OtherHost"] + m["ARP.Received"] + ipFromLink
	check(m["Link.RxFrames"] == link, "Link.RxFrames %d != runts+ethertype+otherhost+ARP+IP %d", m["Link.RxFrames"], link)

	var ipDrops uint64
	for k, v := range m {
		if strings.HasPrefix(k, "IP.") && !relIPNonDrops[k] {
			ipDrops += v
		}
	}
	in := m["IP.Received"] + m["IP.Reassembled"]
	out := ipDrops + m["IP.FragmentsIn"] + m["IP.Delivered"]
	check(in == out, "IP.Received+Reassembled %d != drops %d + FragmentsIn %d + Delivered %d", in, ipDrops, m["IP.FragmentsIn"], m["IP.Delivered"])

	up := m["ICMP.Received"] + m["UDP.Received"] + m["IP.UnknownProtocol"]
	igmp := m["IGMP.Received"] + m["IGMP.Malformed"] + m["IGMP.BadChecksum"]
	up += m["ICMPv6.Received"]
	delivered := m["IP.Delivered"] + m["IPv6.Delivered"]
	check(delivered == up+igmp, "IP.Delivered+IPv6.Delivered %d != ICMP+ICMPv6+UDP+IGMP+unknown %d", delivered, up+igmp)
	udpOut := m["UDP.Malformed"] + m["UDP.ChecksumErrors"] + m["UDP.ZeroChecksum"] + m["UDP.NoPort"] + m["UDP.Delivered"] + m["UDP.BufferErrors"]
	check(m["UDP.Received"] == udpOut, "UDP.Received %d != malformed+checksum+zero+noport+delivered+buffer %d", m["UDP.Received"], udpOut)
	icmpOut := m["ICMP.Malformed"] + m["ICMP.BadChecksum"] + m["ICMP.EchoRequests"] + m["ICMP.ErrorsReceived"]
	check(m["ICMP.Received"] >= icmpOut, "ICMP.Received %d < malformed+checksum+echo+errors %d", m["ICMP.Received"], icmpOut)
	check(m["ICMP.EchoRequests"] >= m["ICMP.EchoIgnored"]+m["ICMP.EchoReplies"], "ICMP echo requests %d < ignored+replied", m["ICMP.EchoRequests"])
	check(m["IP.FragmentsIn"] == m["Reassembly.Fragments"] && m["IP.Reassembled"] == m["Reassembly.Reassembled"],
		"IP.FragmentsIn %d, Reassembled %d != Reassembly.Fragments %d, Reassembled %d",
		m["IP.FragmentsIn"], m["IP.Reassembled"], m["Reassembly.Fragments"], m["Reassembly.Reassembled"])
	relCheckBalance6(check, m)
	arpOut := m["ARP.Malformed"] + m["ARP.MartianSource"] + m["ARP.NotForUs"] + m["ARP.RepliesSent"] + m["ARP.Conflicts"]
	check(m["ARP.Received"] >= arpOut, "ARP.Received %d < malformed+martian+notforus+replies+conflicts %d", m["ARP.Received"], arpOut)
	if len(errs) > 0 {
		t.Errorf("counters do not add up:\n  %s\n  in %s", strings.Join(errs, "\n  "), relFormat(relNonZero(m)))
	}
}

// relIPv6NonDrops are the IPv6 counters that do not count a packet's end.
var relIPv6NonDrops = map[string]bool{
	"IPv6.Received": true, "IPv6.Delivered": true, "IPv6.FragmentsIn": true, "IPv6.AtomicFragments": true,
	"IPv6.Reassembled": true,
	"IPv6.Sent":        true, "IPv6.FragmentsOut": true, "IPv6.NoRoute": true, "IPv6.Loopback": true,
}

// relCheckBalance6 checks that every IPv6 packet ends in one place.
func relCheckBalance6(check func(bool, string, ...any), m map[string]uint64) {
	var drops uint64
	for k, v := range m {
		if strings.HasPrefix(k, "IPv6.") && !relIPv6NonDrops[k] {
			drops += v
		}
	}
	in := m["IPv6.Received"] + m["IPv6.Reassembled"]
	out := drops + m["IPv6.FragmentsIn"] + m["IPv6.Delivered"]
	check(in == out, "IPv6.Received+Reassembled %d != drops %d + FragmentsIn %d + Delivered %d", in, drops, m["IPv6.FragmentsIn"], m["IPv6.Delivered"])
	check(m["IPv6.FragmentsIn"] == m["Reassembly6.Fragments"] && m["IPv6.Reassembled"] == m["Reassembly6.Reassembled"],
		"IPv6.FragmentsIn %d, Reassembled %d != Reassembly6.Fragments %d, Reassembled %d",
		m["IPv6.FragmentsIn"], m["IPv6.Reassembled"], m["Reassembly6.Fragments"], m["Reassembly6.Reassembled"])
	// Every ICMPv6 message ends in at most one of these (echo replies and
	// router solicitations are not counted; Malformed is left out, as it
	// also counts errors, already in ErrorsReceived, with a short quote).
	ndp := m["NDP.Malformed"] + m["NDP.NoLinkLayer"] + m["NDP.SolicitsReceived"] + m["NDP.AdvertsReceived"] +
		m["NDP.RouterAdverts"] + m["NDP.RouterAdvertsIgnored"] + m["NDP.Redirects"]
	mldIn := m["MLD.Received"] + m["MLD.Malformed"] + m["ICMPv6.MLDBadIPHeader"]
	icmpOut := m["ICMPv6.BadChecksum"] + m["ICMPv6.EchoRequests"] + m["ICMPv6.ErrorsReceived"] +
		m["ICMPv6.UnknownType"] + ndp + mldIn
	check(m["ICMPv6.Received"] >= icmpOut, "ICMPv6.Received %d < checksum+echo+errors+unknown+NDP+MLD %d", m["ICMPv6.Received"], icmpOut)
	check(m["ICMPv6.EchoRequests"] >= m["ICMPv6.EchoReplies"], "ICMPv6 echo requests %d < replies %d", m["ICMPv6.EchoRequests"], m["ICMPv6.EchoReplies"])
	check(m["ICMPv6.ErrorsReceived"] >= max(m["ICMPv6.ErrorsDelivered"], m["ICMPv6.PacketTooBig"]),
		"ICMPv6 errors received %d < delivered %d or packet too big %d", m["ICMPv6.ErrorsReceived"], m["ICMPv6.ErrorsDelivered"], m["ICMPv6.PacketTooBig"])
}

func relNonZero(m map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}
