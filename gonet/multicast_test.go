package gonet_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/tapnet/tapnet/gonet"
	"github.com/tapnet/tapnet/igmp"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

var mcG1 = &net.UDPAddr{IP: net.IPv4(239, 1, 2, 3).To4()}

// xnetParsesCmsgs: gonet encodes control messages as x/net's
// ControlMessage marshals and parses them on this platform (Linux, macOS,
// the BSDs, AIX, Solaris); elsewhere x/net has none and gonet keeps
// Linux's numbers.
const xnetParsesCmsgs = runtime.GOOS == "linux" || runtime.GOOS == "darwin" || runtime.GOOS == "ios" ||
	runtime.GOOS == "freebsd" || runtime.GOOS == "netbsd" || runtime.GOOS == "openbsd" ||
	runtime.GOOS == "dragonfly" || runtime.GOOS == "aix" || runtime.GOOS == "solaris" || runtime.GOOS == "illumos"

// xnetPktinfo: x/net reads the destination and interface from one
// IP_PKTINFO here; the BSDs have IP_RECVDSTADDR and IP_RECVIF instead.
const xnetPktinfo = runtime.GOOS == "linux" || runtime.GOOS == "darwin" || runtime.GOOS == "ios" ||
	runtime.GOOS == "solaris" || runtime.GOOS == "illumos"

// xnetCmsg is x/net's marshalled control message where it means what
// gonet reads, and none elsewhere.
func xnetCmsg(b []byte) []byte {
	if !xnetParsesCmsgs {
		return nil
	}
	return b
}

// sysMsg is the text net's errors carry for errno from call on this system.
func sysMsg(call string, errno syscall.Errno) string {
	return gonet.OSCall(call) + ": " + gonet.OSErrno(errno).Error()
}

var setsockoptEINVAL = sysMsg("setsockopt", syscall.EINVAL)

// mcHosts plugs n stacks into one hub: host i at 192.0.2.(i+1)/24.
func mcHosts(t *testing.T, n int) []*stack.Stack {
	t.Helper()
	hub := tap.NewHub()
	var ss []*stack.Stack
	for i := range n {
		s := stack.New(stack.Options{})
		pfx := netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), 24)
		if _, err := s.AddNIC(hub.Port(tap.HubPortOptions{}), stack.NICOptions{Addresses: []netip.Prefix{pfx},
			IGMP: igmp.Config{UnsolicitedReportInterval: 20 * time.Millisecond}}); err != nil {
			t.Fatal(err)
		}
		ss = append(ss, s)
	}
	t.Cleanup(func() {
		for _, s := range ss {
			s.Close()
		}
		hub.Close()
	})
	return ss
}

func mcListen(t *testing.T, s *stack.Stack, port int) *gonet.PacketConn {
	t.Helper()
	c, err := gonet.ListenUDP(s, "udp4", &net.UDPAddr{Port: port})
	if err != nil {
		t.Fatal(err)
	}
	p := gonet.NewPacketConn(c)
	t.Cleanup(func() { p.Close() })
	return p
}

func mcIfi(t *testing.T, s *stack.Stack) *net.Interface {
	t.Helper()
	ifi, err := s.InterfaceByName("tap0")
	if err != nil {
		t.Fatal(err)
	}
	return ifi
}

// mcRead reads one datagram within d and renders what ReadFrom returned.
func mcRead(p *gonet.PacketConn, d time.Duration) string {
	p.SetReadDeadline(time.Now().Add(d))
	defer p.SetReadDeadline(time.Time{})
	b := make([]byte, 100)
	n, cm, src, err := p.ReadFrom(b)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return "none"
		}
		return "error " + err.Error()
	}
	return fmt.Sprintf("%q from %v cm=%v", b[:n], src, cm)
}

func TestInterfaces(t *testing.T) {
	s := mcHosts(t, 1)[0]
	ifs, err := s.Interfaces()
	if err != nil || len(ifs) != 2 {
		t.Fatalf("%v %v", ifs, err)
	}
	lo, tap0 := ifs[0], ifs[1]
	if lo.Index != 1 || lo.Name != "lo" || lo.Flags&net.FlagLoopback == 0 || lo.Flags&net.FlagMulticast == 0 {
		t.Fatalf("lo: %+v", lo)
	}
	if tap0.Index != 2 || tap0.Name != "tap0" || tap0.MTU != 1500 || len(tap0.HardwareAddr) != 6 ||
		tap0.Flags&(net.FlagUp|net.FlagMulticast|net.FlagBroadcast) != net.FlagUp|net.FlagMulticast|net.FlagBroadcast {
		t.Fatalf("tap0: %+v", tap0)
	}
	if ifi, err := s.InterfaceByName("tap0"); err != nil || ifi.Index != 2 {
		t.Fatalf("by name: %v %v", ifi, err)
	}
	_, err = s.InterfaceByName("eth9")
	_, kerr := net.InterfaceByName("tapnet-no-such-if")
	if err == nil || kerr == nil || err.Error() != kerr.Error() {
		t.Fatalf("missing interface: %v, net says %v", err, kerr)
	}
	if ifi, err := s.InterfaceByIndex(1); err != nil || ifi.Name != "lo" {
		t.Fatalf("by index: %v %v", ifi, err)
	}
	if _, err := s.InterfaceByIndex(9); err == nil {
		t.Fatal("index 9 found")
	}
}

func TestPacketConnJoinReceiveLeave(t *testing.T) {
	ss := mcHosts(t, 3)
	a, b, c := ss[0], ss[1], ss[2]
	ra, rc := mcListen(t, a, 5000), mcListen(t, c, 5000)
	for _, x := range []struct {
		p *gonet.PacketConn
		s *stack.Stack
	}{{ra, a}, {rc, c}} {
		if err := x.p.JoinGroup(mcIfi(t, x.s), mcG1); err != nil {
			t.Fatal(err)
		}
	}
	tx := mcListen(t, b, 0)
	dst := &net.UDPAddr{IP: mcG1.IP, Port: 5000}
	if _, err := tx.WriteTo([]byte("one"), nil, dst); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*gonet.PacketConn{ra, rc} {
		if got := mcRead(p, 2*time.Second); !strings.HasPrefix(got, `"one" from 192.0.2.2:`) || !strings.HasSuffix(got, "cm=<nil>") {
			t.Fatalf("got %s", got)
		}
	}
	if err := ra.LeaveGroup(mcIfi(t, a), mcG1); err != nil {
		t.Fatal(err)
	}
	tx.WriteTo([]byte("two"), nil, dst)
	if got := mcRead(rc, 2*time.Second); !strings.HasPrefix(got, `"two"`) {
		t.Fatalf("c got %s", got)
	}
	if got := mcRead(ra, 150*time.Millisecond); got != "none" {
		t.Fatalf("a got %s after leaving", got)
	}
}

func TestPacketConnControlMessages(t *testing.T) {
	ss := mcHosts(t, 2)
	a, b := ss[0], ss[1]
	rx := mcListen(t, a, 5000)
	ifi := mcIfi(t, a)
	if err := rx.JoinGroup(ifi, mcG1); err != nil {
		t.Fatal(err)
	}
	tx := mcListen(t, b, 4000)
	if err := tx.SetMulticastTTL(5); err != nil {
		t.Fatal(err)
	}
	dst := &net.UDPAddr{IP: mcG1.IP, Port: 5000}
	for _, c := range []struct {
		cf   ipv4.ControlFlags
		want string
	}{
		{0, "cm=<nil>"},
		{ipv4.FlagTTL, "cm=ttl=5 src=192.0.2.2 dst=<nil> ifindex=0"},
		{ipv4.FlagDst, "cm=ttl=0 src=192.0.2.2 dst=239.1.2.3 ifindex=2"},
		{ipv4.FlagSrc, "cm=ttl=0 src=192.0.2.2 dst=239.1.2.3 ifindex=2"},
		{ipv4.FlagInterface, "cm=ttl=0 src=192.0.2.2 dst=239.1.2.3 ifindex=2"},
		{ipv4.FlagTTL | ipv4.FlagDst | ipv4.FlagInterface, "cm=ttl=5 src=192.0.2.2 dst=239.1.2.3 ifindex=2"},
	} {
		rx.SetControlMessage(ipv4.FlagTTL|ipv4.FlagSrc|ipv4.FlagDst|ipv4.FlagInterface, false)
		if err := rx.SetControlMessage(c.cf, true); err != nil {
			t.Fatal(err)
		}
		tx.WriteTo([]byte("x"), nil, dst)
		got := mcRead(rx, 2*time.Second)
		if want := `"x" from 192.0.2.2:4000 ` + c.want; got != want {
			t.Errorf("flags %v: %s, want %s", c.cf, got, want)
		}
	}
	// WriteTo's control message: TTL and interface chosen per datagram.
	rx.SetControlMessage(ipv4.FlagTTL, true)
	if _, err := tx.WriteTo([]byte("y"), &ipv4.ControlMessage{TTL: 9, IfIndex: 2, Src: net.IPv4(192, 0, 2, 2)}, dst); err != nil {
		t.Fatal(err)
	}
	if got := mcRead(rx, 2*time.Second); !strings.Contains(got, "ttl=9") {
		t.Fatalf("got %s", got)
	}
	for _, c := range []struct {
		cm   *ipv4.ControlMessage
		dst  net.Addr
		want string
	}{
		{&ipv4.ControlMessage{IfIndex: 99}, dst, "write udp 0.0.0.0:4000->239.1.2.3:5000: " + sysMsg("sendmsg", syscall.ENODEV)},
		{&ipv4.ControlMessage{Src: net.IPv4(192, 0, 2, 77)}, dst, "write udp 0.0.0.0:4000->239.1.2.3:5000: " + sysMsg("sendmsg", syscall.ENETUNREACH)},
		{nil, nil, "write udp 0.0.0.0:4000: " + sysMsg("sendmsg", syscall.EDESTADDRREQ)},
	} {
		_, err := tx.WriteTo([]byte("z"), c.cm, c.dst)
		if err == nil || err.Error() != c.want {
			t.Errorf("WriteTo %v: %v, want %s", c.cm, err, c.want)
		}
	}
}

func TestPacketConnOptions(t *testing.T) {
	s := mcHosts(t, 1)[0]
	p := mcListen(t, s, 5000)
	check := func(name string, got any, err error, want any) {
		t.Helper()
		if err != nil || got != want {
			t.Errorf("%s = %v, %v; want %v", name, got, err, want)
		}
	}
	v, err := p.MulticastTTL()
	check("MulticastTTL", v, err, 1)
	v, err = p.TTL()
	check("TTL", v, err, 64)
	on, err := p.MulticastLoopback()
	check("MulticastLoopback", on, err, true)
	ifi, err := p.MulticastInterface()
	check("MulticastInterface", ifi == nil, err, true)
	// The kernel's answers for the same values (see TestMembershipErrors in
	// udp for how they were taken).
	for _, c := range []struct {
		v                         int
		mttl, ttl, tos            string
		mttlAfter, ttlAfter, tosA int
	}{
		{-1, "ok", "ok", "ok", 1, 64, 255},
		{0, "ok", setsockoptEINVAL, "ok", 0, 64, 0},
		{1, "ok", "ok", "ok", 1, 1, 1},
		{255, "ok", "ok", "ok", 255, 255, 255},
		{256, setsockoptEINVAL, setsockoptEINVAL, "ok", 255, 255, 0},
	} {
		str := func(err error) string {
			if err == nil {
				return "ok"
			}
			return err.Error()
		}
		e1, e2, e3 := p.SetMulticastTTL(c.v), p.SetTTL(c.v), p.SetTOS(c.v)
		m, _ := p.MulticastTTL()
		tt, _ := p.TTL()
		to, _ := p.TOS()
		if str(e1) != c.mttl || str(e2) != c.ttl || str(e3) != c.tos || m != c.mttlAfter || tt != c.ttlAfter || to != c.tosA {
			t.Errorf("v=%d: mttl %v %d, ttl %v %d, tos %v %d", c.v, e1, m, e2, tt, e3, to)
		}
	}
	if err := p.SetMulticastInterface(mcIfi(t, s)); err != nil {
		t.Fatal(err)
	}
	if ifi, err := p.MulticastInterface(); err != nil || ifi.Name != "tap0" {
		t.Fatalf("MulticastInterface = %v, %v", ifi, err)
	}
	if err := p.SetMulticastInterface(&net.Interface{Index: 99}); err == nil || err.Error() != sysMsg("setsockopt", syscall.EADDRNOTAVAIL) {
		t.Fatalf("bad interface: %v", err)
	}
	// An interface of the host with a name that is not the NIC's is refused.
	if err := p.JoinGroup(&net.Interface{Index: 2, Name: "eth0"}, mcG1); !errors.Is(err, syscall.ENODEV) {
		t.Fatalf("foreign interface: %v", err)
	}
	if err := p.JoinGroup(nil, &net.UDPAddr{IP: net.ParseIP("ff02::1")}); err == nil || err.Error() != "missing address" {
		t.Fatalf("IPv6 group: %v", err)
	}
	// EOPNOTSUPP is errors.ErrUnsupported on most systems, not on wasip1.
	unsupported := errors.Is(syscall.EOPNOTSUPP, errors.ErrUnsupported)
	for name, err := range map[string]error{
		"SetBPF":        p.SetBPF(nil),
		"SetICMPFilter": p.SetICMPFilter(nil),
	} {
		if errors.Is(err, errors.ErrUnsupported) != unsupported || !errors.Is(err, syscall.EOPNOTSUPP) {
			t.Errorf("%s: %v, want EOPNOTSUPP", name, err)
		}
	}
	if _, err := p.ICMPFilter(); !errors.Is(err, syscall.EOPNOTSUPP) {
		t.Errorf("ICMPFilter: %v", err)
	}

	// After Close: x/net's error shapes on Linux.
	p.Close()
	for name, err := range map[string]error{
		"JoinGroup":         p.JoinGroup(nil, mcG1),
		"SetMulticastTTL":   p.SetMulticastTTL(3),
		"SetControlMessage": p.SetControlMessage(ipv4.FlagTTL, true),
	} {
		if err == nil || err.Error() != "raw-control udp4 0.0.0.0:5000: use of closed network connection" || !errors.Is(err, net.ErrClosed) {
			t.Errorf("%s after close: %v", name, err)
		}
	}
	_, _, _, err = p.ReadFrom(make([]byte, 10))
	if err == nil || err.Error() != "read udp 0.0.0.0:5000: raw-read udp4 0.0.0.0:5000: use of closed network connection" {
		t.Errorf("ReadFrom after close: %v", err)
	}
	_, err = p.WriteTo([]byte("a"), nil, &net.UDPAddr{IP: mcG1.IP, Port: 5000})
	if err == nil || err.Error() != "write udp 0.0.0.0:5000->239.1.2.3:5000: raw-write udp4 0.0.0.0:5000: use of closed network connection" {
		t.Errorf("WriteTo after close: %v", err)
	}
	if n, err := p.ReadBatch(make([]ipv4.Message, 1), 0); n != 0 || err == nil {
		t.Errorf("ReadBatch after close: %d %v", n, err)
	}
	if err := p.Close(); err == nil {
		t.Error("second Close succeeded")
	}
	var nilp *gonet.PacketConn
	if err := nilp.JoinGroup(nil, mcG1); err == nil || err.Error() != "invalid connection" {
		t.Errorf("nil PacketConn: %v", err)
	}
}

func TestPacketConnBatch(t *testing.T) {
	ss := mcHosts(t, 1)
	s := ss[0]
	p := mcListen(t, s, 5000)
	if err := p.JoinGroup(nil, mcG1); err != nil {
		t.Fatal(err)
	}
	// Deadline: n = -1 and a raw-read timeout, as x/net gives.
	p.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	n, err := p.ReadBatch([]ipv4.Message{{Buffers: [][]byte{make([]byte, 10)}}}, 0)
	if n != -1 || err == nil || err.Error() != "read udp 0.0.0.0:5000: raw-read udp4 0.0.0.0:5000: i/o timeout" {
		t.Fatalf("ReadBatch timeout: %d %v", n, err)
	}
	p.SetReadDeadline(time.Time{})

	dst := &net.UDPAddr{IP: mcG1.IP, Port: 5000}
	wm := []ipv4.Message{
		{Buffers: [][]byte{[]byte("a")}, Addr: dst},
		{Buffers: [][]byte{[]byte("b"), []byte("b")}, Addr: dst, OOB: xnetCmsg((&ipv4.ControlMessage{IfIndex: 2}).Marshal())},
		{Buffers: [][]byte{[]byte("0123456789abc")}, Addr: dst},
	}
	n, err = p.WriteBatch(wm, 0)
	if n != 3 || err != nil || wm[1].N != 2 {
		t.Fatalf("WriteBatch: %d %v N=%d", n, err, wm[1].N)
	}
	p.SetControlMessage(ipv4.FlagTTL|ipv4.FlagDst, true)
	ms := []ipv4.Message{
		{Buffers: [][]byte{make([]byte, 10)}, OOB: make([]byte, 64)},
		{Buffers: [][]byte{make([]byte, 1), make([]byte, 2)}},
		{Buffers: [][]byte{make([]byte, 10)}},
		{Buffers: [][]byte{make([]byte, 10)}},
	}
	time.Sleep(20 * time.Millisecond) // loopback is synchronous; be safe
	n, err = p.ReadBatch(ms, 0)
	if n != 3 || err != nil {
		t.Fatalf("ReadBatch: %d %v", n, err)
	}
	var cm ipv4.ControlMessage
	if xnetParsesCmsgs { // elsewhere x/net's Parse knows no control messages
		if err := cm.Parse(ms[0].OOB[:ms[0].NN]); err != nil {
			t.Fatal(err)
		}
	}
	if ms[0].N != 1 || ms[0].Flags != 0 || xnetParsesCmsgs && (cm.TTL != 1 || !cm.Dst.Equal(mcG1.IP) || xnetPktinfo && cm.IfIndex != 2) {
		t.Fatalf("message 0: N=%d flags=%#x cm=%v", ms[0].N, ms[0].Flags, &cm)
	}
	if ms[1].N != 2 || string(ms[1].Buffers[0])+string(ms[1].Buffers[1][:1]) != "bb" || ms[1].Flags != gonet.MsgCtrunc {
		t.Fatalf("message 1: N=%d %q flags=%#x", ms[1].N, ms[1].Buffers, ms[1].Flags)
	}
	if ms[2].N != 10 || ms[2].Flags != gonet.MsgTrunc|gonet.MsgCtrunc {
		t.Fatalf("message 2: N=%d flags=%#x", ms[2].N, ms[2].Flags)
	}
	if a, ok := ms[0].Addr.(*net.UDPAddr); !ok || a.Port != 5000 || !a.IP.Equal(net.IPv4(192, 0, 2, 1)) {
		t.Fatalf("addr %v", ms[0].Addr)
	}
	// An OOB buffer for the TTL only is cut short like Linux's put_cmsg:
	// IP_PKTINFO comes first and is truncated.
	p.WriteTo([]byte("q"), nil, dst)
	ms = ms[:1]
	ms[0].OOB = make([]byte, cmsgSpace(4))
	if n, err := p.ReadBatch(ms, gonet.MsgPeek); n != 1 || err != nil || ms[0].Flags&gonet.MsgCtrunc == 0 || ms[0].NN != len(ms[0].OOB) {
		t.Fatalf("peek: %d %v flags %#x NN %d", n, err, ms[0].Flags, ms[0].NN)
	}
	// Peeked, so still there; MSG_DONTWAIT then finds the queue empty.
	if n, err := p.ReadBatch(ms, gonet.MsgDontWait); n != 1 || err != nil || ms[0].N != 1 {
		t.Fatalf("read after peek: %d %v", n, err)
	}
	if n, err := p.ReadBatch(ms, gonet.MsgDontWait); n != -1 || !errors.Is(err, gonet.OSErrno(syscall.EAGAIN)) {
		t.Fatalf("empty DONTWAIT: %d %v", n, err)
	}
	// A batch whose first message has no address fails like sendmmsg.
	n, err = p.WriteBatch([]ipv4.Message{{Buffers: [][]byte{[]byte("x")}}}, 0)
	if n != -1 || err == nil || err.Error() != "write udp 0.0.0.0:5000: "+sysMsg("sendmmsg", syscall.EDESTADDRREQ) {
		t.Fatalf("WriteBatch without address: %d %v", n, err)
	}
	// A later failure ends the batch early without an error.
	n, err = p.WriteBatch([]ipv4.Message{{Buffers: [][]byte{[]byte("x")}, Addr: dst}, {Buffers: [][]byte{[]byte("y")}}}, 0)
	if n != 1 || err != nil {
		t.Fatalf("WriteBatch, second bad: %d %v", n, err)
	}
	// A TTL control message per datagram.
	ttl := ttlCmsg(33)
	n, err = p.WriteBatch([]ipv4.Message{{Buffers: [][]byte{[]byte("t")}, Addr: dst, OOB: ttl}}, 0)
	if n != 1 || err != nil {
		t.Fatalf("WriteBatch with IP_TTL: %d %v", n, err)
	}
	p.SetControlMessage(ipv4.FlagDst, false)
	var got []string
	for range 2 {
		n, cm, _, err := p.ReadFrom(make([]byte, 10))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d ttl=%d", n, cm.TTL))
	}
	if got[1] != "1 ttl=33" {
		t.Fatalf("TTL per datagram: %v", got)
	}
}

// TestListenMulticastUDP: listeners sharing a port both receive, like
// net.ListenMulticastUDP; their own sends are not looped back.
func TestListenMulticastUDP(t *testing.T) {
	ss := mcHosts(t, 2)
	a, b := ss[0], ss[1]
	gaddr := &net.UDPAddr{IP: mcG1.IP, Port: 5353}
	var ls []*gonet.UDPConn
	for range 2 {
		c, err := gonet.ListenMulticastUDP(a, "udp", nil, gaddr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if got := c.LocalAddr().String(); got != "0.0.0.0:5353" {
			t.Fatalf("LocalAddr %s", got)
		}
		ls = append(ls, c)
	}
	tx, err := gonet.ListenUDP(b, "udp", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	if _, err := tx.WriteToUDP([]byte("mdns"), gaddr); err != nil {
		t.Fatal(err)
	}
	for i, c := range ls {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 10)
		n, from, err := c.ReadFromUDP(buf)
		if err != nil || string(buf[:n]) != "mdns" || !from.IP.Equal(net.IPv4(192, 0, 2, 2)) {
			t.Fatalf("listener %d: %q %v %v", i, buf[:n], from, err)
		}
	}
	// Loopback is off: a listener's own send reaches b only.
	if _, err := ls[0].WriteToUDP([]byte("self"), gaddr); err != nil {
		t.Fatal(err)
	}
	ls[1].SetReadDeadline(time.Now().Add(150 * time.Millisecond))
	if _, _, err := ls[1].ReadFromUDP(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("own send looped back: %v", err)
	}
	for _, c := range []struct {
		net  string
		g    *net.UDPAddr
		want string
	}{
		{"udp4", &net.UDPAddr{IP: net.ParseIP("ff0e::1:3"), Port: 5353}, "listen udp4 [ff0e::1:3]:5353: " + sysMsg("setsockopt", syscall.ENOPROTOOPT)},
		{"udp", nil, "listen udp: missing address"},
		{"udp", &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1}, "listen udp 192.0.2.1:1: " + setsockoptEINVAL},
	} {
		if _, err := gonet.ListenMulticastUDP(a, c.net, nil, c.g); err == nil || err.Error() != c.want {
			t.Errorf("ListenMulticastUDP(%s, %v): %v, want %s", c.net, c.g, err, c.want)
		}
	}
}
