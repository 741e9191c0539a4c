package gonet_test

import (
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv6"

	"github.com/tapnet/tapnet/gonet"
	"github.com/tapnet/tapnet/mld"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

// The PacketConn6 tests mirror the PacketConn ones over IPv6: stacks on
// a hub, ff0e:: (global) and ff3e:: (source-specific) groups, memberships
// reported with MLD. Expected errors and control messages were recorded
// with x/net/ipv6 on Linux sockets.

var (
	mc6G1  = &net.UDPAddr{IP: net.ParseIP("ff0e::1:3")}
	mc6SSM = &net.UDPAddr{IP: net.ParseIP("ff3e::8000:1")}
)

// mc6Hosts plugs n stacks into one hub: host i at 192.0.2.(i+1)/24 and
// 2001:db8::(i+1)/64, usable at once (no DAD).
func mc6Hosts(t *testing.T, n int) []*stack.Stack {
	t.Helper()
	hub := tap.NewHub()
	var ss []*stack.Stack
	for i := range n {
		s := stack.New(stack.Options{})
		v4 := netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), 24)
		v6 := netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i + 1)}), 64)
		if _, err := s.AddNIC(hub.Port(tap.HubPortOptions{}), stack.NICOptions{Addresses: []netip.Prefix{v4, v6},
			IPv6: stack.IPv6Options{DADTransmits: -1, MLD: mld.Config{UnsolicitedReportInterval: 20 * time.Millisecond}}}); err != nil {
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

// mc6Listen opens a PacketConn6 on a network's wildcard and port.
func mc6Listen(t *testing.T, s *stack.Stack, network string, port int) *gonet.PacketConn6 {
	t.Helper()
	c, err := gonet.ListenUDP(s, network, &net.UDPAddr{Port: port})
	if err != nil {
		t.Fatal(err)
	}
	p := gonet.NewPacketConn6(c)
	t.Cleanup(func() { p.Close() })
	return p
}

// mc6Read reads one datagram within d and renders what ReadFrom returned.
func mc6Read(p *gonet.PacketConn6, d time.Duration) string {
	p.SetReadDeadline(time.Now().Add(d))
	defer p.SetReadDeadline(time.Time{})
	b := make([]byte, 100)
	n, cm, src, err := p.ReadFrom(b)
	if err != nil {
		if strings.Contains(err.Error(), "timeout") {
			return "none"
		}
		return "error " + err.Error()
	}
	return strings.Join([]string{`"` + string(b[:n]) + `"`, "from", src.String(), "cm=" + cmString(cm)}, " ")
}

func cmString(cm *ipv6.ControlMessage) string {
	if cm == nil {
		return "<nil>"
	}
	return cm.String()
}

// isMember reports whether s's tap0 is an MLD listener of group.
func isMember(s *stack.Stack, group net.IP) bool {
	return s.NIC(2).MLD().IsMember(netip.MustParseAddr(group.String()))
}

// TestPacketConn6JoinReceiveLeave: two of three hosts join a group; the
// third's datagrams reach both; the NIC's MLD state follows the joins and
// leaves.
func TestPacketConn6JoinReceiveLeave(t *testing.T) {
	ss := mc6Hosts(t, 3)
	a, b, c := ss[0], ss[1], ss[2]
	ra, rc := mc6Listen(t, a, "udp6", 5000), mc6Listen(t, c, "udp", 5000)
	for _, x := range []struct {
		p *gonet.PacketConn6
		s *stack.Stack
	}{{ra, a}, {rc, c}} {
		if err := x.p.JoinGroup(mcIfi(t, x.s), mc6G1); err != nil {
			t.Fatal(err)
		}
		if !isMember(x.s, mc6G1.IP) {
			t.Fatal("joined, but MLD does not listen")
		}
	}
	tx := mc6Listen(t, b, "udp6", 0)
	dst := &net.UDPAddr{IP: mc6G1.IP, Port: 5000}
	if _, err := tx.WriteTo([]byte("one"), nil, dst); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*gonet.PacketConn6{ra, rc} {
		if got := mc6Read(p, 2*time.Second); !strings.HasPrefix(got, `"one" from [2001:db8::2]:`) || !strings.HasSuffix(got, "cm=<nil>") {
			t.Fatalf("got %s", got)
		}
	}
	if err := ra.LeaveGroup(mcIfi(t, a), mc6G1); err != nil {
		t.Fatal(err)
	}
	if isMember(a, mc6G1.IP) {
		t.Fatal("left, but MLD still listens")
	}
	tx.WriteTo([]byte("two"), nil, dst)
	if got := mc6Read(rc, 2*time.Second); !strings.HasPrefix(got, `"two"`) {
		t.Fatalf("c got %s", got)
	}
	if got := mc6Read(ra, 150*time.Millisecond); got != "none" {
		t.Fatalf("a got %s after leaving", got)
	}
}

// TestPacketConn6SourceSpecific: an ff3e:: membership for one source
// takes that source's datagrams only; exclusion on an any-source
// membership drops one source's.
func TestPacketConn6SourceSpecific(t *testing.T) {
	ss := mc6Hosts(t, 3)
	a, b, c := ss[0], ss[1], ss[2]
	rx := mc6Listen(t, a, "udp6", 5001)
	srcB := &net.UDPAddr{IP: net.ParseIP("2001:db8::2")}
	if err := rx.JoinSourceSpecificGroup(mcIfi(t, a), mc6SSM, srcB); err != nil {
		t.Fatal(err)
	}
	if g := a.NIC(2).MLD().Groups()[netip.MustParseAddr("ff3e::8000:1")]; g.Mode != mld.Include || len(g.Sources) != 1 {
		t.Fatalf("MLD state %+v, want INCLUDE {2001:db8::2}", g)
	}
	dst := &net.UDPAddr{IP: mc6SSM.IP, Port: 5001}
	mc6Listen(t, c, "udp6", 0).WriteTo([]byte("from c"), nil, dst)
	mc6Listen(t, b, "udp6", 0).WriteTo([]byte("from b"), nil, dst)
	if got := mc6Read(rx, 2*time.Second); !strings.HasPrefix(got, `"from b"`) {
		t.Fatalf("got %s, want only b's", got)
	}
	if err := rx.LeaveSourceSpecificGroup(mcIfi(t, a), mc6SSM, srcB); err != nil {
		t.Fatal(err)
	}
	if err := rx.JoinGroup(mcIfi(t, a), mc6G1); err != nil {
		t.Fatal(err)
	}
	if err := rx.ExcludeSourceSpecificGroup(mcIfi(t, a), mc6G1, srcB); err != nil {
		t.Fatal(err)
	}
	g1 := &net.UDPAddr{IP: mc6G1.IP, Port: 5001}
	mc6Listen(t, b, "udp6", 0).WriteTo([]byte("from b"), nil, g1)
	mc6Listen(t, c, "udp6", 0).WriteTo([]byte("from c"), nil, g1)
	if got := mc6Read(rx, 2*time.Second); !strings.HasPrefix(got, `"from c"`) {
		t.Fatalf("got %s, want only c's", got)
	}
	if err := rx.IncludeSourceSpecificGroup(mcIfi(t, a), mc6G1, srcB); err != nil {
		t.Fatal(err)
	}
}

// TestPacketConn6ControlMessages: hop limit, traffic class, destination
// and interface of received datagrams, as x/net parses Linux's; the
// per-datagram hop limit, traffic class and interface of WriteTo.
func TestPacketConn6ControlMessages(t *testing.T) {
	ss := mc6Hosts(t, 2)
	a, b := ss[0], ss[1]
	rx := mc6Listen(t, a, "udp", 5000)
	if err := rx.JoinGroup(mcIfi(t, a), mc6G1); err != nil {
		t.Fatal(err)
	}
	tx := mc6Listen(t, b, "udp6", 4000)
	if err := tx.SetMulticastHopLimit(5); err != nil {
		t.Fatal(err)
	}
	if err := tx.SetTrafficClass(0xb8); err != nil {
		t.Fatal(err)
	}
	dst := &net.UDPAddr{IP: mc6G1.IP, Port: 5000}
	all := ipv6.FlagTrafficClass | ipv6.FlagHopLimit | ipv6.FlagSrc | ipv6.FlagDst | ipv6.FlagInterface | ipv6.FlagPathMTU
	const from = `"x" from [2001:db8::2]:4000 cm=`
	for _, c := range []struct {
		cf   ipv6.ControlFlags
		want string
	}{
		{0, "<nil>"},
		{ipv6.FlagSrc, "<nil>"},
		{ipv6.FlagPathMTU, "<nil>"},
		{ipv6.FlagHopLimit, "tclass=0x0 hoplim=5 src=2001:db8::2 dst=<nil> ifindex=0 nexthop=<nil> mtu=0"},
		{ipv6.FlagTrafficClass, "tclass=0xb8 hoplim=0 src=2001:db8::2 dst=<nil> ifindex=0 nexthop=<nil> mtu=0"},
		{ipv6.FlagDst, "tclass=0x0 hoplim=0 src=2001:db8::2 dst=ff0e::1:3 ifindex=2 nexthop=<nil> mtu=0"},
		{all, "tclass=0xb8 hoplim=5 src=2001:db8::2 dst=ff0e::1:3 ifindex=2 nexthop=<nil> mtu=0"},
	} {
		rx.SetControlMessage(all, false)
		if err := rx.SetControlMessage(c.cf, true); err != nil {
			t.Fatal(err)
		}
		tx.WriteTo([]byte("x"), nil, dst)
		if got, want := mc6Read(rx, 2*time.Second), from+c.want; got != want {
			t.Errorf("flags %v: %s, want %s", c.cf, got, want)
		}
	}
	rx.SetControlMessage(all, true)
	if _, err := tx.WriteTo([]byte("y"), &ipv6.ControlMessage{HopLimit: 9, TrafficClass: 0x20, IfIndex: 2, Src: net.ParseIP("2001:db8::2")}, dst); err != nil {
		t.Fatal(err)
	}
	if got := mc6Read(rx, 2*time.Second); !strings.Contains(got, "tclass=0x20 hoplim=9") {
		t.Fatalf("got %s", got)
	}
	// A dual-stack socket's IPv4 datagrams get IPV6_PKTINFO only, with the
	// IPv4-mapped destination, and no source in the message.
	v4, err := gonet.DialUDP(b, "udp4", nil, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5000})
	if err != nil {
		t.Fatal(err)
	}
	defer v4.Close()
	v4.Write([]byte("v4"))
	if got, want := mc6Read(rx, 2*time.Second), "tclass=0x0 hoplim=0 src=<nil> dst=192.0.2.1 ifindex=2 nexthop=<nil> mtu=0"; !strings.HasSuffix(got, "cm="+want) || !strings.Contains(got, "from 192.0.2.2:") {
		t.Errorf("IPv4 datagram: %s, want cm=%s", got, want)
	}
	for _, c := range []struct {
		cm   *ipv6.ControlMessage
		dst  net.Addr
		want string
	}{
		{&ipv6.ControlMessage{IfIndex: 99}, dst, "write udp [::]:4000->[ff0e::1:3]:5000: " + sysMsg("sendmsg", syscall.ENODEV)},
		{&ipv6.ControlMessage{Src: net.ParseIP("2001:db8::77")}, dst, "write udp [::]:4000->[ff0e::1:3]:5000: " + sysMsg("sendmsg", syscall.EINVAL)},
		{nil, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 9}, "write udp [::]:4000->192.0.2.1:9: " + sysMsg("sendmsg", syscall.ENETUNREACH)},
		{nil, nil, "write udp [::]:4000: " + sysMsg("sendmsg", syscall.EDESTADDRREQ)},
	} {
		_, err := tx.WriteTo([]byte("z"), c.cm, c.dst)
		if err == nil || err.Error() != c.want {
			t.Errorf("WriteTo %v to %v: %v, want %s", c.cm, c.dst, err, c.want)
		}
	}
	// Only IPV6_PKTINFO counts for an IPv4 peer of a dual-stack socket,
	// and its source must then be IPv4-mapped.
	ds := mc6Listen(t, b, "udp", 0)
	to4 := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5000}
	if _, err := ds.WriteTo([]byte("h"), &ipv6.ControlMessage{HopLimit: 3}, to4); err != nil {
		t.Errorf("IPv4 peer, hop limit: %v", err)
	}
	if _, err := ds.WriteTo([]byte("i"), &ipv6.ControlMessage{IfIndex: 2}, to4); err == nil || !strings.HasSuffix(err.Error(), sysMsg("sendmsg", syscall.EINVAL)) {
		t.Errorf("IPv4 peer, interface without a mapped source: %v, want EINVAL", err)
	}
}

// TestPacketConn6Options: defaults, ranges and errors of the IPv6 options,
// on a dual-stack socket, an IPv4 one and a closed one, as x/net/ipv6 gives
// them on Linux.
func TestPacketConn6Options(t *testing.T) {
	s := mc6Hosts(t, 1)[0]
	p := mc6Listen(t, s, "udp", 0)
	check := func(what string, got any, err error, want any) {
		t.Helper()
		if err != nil || got != want {
			t.Errorf("%s: %v, %v; want %v", what, got, err, want)
		}
	}
	h, err := p.HopLimit()
	check("HopLimit", h, err, 64)
	h, err = p.MulticastHopLimit()
	check("MulticastHopLimit", h, err, 1)
	h, err = p.TrafficClass()
	check("TrafficClass", h, err, 0)
	on, err := p.MulticastLoopback()
	check("MulticastLoopback", on, err, true)
	if ifi, err := p.MulticastInterface(); ifi != nil || err == nil || err.Error() != "route ip+net: invalid network interface index" {
		t.Errorf("MulticastInterface unset: %v, %v", ifi, err)
	}
	einval := setsockoptEINVAL
	for what, err := range map[string]error{
		"SetHopLimit(256)":          p.SetHopLimit(256),
		"SetMulticastHopLimit(256)": p.SetMulticastHopLimit(256),
		"SetTrafficClass(-2)":       p.SetTrafficClass(-2),
	} {
		if err == nil || err.Error() != einval {
			t.Errorf("%s: %v, want %s", what, err, einval)
		}
	}
	p.SetHopLimit(9)
	h, err = p.HopLimit()
	check("HopLimit after 9", h, err, 9)
	p.SetHopLimit(-1)
	h, err = p.HopLimit()
	check("HopLimit after -1", h, err, 64)
	p.SetTrafficClass(-1)
	h, err = p.TrafficClass()
	check("TrafficClass after -1", h, err, 0)
	if err := p.SetMulticastInterface(mcIfi(t, s)); err != nil {
		t.Fatal(err)
	}
	if ifi, err := p.MulticastInterface(); err != nil || ifi.Name != "tap0" {
		t.Errorf("MulticastInterface: %v, %v", ifi, err)
	}
	for what, err := range map[string]error{
		"SetMulticastInterface(99)": p.SetMulticastInterface(&net.Interface{Index: 99}),
		"JoinGroup no such NIC":     p.JoinGroup(&net.Interface{Index: 99}, mc6G1),
	} {
		if want := sysMsg("setsockopt", syscall.ENODEV); err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %s", what, err, want)
		}
	}
	for what, c := range map[string]struct {
		err  error
		want string
	}{
		"JoinGroup IPv4":          {p.JoinGroup(nil, mcG1), "missing address"},
		"JoinGroup unicast":       {p.JoinGroup(nil, &net.UDPAddr{IP: net.ParseIP("2001:db8::1")}), einval},
		"LeaveGroup never joined": {p.LeaveGroup(nil, mc6G1), sysMsg("setsockopt", syscall.EADDRNOTAVAIL)},
		"ICMPFilter":              {func() error { _, err := p.ICMPFilter(); return err }(), sysMsg("getsockopt", syscall.ENOPROTOOPT)},
		"SetICMPFilter":           {p.SetICMPFilter(&ipv6.ICMPFilter{}), sysMsg("setsockopt", syscall.ENOPROTOOPT)},
		"Checksum":                {func() error { _, _, err := p.Checksum(); return err }(), sysMsg("getsockopt", syscall.ENOPROTOOPT)},
		"SetChecksum":             {p.SetChecksum(true, 6), sysMsg("setsockopt", syscall.ENOPROTOOPT)},
	} {
		if c.err == nil || c.err.Error() != c.want {
			t.Errorf("%s: %v, want %s", what, c.err, c.want)
		}
	}
	// An AF_INET socket has no IPv6 options.
	p4 := mc6Listen(t, s, "udp4", 0)
	if _, err := p4.HopLimit(); err == nil || err.Error() != sysMsg("getsockopt", syscall.EOPNOTSUPP) {
		t.Errorf("udp4 HopLimit: %v", err)
	}
	for what, err := range map[string]error{
		"SetHopLimit":       p4.SetHopLimit(3),
		"JoinGroup":         p4.JoinGroup(nil, mc6G1),
		"SetControlMessage": p4.SetControlMessage(ipv6.FlagDst, true),
	} {
		if want := sysMsg("setsockopt", syscall.ENOPROTOOPT); err == nil || err.Error() != want {
			t.Errorf("udp4 %s: %v, want %s", what, err, want)
		}
	}
	p.Close()
	if _, err := p.HopLimit(); err == nil || !strings.HasPrefix(err.Error(), "raw-control udp [::]:") || !strings.HasSuffix(err.Error(), "use of closed network connection") {
		t.Errorf("HopLimit after Close: %v", err)
	}
}

// TestPacketConn6UnicastOnTheWire: the socket's hop limit and traffic
// class, and a message's, are what the peer receives.
func TestPacketConn6UnicastOnTheWire(t *testing.T) {
	ss := mc6Hosts(t, 2)
	rx := mc6Listen(t, ss[0], "udp6", 7000)
	rx.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagTrafficClass, true)
	tx := mc6Listen(t, ss[1], "udp6", 7001)
	to := &net.UDPAddr{IP: net.ParseIP("2001:db8::1"), Port: 7000}
	tx.WriteTo([]byte("d"), nil, to)
	if got := mc6Read(rx, 2*time.Second); !strings.Contains(got, "tclass=0x0 hoplim=64 ") {
		t.Errorf("defaults: %s", got)
	}
	tx.SetHopLimit(7)
	tx.SetTrafficClass(0x2e << 2)
	tx.WriteTo([]byte("s"), nil, to)
	if got := mc6Read(rx, 2*time.Second); !strings.Contains(got, "tclass=0xb8 hoplim=7 ") {
		t.Errorf("socket options: %s", got)
	}
	tx.WriteTo([]byte("m"), &ipv6.ControlMessage{HopLimit: 200, TrafficClass: 4}, to)
	if got := mc6Read(rx, 2*time.Second); !strings.Contains(got, "tclass=0x4 hoplim=200 ") {
		t.Errorf("control message: %s", got)
	}
}

// TestPacketConn6Batch: WriteBatch with per-message hop limits in the
// platform's cmsg layout, ReadBatch with Linux's control messages.
func TestPacketConn6Batch(t *testing.T) {
	ss := mc6Hosts(t, 2)
	rx := mc6Listen(t, ss[0], "udp6", 7000)
	rx.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst|ipv6.FlagInterface, true)
	tx := mc6Listen(t, ss[1], "udp6", 7001)
	to := &net.UDPAddr{IP: net.ParseIP("2001:db8::1"), Port: 7000}
	ms := make([]ipv6.Message, 3)
	for i := range ms {
		ms[i] = ipv6.Message{Buffers: [][]byte{{'a' + byte(i)}}, Addr: to,
			OOB: xnetCmsg((&ipv6.ControlMessage{HopLimit: 10 + i}).Marshal())}
	}
	if n, err := tx.WriteBatch(ms, 0); n != 3 || err != nil {
		t.Fatalf("WriteBatch: %d, %v", n, err)
	}
	in := make([]ipv6.Message, 3)
	for i := range in {
		in[i] = ipv6.Message{Buffers: [][]byte{make([]byte, 8)}, OOB: ipv6.NewControlMessage(ipv6.FlagHopLimit | ipv6.FlagDst)}
	}
	rx.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := 0
	for got < 3 {
		n, err := rx.ReadBatch(in[got:], 0)
		if err != nil {
			t.Fatalf("ReadBatch: %v", err)
		}
		got += n
	}
	for i, m := range in {
		if m.N != 1 || m.Buffers[0][0] != 'a'+byte(i) || m.Addr.String() != "[2001:db8::2]:7001" {
			t.Fatalf("message %d: %q from %v", i, m.Buffers[0][:m.N], m.Addr)
		}
		if !xnetParsesCmsgs {
			continue
		}
		var cm ipv6.ControlMessage
		if err := cm.Parse(m.OOB[:m.NN]); err != nil {
			t.Fatal(err)
		}
		if cm.HopLimit != 10+i || !cm.Dst.Equal(net.ParseIP("2001:db8::1")) || cm.IfIndex != 2 {
			t.Errorf("message %d: cm %v", i, &cm)
		}
	}
}
