package gonet

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

// pairWithSecondary is pair with 192.0.2.4/24 added to a, after
// 192.0.2.2/24: a secondary address on a's only prefix.
func pairWithSecondary(t *testing.T) (a, b *stack.Stack) {
	t.Helper()
	a, b = pair(t, tap.PipeOptions{})
	if err := a.NIC(2).AddAddress(netip.MustParsePrefix("192.0.2.4/24")); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// A DNS-style server on a wildcard socket of a host with two addresses on
// one prefix: the query to the secondary is reported with its destination
// (IP_PKTINFO), a reply from that destination reaches the client from the
// address it asked, and a reply without a control message leaves from the
// primary, as on Linux.
func TestPktinfoAnswersFromQueriedAddress(t *testing.T) {
	a, b := pairWithSecondary(t)
	uc, err := ListenUDP(a, "udp4", &net.UDPAddr{Port: 53})
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	srv := NewPacketConn(uc)
	if err := srv.SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true); err != nil {
		t.Fatal(err)
	}
	cl, err := ListenUDP(b, "udp4", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// Deadlines only bound a broken run; nothing asserts on time.
	srv.SetReadDeadline(time.Now().Add(10 * time.Second))
	cl.SetReadDeadline(time.Now().Add(10 * time.Second))

	secondary := netip.MustParseAddrPort("192.0.2.4:53")
	if _, err := cl.WriteToUDPAddrPort([]byte("query"), secondary); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, cm, from, err := srv.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if string(buf[:n]) != "query" || cm == nil || !cm.Dst.Equal(net.IPv4(192, 0, 2, 4)) || cm.IfIndex != 2 {
		t.Fatalf("read %q with %v, want the query to 192.0.2.4 on interface 2", buf[:n], cm)
	}

	for _, c := range []struct {
		cm   *ipv4.ControlMessage
		want string
	}{
		{&ipv4.ControlMessage{Src: cm.Dst}, "192.0.2.4:53"},
		{nil, "192.0.2.2:53"},
	} {
		if _, err := srv.WriteTo([]byte("answer"), c.cm, from); err != nil {
			t.Fatal(err)
		}
		n, got, err := cl.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		if string(buf[:n]) != "answer" || got.String() != c.want {
			t.Fatalf("reply with control message %v came from %v, want %s", c.cm, got, c.want)
		}
	}
}

// DialUDP binds the prefix's primary address, not the newest one.
func TestDialUDPBindsPrimary(t *testing.T) {
	a, _ := pairWithSecondary(t)
	c, err := DialUDP(a, "udp4", nil, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 9), Port: 53})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr(); got != netip.MustParseAddr("192.0.2.2") {
		t.Fatalf("DialUDP bound %v, want the primary 192.0.2.2", got)
	}
}
