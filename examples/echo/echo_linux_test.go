package main

import (
	"bytes"
	"math/rand"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapnet/tapnet/examples/internal/netsetup"
	"github.com/tapnet/tapnet/gonet"
	"github.com/tapnet/tapnet/internal/netns"
	"github.com/tapnet/tapnet/tap"
)

// TestEchoOverTAP runs the example's serve loop on a TAP, then a TUN,
// whose kernel side is in a fresh namespace, and has a kernel client send
// datagrams the kernel must fragment at MTU 1500: tapnet reassembles them,
// and fragments its replies, which the kernel reassembles.
func TestEchoOverTAP(t *testing.T) {
	netns.RequireRoot(t)
	for _, mode := range []tap.Mode{tap.ModeTAP, tap.ModeTUN} {
		t.Run(mode.String(), func(t *testing.T) { testEchoOver(t, mode) })
	}
}

func testEchoOver(t *testing.T, mode tap.Mode) {
	ns := netns.New(t)
	dev := netns.NewTAP(t, ns, "192.0.2.1/24", tap.Options{Mode: mode})
	n, err := (&netsetup.Flags{Addr: "192.0.2.2/24"}).Attach(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	conn, err := gonet.ListenUDP(n.Stack, "udp", &net.UDPAddr{Port: 7})
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadBuffer(1 << 20)
	done := make(chan struct{})
	go func() { serve(conn); close(done) }()

	var k *net.UDPConn
	if err := ns.Do(func() (err error) {
		k, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.MustParseAddrPort("192.0.2.2:7")))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	r := rand.New(rand.NewSource(1))
	for _, size := range []int{64, 8000, 65507} {
		msg := make([]byte, size)
		r.Read(msg)
		if _, err := k.Write(msg); err != nil {
			t.Fatal(err)
		}
		k.SetReadDeadline(time.Now().Add(5 * time.Second))
		got := make([]byte, 65536)
		m, err := k.Read(got)
		if err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		if !bytes.Equal(got[:m], msg) {
			t.Fatalf("%d bytes: echo differs (%d back)", size, m)
		}
	}
	st := n.Stack.Stats()
	if st.IP.Reassembled.Load() != 2 || st.IP.FragmentsOut.Load() != 6+45 {
		t.Fatalf("reassembled %d, fragments sent %d; want 2 and 51", st.IP.Reassembled.Load(), st.IP.FragmentsOut.Load())
	}
	conn.Close()
	<-done
}

// TestEchoWithDHCP is `echo -dhcp` against dnsmasq on the kernel side: the
// stack gets its address from the lease, and the kernel pings it and
// has a datagram echoed at it.
func TestEchoWithDHCP(t *testing.T) {
	netns.RequireRoot(t)
	netns.RequireDnsmasq(t)
	ns := netns.New(t)
	dev := netns.NewTAP(t, ns, "192.0.2.1/24", tap.Options{})
	ns.Start(t, netns.DnsmasqDHCP(dev.Name(), filepath.Join(t.TempDir(), "leases"))...)
	n, err := (&netsetup.Flags{DHCP: true}).Attach(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if !netip.MustParsePrefix("192.0.2.48/28").Contains(n.Addr.Addr()) || n.Addr.Bits() != 24 {
		t.Fatalf("leased %v, want an address of dnsmasq's range", n.Addr)
	}
	conn, err := gonet.ListenUDP(n.Stack, "udp", &net.UDPAddr{Port: 7})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { serve(conn); close(done) }()
	defer func() { conn.Close(); <-done }()
	ns.Exec(t, "ping", "-c", "1", "-W", "5", n.Addr.Addr().String())
	var k *net.UDPConn
	if err := ns.Do(func() (err error) {
		k, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(n.Addr.Addr(), 7)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	k.Write([]byte("over a lease"))
	k.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	m, err := k.Read(buf)
	if err != nil || string(buf[:m]) != "over a lease" {
		t.Fatalf("echo: %q, %v", buf[:m], err)
	}
}

// TestEchoBatchOverOffloadTAP serves with -batch on a TAP with offloads: a
// kernel client's burst of datagrams comes back whole, and the replies left
// as UDP super-frames.
func TestEchoBatchOverOffloadTAP(t *testing.T) {
	netns.RequireRoot(t)
	ns := netns.New(t)
	dev := netns.NewTAP(t, ns, "192.0.2.1/24", tap.Options{Offload: true})
	n, err := (&netsetup.Flags{Addr: "192.0.2.2/24"}).Attach(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	conn, err := gonet.ListenUDP(n.Stack, "udp", &net.UDPAddr{Port: 7})
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadBuffer(4 << 20)
	ns.IP(t, "neigh", "replace", "192.0.2.2", "lladdr", dev.MAC().String(), "dev", dev.Name())

	var k *net.UDPConn
	if err := ns.Do(func() (err error) {
		k, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.MustParseAddrPort("192.0.2.2:7")))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	k.SetReadBuffer(4 << 20)
	// The server resolves the client first (one echo, served alone), then
	// finds the burst queued and answers it in batches.
	if _, err := conn.WriteToUDPAddrPort([]byte("x"), netip.MustParseAddrPort("192.0.2.1:9")); err != nil {
		t.Fatal(err)
	}
	const count = 200
	for i := range count {
		msg := bytes.Repeat([]byte{byte(i)}, 1400)
		if _, err := k.Write(msg); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() { serveBatch(conn, 64); close(done) }()
	got := make([]byte, 2000)
	seen := make(map[byte]bool)
	for range count {
		k.SetReadDeadline(time.Now().Add(5 * time.Second))
		m, err := k.Read(got)
		if err != nil {
			t.Fatalf("after %d echoes: %v", len(seen), err)
		}
		if m != 1400 || !bytes.Equal(got[:m], bytes.Repeat(got[:1], 1400)) {
			t.Fatalf("echo of %d bytes, mixed content", m)
		}
		seen[got[0]] = true
	}
	if len(seen) != count {
		t.Errorf("%d distinct echoes of %d", len(seen), count)
	}
	if st := dev.Stats(); st.TxSuperFrames == 0 {
		t.Errorf("no super-frame written: %+v", st)
	}
	conn.Close()
	<-done
}
