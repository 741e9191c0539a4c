package main

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/tapnet/tapnet/internal/netns"
	"github.com/tapnet/tapnet/tap"
)

// TestDNSWithDHCP is `dns -dhcp` against dnsmasq (DHCP only) on the kernel
// side of a TAP: the server listens on the leased address and answers a
// kernel client there.
func TestDNSWithDHCP(t *testing.T) {
	netns.RequireRoot(t)
	netns.RequireDnsmasq(t)
	ns := netns.New(t)
	dev := netns.NewTAP(t, ns, "192.0.2.1/24", tap.Options{})
	ns.Start(t, netns.DnsmasqDHCP(dev.Name(), filepath.Join(t.TempDir(), "leases"), "--port=0")...)
	c, err := parseTestFlags("-dhcp", "-record", "www.example.test=192.0.2.80")
	if err != nil {
		t.Fatal(err)
	}
	n, err := c.link.Attach(dev)
	if err != nil {
		t.Fatal(err)
	}
	pcs, cleanup, err := listenTapnet(n, 53)
	if err != nil {
		n.Close()
		t.Fatal(err)
	}
	if len(pcs) != 1 || !netip.MustParsePrefix("192.0.2.48/28").Contains(n.Addr.Addr()) {
		cleanup()
		t.Fatalf("%d sockets, leased %v; want one on an address of dnsmasq's range", len(pcs), n.Addr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- serveAll(ctx, &Server{Zone: c.zone, UDPSize: c.udpSize}, pcs) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		cleanup()
	}()

	var k net.PacketConn
	if err := ns.Do(func() (err error) {
		k, err = net.ListenPacket("udp4", "192.0.2.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(n.Addr.Addr(), 53))
	m := query(t, k, to, "www.example.test.", queryOpts{id: 7, typ: dnsmessage.TypeA})
	if got, want := answerIPs(t, m), []netip.Addr{netip.MustParseAddr("192.0.2.80")}; !slices.Equal(got, want) {
		t.Errorf("answer %v, want %v", got, want)
	}
}
