package gonet

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"runtime"
	"testing"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/tapnet/tapnet/internal/udpsock"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

// ne32 is v as a native-endian int.
func ne32(v int) []byte { return binary.NativeEndian.AppendUint32(nil, uint32(v)) }

// ipv4Order is the order this system's kernel puts IPv4 control messages
// in (those asked for), written out per system rather than taken from
// gonet's table.
func ipv4Order() []string {
	switch runtime.GOOS {
	case "darwin", "ios":
		return []string{"ttl", "pktinfo"}
	case "freebsd", "dragonfly":
		return []string{"dst", "ttl", "if"}
	case "netbsd", "openbsd", "aix":
		return []string{"dst", "if", "ttl"}
	default: // Linux, Solaris, and Linux's numbers elsewhere
		return []string{"pktinfo", "ttl"}
	}
}

// TestControlMessagesLayout4: a received IPv4 datagram's control messages
// are this system's (types and sizes from its table), with the data bytes,
// order and CMSG_SPACE padding of a hand-built encoding; padding bytes are
// left as they were, as put_cmsg leaves them.
func TestControlMessagesLayout4(t *testing.T) {
	s, _ := pair(t, tap.PipeOptions{})
	nic := pipeNIC(t, s)
	group := netip.MustParseAddr("239.1.2.3")
	info := &udpsock.ReadInfo{Src: netip.MustParseAddrPort("192.0.2.1:53"), Dst: group, NIC: nic, TTL: 7}
	tab := ipCmsg

	pktinfo := ne32(int(nic))
	if tab.specDst {
		pktinfo = append(pktinfo, 192, 0, 2, 2) // the NIC's address, for a group
	} else {
		pktinfo = append(pktinfo, 0, 0, 0, 0)
	}
	pktinfo = append(pktinfo, 239, 1, 2, 3)
	ttl := []byte{7}
	if tab.ttlLen == 4 {
		ttl = ne32(7)
	}
	msgs := map[string][]byte{
		"pktinfo": wantCmsg(tab.level, tab.pktinfo, pktinfo),
		"ttl":     wantCmsg(tab.level, tab.ttl, ttl),
		"dst":     wantCmsg(tab.level, tab.dstAddr, []byte{239, 1, 2, 3}),
		"if":      wantCmsg(tab.level, tab.recvIf, wantSockaddrDatalink(int(nic))),
	}
	for _, c := range []struct {
		name string
		cf   ipv4.ControlFlags
		want map[string]bool // of ipv4Order's messages
	}{
		{"all", ipv4.FlagTTL | ipv4.FlagSrc | ipv4.FlagDst | ipv4.FlagInterface, map[string]bool{"pktinfo": true, "ttl": true, "dst": true, "if": true}},
		{"ttl", ipv4.FlagTTL, map[string]bool{"ttl": true}},
		{"dst", ipv4.FlagDst, map[string]bool{"pktinfo": true, "dst": true}},
		{"interface", ipv4.FlagInterface, map[string]bool{"pktinfo": true, "if": true}},
		{"none", 0, nil},
	} {
		var want []byte
		for _, m := range ipv4Order() {
			if c.want[m] {
				want = append(want, msgs[m]...)
			}
		}
		oob := bytes.Repeat([]byte{0xaa}, 512)
		n, trunc := putControlMessages(s, oob, c.cf, info)
		if trunc || n != len(want) {
			t.Errorf("%s: %d bytes, trunc %v; want %d", c.name, n, trunc, len(want))
			continue
		}
		if !equalButPadding(oob[:n], want) {
			t.Errorf("%s:\n got %x\nwant %x", c.name, oob[:n], want)
		}
		if oob[n] != 0xaa {
			t.Errorf("%s: wrote past the messages", c.name)
		}
	}
}

// TestControlMessagesLayout6: IPV6_PKTINFO, IPV6_HOPLIMIT and IPV6_TCLASS
// with this system's numbers, in RFC 3542's order, laid out by hand.
func TestControlMessagesLayout6(t *testing.T) {
	dst := netip.MustParseAddr("2001:db8::1")
	info := &udpsock.ReadInfo{Src: netip.MustParseAddrPort("[2001:db8::2]:53"), Dst: dst, NIC: 3, TTL: 9, TOS: 0x2e}
	tab := ipv6Cmsg
	d := dst.As16()
	var want []byte
	want = append(want, wantCmsg(tab.level, tab.pktinfo, append(d[:], ne32(3)...))...)
	want = append(want, wantCmsg(tab.level, tab.hopLimit, ne32(9))...)
	want = append(want, wantCmsg(tab.level, tab.tclass, ne32(0x2e))...)
	oob := bytes.Repeat([]byte{0xaa}, 512)
	cf := ipv6.FlagDst | ipv6.FlagInterface | ipv6.FlagHopLimit | ipv6.FlagTrafficClass
	n, trunc := putControlMessages6(nil, oob, uint(cf), info)
	if trunc || n != len(want) || !equalButPadding(oob[:n], want) {
		t.Fatalf("%d bytes, trunc %v:\n got %x\nwant %x", n, trunc, oob[:n], want)
	}
}

// TestParseControlTypes: a send's OOB is read with this system's types:
// IPv6's pktinfo, hop limit and traffic class; IPv4's TTL (and pktinfo
// where the system has it). Linux's numbers are not taken where they mean
// something else.
func TestParseControlTypes(t *testing.T) {
	d := netip.MustParseAddr("2001:db8::5").As16()
	tab6 := ipv6Cmsg
	var oob []byte
	oob = append(oob, wantCmsg(tab6.level, tab6.pktinfo, append(d[:], ne32(4)...))...)
	oob = append(oob, wantCmsg(tab6.level, tab6.hopLimit, ne32(17))...)
	oob = append(oob, wantCmsg(tab6.level, tab6.tclass, ne32(0x10))...)
	sc, err := parseControl6(oob)
	if err != nil || sc == nil || !sc.pktinfo || sc.src != netip.AddrFrom16(d) || sc.ifIndex != 4 || sc.hop != 17 || sc.tcl != 0x10 || !sc.setTC {
		t.Fatalf("parseControl6: %+v, %v", sc, err)
	}

	s, _ := pair(t, tap.PipeOptions{})
	c, err := ListenUDP(s, "udp4", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := NewPacketConn(c)
	nic := pipeNIC(t, s)
	tab := ipCmsg
	oob = wantCmsg(tab.level, tab.sendTTL, ne32(33))
	if tab.pktinfo != 0 {
		oob = append(oob, wantCmsg(tab.level, tab.pktinfo, append(ne32(int(nic)), 192, 0, 2, 2, 0, 0, 0, 0))...)
	}
	wo, err := p.parseControl(oob)
	if err != nil || wo == nil || wo.TTL != 33 || tab.pktinfo != 0 && (wo.NIC != nic || wo.Src != netip.MustParseAddr("192.0.2.2")) {
		t.Fatalf("parseControl: %+v, %v", wo, err)
	}
	if tab.sendTTL != 2 {
		// Linux's IP_TTL number is another option here: refused as an
		// unknown IP-level message is.
		if _, err := p.parseControl(wantCmsg(tab.level, 2, ne32(33))); err == nil {
			t.Fatal("parseControl took Linux's IP_TTL number")
		}
	}
}

// equalButPadding compares encoded control messages, skipping in got the
// padding want has as zero after each message's data (put_cmsg does not
// write it).
func equalButPadding(got, want []byte) bool {
	if len(got) != len(want) {
		return false
	}
	for len(want) > 0 {
		l, _, _ := cmsgHdr(want)
		space := cmsgSpace(l - cmsgHdrLen)
		if !bytes.Equal(got[:l], want[:l]) {
			return false
		}
		want, got = want[space:], got[space:]
	}
	return true
}

// pipeNIC is the NIC of pair's stack a: the one with 192.0.2.2.
func pipeNIC(t *testing.T, s *stack.Stack) stack.NICID {
	for _, n := range s.NICs() {
		for _, a := range n.Addresses() {
			if a.Addr() == netip.MustParseAddr("192.0.2.2") {
				return n.ID()
			}
		}
	}
	t.Fatal("no NIC with 192.0.2.2")
	return 0
}

// xnetHasCmsgs: x/net's ControlMessage marshals and parses control
// messages on this system, and gonet's table follows it.
const xnetHasCmsgs = runtime.GOOS == "linux" || runtime.GOOS == "darwin" || runtime.GOOS == "ios" ||
	runtime.GOOS == "freebsd" || runtime.GOOS == "netbsd" || runtime.GOOS == "openbsd" ||
	runtime.GOOS == "dragonfly" || runtime.GOOS == "aix" || runtime.GOOS == "solaris" || runtime.GOOS == "illumos"

// TestControlMessagesXnet: x/net's Parse reads every field from what gonet
// writes for all flags, and gonet reads what x/net's Marshal writes.
func TestControlMessagesXnet(t *testing.T) {
	if !xnetHasCmsgs {
		t.Skip("x/net has no control messages on " + runtime.GOOS)
	}
	s, _ := pair(t, tap.PipeOptions{})
	nic := pipeNIC(t, s)
	info := &udpsock.ReadInfo{Src: netip.MustParseAddrPort("192.0.2.1:53"), Dst: netip.MustParseAddr("192.0.2.2"), NIC: nic, TTL: 7}
	oob := ipv4.NewControlMessage(ipv4.FlagTTL | ipv4.FlagDst | ipv4.FlagInterface)
	n, trunc := putControlMessages(s, oob, ipv4.FlagTTL|ipv4.FlagDst|ipv4.FlagInterface, info)
	var cm ipv4.ControlMessage
	if err := cm.Parse(oob[:n]); err != nil || trunc || cm.TTL != 7 || cm.Dst.String() != "192.0.2.2" || cm.IfIndex != int(nic) {
		t.Errorf("ipv4 Parse: %v, %v (trunc %v)", &cm, err, trunc)
	}

	info6 := &udpsock.ReadInfo{Src: netip.MustParseAddrPort("[2001:db8::2]:53"), Dst: netip.MustParseAddr("2001:db8::1"), NIC: 3, TTL: 9, TOS: 0x2e}
	cf6 := ipv6.FlagDst | ipv6.FlagInterface | ipv6.FlagHopLimit | ipv6.FlagTrafficClass
	oob = ipv6.NewControlMessage(cf6)
	n, trunc = putControlMessages6(nil, oob, uint(cf6), info6)
	var cm6 ipv6.ControlMessage
	if err := cm6.Parse(oob[:n]); err != nil || trunc || cm6.HopLimit != 9 || cm6.TrafficClass != 0x2e || cm6.Dst.String() != "2001:db8::1" || cm6.IfIndex != 3 {
		t.Errorf("ipv6 Parse: %v, %v (trunc %v)", &cm6, err, trunc)
	}

	sc, err := parseControl6((&ipv6.ControlMessage{HopLimit: 12, TrafficClass: 5, Src: net.ParseIP("2001:db8::9"), IfIndex: 6}).Marshal())
	if err != nil || sc == nil || sc.hop != 12 || sc.tcl != 5 || sc.src != netip.MustParseAddr("2001:db8::9") || sc.ifIndex != 6 {
		t.Errorf("parseControl6 of x/net's Marshal: %+v, %v", sc, err)
	}
	c, err := ListenUDP(s, "udp4", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	wo, err := NewPacketConn(c).parseControl((&ipv4.ControlMessage{Src: net.IPv4(192, 0, 2, 2), IfIndex: int(nic)}).Marshal())
	// x/net marshals IP_PKTINFO where the system has it, and nothing on the
	// BSDs (their kernels take no interface per datagram).
	if ipCmsg.pktinfo != 0 && (err != nil || wo == nil || wo.NIC != nic || wo.Src != netip.MustParseAddr("192.0.2.2")) ||
		ipCmsg.pktinfo == 0 && (err != nil || wo != nil) {
		t.Errorf("parseControl of x/net's Marshal: %+v, %v", wo, err)
	}
}
