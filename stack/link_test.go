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

	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/internal/checksum"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
	"github.com/tapnet/tapnet/udp"
)

var (
	relOurMAC  = tap.MAC{0x02, 0, 0, 0, 0, 0x01}
	relPeerMAC = tap.MAC{0x02, 0, 0, 0, 0, 0x02}
	relOurIP   = netip.MustParseAddr("192.0.2.1")
	relPeerIP  = netip.MustParseAddr("192.0.2.2")
	relBcastIP = netip.MustParseAddr("192.0.2.255")
	relLimited = netip.MustParseAddr("255.255.255.255")
	relOffLink = netip.MustParseAddr("198.51.100.7")
	relGroup   = netip.MustParseAddr("239.1.2.3")
	relAllHost = netip.MustParseAddr("224.0.0.1")
)

// relLink is a tap.Link driven by the test: inject delivers a frame on the
// caller's goroutine, and every frame the stack writes is copied into out.
type relLink struct {
	mac tap.MAC
	mtu int

	mu       sync.Mutex
	deliver  func(*buffer.Buffer)
	out      [][]byte
	maxOut   int // frames kept in out; later ones are only counted
	overflow int
	written  int
	closed   bool
	err      error
}

func newRelLink(mac tap.MAC, mtu int) *relLink {
	return &relLink{mac: mac, mtu: mtu, maxOut: 4096}
}

func (l *relLink) MTU() int             { return l.mtu }
func (l *relLink) LinkAddress() tap.MAC { return l.mac }

func (l *relLink) Attach(deliver func(*buffer.Buffer)) {
	l.mu.Lock()
	l.deliver = deliver
	l.mu.Unlock()
}

func (l *relLink) WritePacket(b *buffer.Buffer) error {
	defer b.Release()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return net.ErrClosed
	}
	if n := b.Len(); n < tap.EthernetHeaderLen || n > l.mtu+tap.EthernetHeaderLen {
		return syscall.EMSGSIZE
	}
	l.written++
	if len(l.out) < l.maxOut {
		l.out = append(l.out, slices.Clone(b.Bytes()))
	} else {
		l.overflow++
	}
	return nil
}

func (l *relLink) TryWritePacket(b *buffer.Buffer) bool { return l.WritePacket(b) == nil }

func (l *relLink) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	return nil
}

func (l *relLink) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// inject hands frame to the stack as if received, and returns once the
// stack has processed it.
func (l *relLink) inject(frame []byte) {
	l.mu.Lock()
	d, closed := l.deliver, l.closed
	l.mu.Unlock()
	if d == nil || closed {
		return
	}
	b := buffer.Get(len(frame))
	b.Append(frame)
	d(b)
}

// fail makes the link stop delivery on its own, as a vanished device does.
func (l *relLink) fail(err error) {
	l.mu.Lock()
	l.err = err
	d := l.deliver
	l.mu.Unlock()
	d(nil)
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
	nic, err := e.s.AddNIC(e.link, stack.NICOptions{Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}})
	if err != nil {
		t.Fatal(err)
	}
	e.nic = nic
	// The peer asks for us: the stack learns it and answers.
	e.link.inject(relARP(1, relPeerMAC, relPeerIP, tap.MAC{}, relOurIP, tap.BroadcastMAC))
	if _, st, ok := nic.ARP().Lookup(relPeerIP); !ok || st.String() != "reachable" {
		t.Fatalf("peer not learned from its ARP request: %v %v", st, ok)
	}
	e.link.take()
	return e
}

// listen binds a UDP endpoint to addr (":port" style: any address when
// addr is invalid) and closes it at cleanup.
func (e *relEnv) listen(addr netip.Addr, port uint16) *udp.Endpoint {
	e.t.Helper()
	ep := udp.New(e.s)
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
func relRead(ep *udp.Endpoint) []relDatagram {
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

func relEther(dst, src tap.MAC, typ uint16, payload []byte) []byte {
	f := make([]byte, tap.EthernetHeaderLen+len(payload))
	tap.PutEthernetHeader(f, dst, src, typ)
	copy(f[tap.EthernetHeaderLen:], payload)
	return f
}

// relARP builds an Ethernet/IPv4 ARP frame from the sender to ethDst.
func relARP(op uint16, smac tap.MAC, sip netip.Addr, tmac tap.MAC, tip netip.Addr, ethDst tap.MAC) []byte {
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
	return relEther(ethDst, smac, tap.EtherTypeARP, p)
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
		ethDst = tap.BroadcastMAC
	} else if dst.Is4() && dst.As4()[0]&0xf0 == 0xe0 {
		ethDst = tap.MulticastMAC(dst.As4())
	}
	ip := relIPv4(relIP{ttl: 64, proto: 17, id: 1, src: src, dst: dst, payload: relUDP(src, dst, sport, dport, data)})
	return relEther(ethDst, relPeerMAC, tap.EtherTypeIPv4, ip)
}

// relSent is a frame the stack sent, parsed.
type relSent struct {
	ethDst, ethSrc tap.MAC
	etherType      uint16
	ip             []byte // the IP packet (header included), when IPv4
	proto          uint8
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
	h := tap.EthernetHeader(f)
	s := relSent{ethDst: h.Dst(), ethSrc: h.Src(), etherType: h.EtherType()}
	if s.ethSrc != relOurMAC {
		t.Fatalf("frame sent from %v, not our MAC", s.ethSrc)
	}
	p := f[14:]
	switch s.etherType {
	case tap.EtherTypeARP:
		if len(p) != 28 {
			t.Fatalf("ARP frame of %d bytes", len(p))
		}
		return s
	case tap.EtherTypeIPv4:
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
	if s.src.As4()[0] == 127 || s.src.As4()[0] == 0 || s.src.As4()[0] >= 224 {
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
	ipFromLink := m["IP.Received"] - m["IP.Loopback"]
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
	if igmp, ok := m["IGMP.Received"]; ok {
		check(m["IP.Delivered"] == up+igmp, "IP.Delivered %d != ICMP+UDP+IGMP+unknown %d", m["IP.Delivered"], up+igmp)
	} else {
		check(m["IP.Delivered"] >= up, "IP.Delivered %d < ICMP+UDP+unknown %d", m["IP.Delivered"], up)
	}
	udpOut := m["UDP.Malformed"] + m["UDP.ChecksumErrors"] + m["UDP.NoPort"] + m["UDP.Delivered"] + m["UDP.BufferErrors"]
	check(m["UDP.Received"] == udpOut, "UDP.Received %d != malformed+checksum+noport+delivered+buffer %d", m["UDP.Received"], udpOut)
	icmpOut := m["ICMP.Malformed"] + m["ICMP.BadChecksum"] + m["ICMP.EchoRequests"] + m["ICMP.ErrorsReceived"]
	check(m["ICMP.Received"] >= icmpOut, "ICMP.Received %d < malformed+checksum+echo+errors %d", m["ICMP.Received"], icmpOut)
	check(m["ICMP.EchoRequests"] >= m["ICMP.EchoIgnored"]+m["ICMP.EchoReplies"], "ICMP echo requests %d < ignored+replied", m["ICMP.EchoRequests"])
	arpOut := m["ARP.Malformed"] + m["ARP.MartianSource"] + m["ARP.NotForUs"] + m["ARP.RepliesSent"] + m["ARP.Conflicts"]
	check(m["ARP.Received"] >= arpOut, "ARP.Received %d < malformed+martian+notforus+replies+conflicts %d", m["ARP.Received"], arpOut)
	if len(errs) > 0 {
		t.Errorf("counters do not add up:\n  %s\n  in %s", strings.Join(errs, "\n  "), relFormat(relNonZero(m)))
	}
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
