package main

import (
	"bytes"
	"math/rand"
	"net"
	"net/netip"
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
