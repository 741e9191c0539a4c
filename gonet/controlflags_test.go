package gonet

import (
	"net"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/tapnet/tapnet/tap"
)

// ReadFrom fills the ControlMessage as x/net does on this system: where
// one IP_PKTINFO carries destination and interface (Linux, macOS), either
// flag brings both; on the BSDs IP_RECVDSTADDR and IP_RECVIF come each
// with its own flag.
func TestReadFromControlFlags(t *testing.T) {
	t.Run("this system", func(t *testing.T) { testReadFromControlFlags(t) })
	// The BSDs' rule, run wherever the suite runs.
	saved := ipCmsg
	defer func() { ipCmsg = saved }()
	ipCmsg.pktinfo = 0
	t.Run("no IP_PKTINFO", func(t *testing.T) { testReadFromControlFlags(t) })
}

func testReadFromControlFlags(t *testing.T) {
	a, b := pair(t, tap.PipeOptions{})
	srv, err := ListenUDP(a, "udp4", &net.UDPAddr{Port: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cl, err := DialUDP(b, "udp4", nil, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	p := NewPacketConn(srv)
	both := ipCmsg.pktinfo != 0
	for _, c := range []struct {
		cf            ipv4.ControlFlags
		dst, ifaceSet bool
	}{
		{ipv4.FlagDst, true, both},
		{ipv4.FlagInterface, both, true},
		{ipv4.FlagDst | ipv4.FlagInterface, true, true},
		{ipv4.FlagTTL, false, false},
	} {
		p.SetControlMessage(ipv4.FlagTTL|ipv4.FlagDst|ipv4.FlagInterface|ipv4.FlagSrc, false)
		if err := p.SetControlMessage(c.cf, true); err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		p.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, cm, _, err := p.ReadFrom(make([]byte, 8))
		if err != nil {
			t.Fatal(err)
		}
		if gotDst := cm.Dst != nil; gotDst != c.dst {
			t.Errorf("flags %v: Dst %v, want set=%v", c.cf, cm.Dst, c.dst)
		}
		if gotIf := cm.IfIndex != 0; gotIf != c.ifaceSet {
			t.Errorf("flags %v: IfIndex %d, want set=%v", c.cf, cm.IfIndex, c.ifaceSet)
		}
	}
}
