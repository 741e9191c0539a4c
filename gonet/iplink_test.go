package gonet

import (
	"bytes"
	"errors"
	"math/rand"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/tapnet/tapnet/ipv4"
	"github.com/tapnet/tapnet/link"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
	"github.com/tapnet/tapnet/udp"
)

// These tests run NICs on IP links (link.LayerIP, what a TUN carries): two
// stacks over an IP pipe, or one stack whose peer the test plays by reading
// and writing bare IP packets at the pipe's other end.

var ipPipe = tap.PipeOptions{Layer: link.LayerIP}

// TestIPLinkEcho echoes datagrams up to the UDP maximum between two stacks
// on an IP pipe: fragmented and reassembled both ways, with no ARP.
func TestIPLinkEcho(t *testing.T) {
	a, b := pair(t, ipPipe)
	serveEcho(t, a, 7)
	cl, err := DialUDP(b, "udp", nil, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	r := rand.New(rand.NewSource(1))
	for _, size := range []int{0, 1, 1472, 1473, 8000, udp.MaxPayload} {
		msg := make([]byte, size)
		r.Read(msg)
		if _, err := cl.Write(msg); err != nil {
			t.Fatalf("write %d: %v", size, err)
		}
		cl.SetReadDeadline(time.Now().Add(10 * time.Second))
		got := make([]byte, 70000)
		n, err := cl.Read(got)
		if err != nil {
			t.Fatalf("read %d: %v", size, err)
		}
		if !bytes.Equal(got[:n], msg) {
			t.Fatalf("size %d: echo differs (%d bytes back)", size, n)
		}
	}
	for _, s := range []*stack.Stack{a, b} {
		st := s.Stats()
		if st.IP.Reassembled.Load() != 3 || st.ARP.Requests.Load() != 0 || st.ARP.Received.Load() != 0 {
			t.Errorf("reassembled %d (want 3), ARP requests sent %d and received %d (want none)",
				st.IP.Reassembled.Load(), st.ARP.Requests.Load(), st.ARP.Received.Load())
		}
	}
}

// TestIPLinkConnRefused: ICMP port unreachable crosses an IP link.
func TestIPLinkConnRefused(t *testing.T) {
	_, b := pair(t, ipPipe)
	cl, err := DialUDP(b, "udp", nil, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 9})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cl.Write([]byte("anyone?"))
	cl.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := cl.Read(make([]byte, 16)); !errors.Is(err, wantRefusedErrno) {
		t.Fatalf("read: %v, want ECONNREFUSED", err)
	}
}

// TestIPLinkMulticast: a group joined on one stack receives what the other
// sends to it, over a link with no multicast MACs.
func TestIPLinkMulticast(t *testing.T) {
	a, b := pair(t, ipPipe)
	group := &net.UDPAddr{IP: net.IPv4(239, 1, 2, 3), Port: 5000}
	ln, err := ListenMulticastUDP(a, "udp", nil, group)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cl, err := DialUDP(b, "udp", nil, group)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.Write([]byte("to the group")); err != nil {
		t.Fatal(err)
	}
	ln.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, from, err := ln.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "to the group" || from.Addr() != netip.MustParseAddr("192.0.2.1") {
		t.Fatalf("read %q from %v: %v", buf[:n], from, err)
	}
}

func TestQUICOverIPPipe(t *testing.T) {
	runQUIC(t, ipPipe, 2, 256<<10)
}

// ipPeer is a stack on one end of an IP pipe whose other end the test
// drives: what the stack sends arrives on packets, and send injects.
type ipPeer struct {
	s       *stack.Stack
	nic     *stack.NIC
	end     *tap.PipeEnd
	packets chan []byte
}

func newIPPeer(t *testing.T, addrs ...string) *ipPeer {
	t.Helper()
	ours, end := tap.Pipe(ipPipe)
	p := &ipPeer{s: stack.New(stack.Options{}), end: end, packets: make(chan []byte, 64)}
	t.Cleanup(func() { p.s.Close(); end.Close() })
	var prefixes []netip.Prefix
	for _, a := range addrs {
		prefixes = append(prefixes, netip.MustParsePrefix(a))
	}
	var err error
	if p.nic, err = p.s.AddNIC(ours, stack.NICOptions{Addresses: prefixes, IPv6: stack.IPv6Options{Disabled: true}}); err != nil {
		t.Fatal(err)
	}
	go func() {
		frames := []link.Frame{{Buf: make([]byte, 2048)}}
		for {
			if _, err := end.ReadFrames(frames); err != nil {
				close(p.packets)
				return
			}
			select {
			case p.packets <- bytes.Clone(frames[0].Bytes()):
			default: // the test is not listening: drop
			}
		}
	}()
	return p
}

// next returns the next packet the stack sent that is not IGMP.
func (p *ipPeer) next(t *testing.T) ipv4.Header {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case pkt := <-p.packets:
			h, err := ipv4.Parse(pkt)
			if err != nil {
				t.Fatalf("stack sent %x, not an IPv4 packet: %v", pkt, err)
			}
			if h.Protocol() != ipv4.ProtocolIGMP {
				return h
			}
		case <-timeout:
			t.Fatal("no packet from the stack")
		}
	}
}

func (p *ipPeer) send(t *testing.T, pkt []byte) {
	t.Helper()
	if _, err := p.end.WriteFrames([]link.Frame{{Buf: pkt, Len: len(pkt)}}); err != nil {
		t.Fatal(err)
	}
}

// sendTo sends payload from a socket on the stack to dst.
func (p *ipPeer) sendTo(t *testing.T, dst string, payload string) {
	t.Helper()
	c, err := ListenUDP(p.s, "udp", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.WriteToUDPAddrPort([]byte(payload), netip.MustParseAddrPort(dst)); err != nil {
		t.Fatalf("send to %s: %v", dst, err)
	}
}

// TestIPLinkWritesBarePackets: unicast (with no neighbour to resolve),
// subnet and limited broadcast and multicast leave an IP link as bare IP
// packets, and the NIC looks like Linux's tun: no MAC, no ARP cache,
// point-to-point.
func TestIPLinkWritesBarePackets(t *testing.T) {
	p := newIPPeer(t, "192.0.2.2/24")
	for _, dst := range []string{"192.0.2.1:7", "192.0.2.99:7", "192.0.2.255:7", "255.255.255.255:7", "239.1.2.3:7"} {
		p.sendTo(t, dst, "hi")
		h := p.next(t)
		want := netip.MustParseAddrPort(dst).Addr()
		if h.Dst() != want || h.Src() != netip.MustParseAddr("192.0.2.2") || h.Protocol() != udp.ProtocolNumber {
			t.Errorf("to %s: stack sent %v -> %v proto %d", dst, h.Src(), h.Dst(), h.Protocol())
		}
	}
	if p.nic.ARP() != nil || p.nic.MAC() != ([6]byte{}) {
		t.Errorf("NIC on an IP link has ARP cache %v, MAC %v", p.nic.ARP(), p.nic.MAC())
	}
	ifc := p.nic.Interface()
	if ifc.Flags&net.FlagPointToPoint == 0 || ifc.Flags&net.FlagBroadcast != 0 || ifc.HardwareAddr != nil || ifc.Name != "tun0" {
		t.Errorf("Interface() = %+v, want tun0, point-to-point, no broadcast flag, no hardware address", ifc)
	}
}

// TestIPLinkPeerAddress: a /32 address with a route to its peer through
// the NIC (no gateway), and a default route through a gateway, which on a
// point-to-point link only names the link.
func TestIPLinkPeerAddress(t *testing.T) {
	p := newIPPeer(t, "192.0.2.2/32")
	if err := p.s.AddRoute(stack.RouteEntry{Dst: netip.MustParsePrefix("192.0.2.1/32"), NIC: p.nic.ID()}); err != nil {
		t.Fatal(err)
	}
	p.sendTo(t, "192.0.2.1:7", "to the peer")
	if h := p.next(t); h.Dst() != netip.MustParseAddr("192.0.2.1") || h.Src() != netip.MustParseAddr("192.0.2.2") {
		t.Fatalf("stack sent %v -> %v", h.Src(), h.Dst())
	}
	if err := p.s.SetDefaultGateway(p.nic.ID(), netip.MustParseAddr("192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	p.sendTo(t, "198.51.100.7:7", "beyond")
	if h := p.next(t); h.Dst() != netip.MustParseAddr("198.51.100.7") || h.Src() != netip.MustParseAddr("192.0.2.2") {
		t.Fatalf("stack sent %v -> %v", h.Src(), h.Dst())
	}
}

// TestIPLinkInput: an IPv4 packet written at the far end reaches a socket;
// anything else is dropped and counted by its IP version.
func TestIPLinkInput(t *testing.T) {
	p := newIPPeer(t, "192.0.2.2/24")
	c, err := ListenUDP(p.s, "udp", &net.UDPAddr{Port: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v6 := make([]byte, 48)
	v6[0] = 0x60
	p.send(t, v6)
	p.send(t, []byte{0x00})
	src, dst := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	pkt := make([]byte, ipv4.HeaderLen+udp.HeaderLen+5)
	ipv4.Put(pkt, ipv4.Fields{TotalLen: len(pkt), ID: 1, TTL: 64, Protocol: udp.ProtocolNumber, Src: src, Dst: dst})
	copy(pkt[ipv4.HeaderLen+udp.HeaderLen:], "hello")
	udp.PutHeader(pkt[ipv4.HeaderLen:], 5000, 7, src, dst)
	p.send(t, pkt)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 16)
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "hello" || from != netip.AddrPortFrom(netip.AddrFrom16(src.As16()), 5000) { // dual-stack: IPv4-mapped
		t.Fatalf("read %q from %v: %v", buf[:n], from, err)
	}
	// The packets arrive in order: the two bad ones came first.
	if got := p.s.Stats().Link.UnknownIPVersion.Load(); got != 2 {
		t.Errorf("UnknownIPVersion %d, want 2", got)
	}
}

// TestIPLinkIGMP: joining a group reports it on the link, as a bare IP
// packet.
func TestIPLinkIGMP(t *testing.T) {
	p := newIPPeer(t, "192.0.2.2/24")
	ln, err := ListenMulticastUDP(p.s, "udp", nil, &net.UDPAddr{IP: net.IPv4(239, 4, 5, 6), Port: 5000})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case pkt := <-p.packets:
			h, err := ipv4.Parse(pkt)
			// An IGMPv3 report (to 224.0.0.22) naming the group.
			if err == nil && h.Protocol() == ipv4.ProtocolIGMP && bytes.Contains(pkt[h.HeaderLen():], []byte{239, 4, 5, 6}) {
				return
			}
		case <-timeout:
			t.Fatal("no IGMP report for 239.4.5.6")
		}
	}
}

// serveEcho echoes every datagram to port on s until the test ends.
func serveEcho(t *testing.T, s *stack.Stack, port int) {
	srv, err := ListenUDP(s, "udp", &net.UDPAddr{Port: port})
	if err != nil {
		t.Fatal(err)
	}
	srv.SetReadBuffer(1 << 20)
	t.Cleanup(func() { srv.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := srv.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			srv.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
}

// TestSetDontFragmentOnTheWire: a socket's datagrams carry DF by default
// (Linux's IP_PMTUDISC_WANT), SetDontFragment(true) keeps it (DO) and
// SetDontFragment(false) clears it (IP_PMTUDISC_DONT).
func TestSetDontFragmentOnTheWire(t *testing.T) {
	p := newIPPeer(t, "192.0.2.2/24")
	c, err := ListenUDP(p.s, "udp", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	to := netip.MustParseAddrPort("192.0.2.1:7")
	for _, step := range []struct {
		name   string
		set    func() error
		wantDF bool
	}{
		{"default", func() error { return nil }, true},
		{"SetDontFragment(true)", func() error { return c.SetDontFragment(true) }, true},
		{"SetDontFragment(false)", func() error { return c.SetDontFragment(false) }, false},
	} {
		if err := step.set(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.WriteToUDPAddrPort([]byte("hi"), to); err != nil {
			t.Fatal(err)
		}
		if df := p.next(t).DontFragment(); df != step.wantDF {
			t.Errorf("%s: DF %v, want %v", step.name, df, step.wantDF)
		}
	}
}
