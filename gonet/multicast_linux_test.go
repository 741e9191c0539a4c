//go:build linux

package gonet_test

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/tapnet/tapnet/internal/netns"
	tipv4 "github.com/tapnet/tapnet/ipv4"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

var mcG2 = &net.UDPAddr{IP: net.IPv4(239, 1, 2, 4).To4()}

// TestTAPMulticastKernel runs against the Linux kernel in a namespace: a
// kernel socket joined to 239.1.2.3 on the TAP receives what tapnet sends,
// tapnet receives what a kernel socket sends to the group, and the IGMP
// reports tapnet sends reach the kernel as valid packets.
func TestTAPMulticastKernel(t *testing.T) {
	netns.RequireRoot(t)
	ns := netns.New(t)
	dev := netns.NewTAP(t, ns, "192.0.2.1/24", tap.Options{})
	s := stack.New(stack.Options{})
	t.Cleanup(func() { s.Close() })
	if _, err := s.AddNIC(dev, stack.NICOptions{Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")}}); err != nil {
		t.Fatal(err)
	}
	var (
		kifi *net.Interface
		krx  *ipv4.PacketConn
		ktx  *ipv4.PacketConn
		kraw *ipv4.RawConn
	)
	err := ns.Do(func() (err error) {
		if kifi, err = net.InterfaceByName(dev.Name()); err != nil {
			return err
		}
		c, err := net.ListenPacket("udp4", "0.0.0.0:5007")
		if err != nil {
			return err
		}
		krx = ipv4.NewPacketConn(c)
		if err := krx.JoinGroup(kifi, mcG1); err != nil {
			return err
		}
		c2, err := net.ListenPacket("udp4", "192.0.2.1:0")
		if err != nil {
			return err
		}
		ktx = ipv4.NewPacketConn(c2)
		if err := ktx.SetMulticastInterface(kifi); err != nil {
			return err
		}
		// IGMP as the kernel receives it: the raw socket joins the
		// all-IGMPv3-routers group, or the kernel would drop reports.
		r, err := net.ListenPacket("ip4:2", "0.0.0.0")
		if err != nil {
			return err
		}
		if kraw, err = ipv4.NewRawConn(r); err != nil {
			return err
		}
		return kraw.JoinGroup(kifi, &net.IPAddr{IP: net.IPv4(224, 0, 0, 22)})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { krx.Close(); ktx.Close(); kraw.Close() })

	// tapnet joins: the kernel sees a valid IGMPv3 report.
	rx := mcListen(t, s, 5008)
	if err := rx.JoinGroup(nil, mcG1); err != nil {
		t.Fatal(err)
	}
	kraw.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	for {
		h, p, _, err := kraw.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no IGMP report reached the kernel: %v", err)
		}
		if !h.Src.Equal(net.IPv4(192, 0, 2, 2)) {
			continue
		}
		m, err := tipv4.ParseIGMP(p)
		if err != nil {
			t.Fatalf("kernel got a bad IGMP message: %v", err)
		}
		if m.Type() != tipv4.IGMPv3MembershipReport || !h.Dst.Equal(net.IPv4(224, 0, 0, 22)) || h.TTL != 1 || len(h.Options) != 4 {
			t.Fatalf("report %+v %x", h, p)
		}
		break
	}

	// tapnet → kernel.
	tx := mcListen(t, s, 0)
	if _, err := tx.WriteTo([]byte("from tapnet"), nil, &net.UDPAddr{IP: mcG1.IP, Port: 5007}); err != nil {
		t.Fatal(err)
	}
	krx.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, src, err := krx.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "from tapnet" || !src.(*net.UDPAddr).IP.Equal(net.IPv4(192, 0, 2, 2)) {
		t.Fatalf("kernel received %q from %v: %v", buf[:n], src, err)
	}

	// kernel → tapnet.
	if _, err := ktx.WriteTo([]byte("from kernel"), nil, &net.UDPAddr{IP: mcG1.IP, Port: 5008}); err != nil {
		t.Fatal(err)
	}
	rx.SetControlMessage(ipv4.FlagTTL|ipv4.FlagDst, true)
	if got := mcRead(rx, 5*time.Second); !strings.HasPrefix(got, `"from kernel" from 192.0.2.1:`) || !strings.HasSuffix(got, "ttl=1 src=192.0.2.1 dst=239.1.2.3 ifindex=2") {
		t.Fatalf("tapnet received %s", got)
	}
	// A v2 querier in the namespace: tapnet falls back to IGMPv2 and
	// reports its groups. The kernel, a member of 239.1.2.3 too, may
	// answer for that one first, which rightly suppresses tapnet's; so the
	// check is on 239.1.2.4, which only tapnet joined, seen on the link.
	rx2 := mcListen(t, s, 5009)
	if err := rx2.JoinGroup(nil, mcG2); err != nil {
		t.Fatal(err)
	}
	var q *ipv4.PacketConn
	var sniff int
	if err := ns.Do(func() error {
		c, err := net.ListenPacket("ip4:2", "192.0.2.1")
		if err != nil {
			return err
		}
		q = ipv4.NewPacketConn(c)
		if err := q.SetMulticastInterface(kifi); err != nil {
			return err
		}
		sniff, err = sniffIPv4(kifi.Index)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	defer unix.Close(sniff)
	query := make([]byte, tipv4.IGMPLen)
	tipv4.PutIGMP(query, tipv4.IGMPMembershipQuery, 1, netip.IPv4Unspecified()) // answer within 0.1 s
	if _, err := q.WriteTo(query, nil, &net.IPAddr{IP: net.IPv4(224, 0, 0, 1)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for found := false; !found; {
		if time.Now().After(deadline) {
			t.Fatal("no IGMPv2 report for 239.1.2.4 on the link")
		}
		n, err := unix.Read(sniff, buf)
		if err != nil {
			continue
		}
		h, err := tipv4.Parse(buf[:n])
		if err != nil || h.Protocol() != tipv4.ProtocolIGMP || h.Src() != netip.MustParseAddr("192.0.2.2") {
			continue
		}
		m, err := tipv4.ParseIGMP(buf[h.HeaderLen():h.TotalLen()])
		if err != nil {
			t.Fatalf("bad IGMP from tapnet: %v", err)
		}
		if m.Type() == tipv4.IGMPv2MembershipReport && m.Group() == netip.MustParseAddr("239.1.2.4") {
			if h.Dst() != m.Group() {
				t.Fatalf("v2 report sent to %v", h.Dst())
			}
			found = true
		}
	}

	// Leaving: the kernel's sends stop arriving.
	if err := rx.LeaveGroup(nil, mcG1); err != nil {
		t.Fatal(err)
	}
	ktx.WriteTo([]byte("after leave"), nil, &net.UDPAddr{IP: mcG1.IP, Port: 5008})
	if got := mcRead(rx, 300*time.Millisecond); got != "none" {
		t.Fatalf("received after leaving: %s", got)
	}
}

// sniffIPv4 opens a packet socket seeing every IPv4 packet on the
// interface (without its Ethernet header), whatever the kernel's group
// memberships. Reads time out after 200 ms so that callers can give up.
func sniffIPv4(ifindex int) (int, error) {
	const proto = unix.ETH_P_IP>>8 | unix.ETH_P_IP&0xff<<8 // network byte order
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return -1, err
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: ifindex}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	tv := unix.NsecToTimeval(int64(200 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}
