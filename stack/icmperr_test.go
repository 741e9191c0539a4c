package stack_test

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/tapnet/tapnet/arp"
	"github.com/tapnet/tapnet/internal/udpsock"
	"github.com/tapnet/tapnet/stack"
)

// nicBoundConn is a socket bound to the env's NIC (SO_BINDTODEVICE), on
// our address and port 5353, connected to peer.
func (e *relEnv) nicBoundConn(peer netip.AddrPort) *udpsock.Endpoint {
	e.t.Helper()
	ep := udpsock.New(e.s)
	e.t.Cleanup(func() { ep.Close() })
	if err := ep.BindToNIC(e.nic.ID()); err != nil {
		e.t.Fatal(err)
	}
	if err := ep.Bind(netip.AddrPortFrom(relOurIP, 5353)); err != nil {
		e.t.Fatal(err)
	}
	if err := ep.Connect(peer); err != nil {
		e.t.Fatal(err)
	}
	return ep
}

// TestICMPErrorReachesNICBoundSocket checks that an ICMP error is matched
// against sockets as Linux's __udp4_lib_err does, with the interface it
// arrived on: a socket bound to that NIC (a DHCP client's, or one with
// SO_BINDTODEVICE) gets it.
func TestICMPErrorReachesNICBoundSocket(t *testing.T) {
	e := newRelEnv(t, stack.Options{})
	ep := e.nicBoundConn(netip.AddrPortFrom(relPeerIP, 53))
	quoted := relIPv4(relIP{ttl: 64, proto: 17, src: relOurIP, dst: relPeerIP, payload: relUDP(relOurIP, relPeerIP, 5353, 53, nil)})
	e.link.inject(relICMPFrame(relICMP(3, 3, 0, quoted)))
	if _, err := ep.Read(make([]byte, 10), false, relNow); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("read after port unreachable: %v, want ECONNREFUSED", err)
	}
	if got := e.s.Stats().ICMP.ErrorsDelivered.Load(); got != 1 {
		t.Errorf("ICMP.ErrorsDelivered = %d, want 1", got)
	}
}

// TestUnresolvedHopReachesNICBoundSocket checks the local error for a next
// hop that never answers ARP: it goes to the sender even when the sender
// is bound to the NIC the packet was to leave by.
func TestUnresolvedHopReachesNICBoundSocket(t *testing.T) {
	e := newRelEnv(t, stack.Options{ARP: arp.Config{Retries: 1, RetransInterval: 10 * time.Millisecond}})
	ep := e.nicBoundConn(netip.AddrPortFrom(netip.MustParseAddr("192.0.2.99"), 9))
	if _, err := ep.Write([]byte("x"), netip.AddrPort{}, nil); err != nil {
		t.Fatal(err)
	}
	giveUp := make(chan struct{})
	defer time.AfterFunc(5*time.Second, func() { close(giveUp) }).Stop()
	if _, err := ep.Read(make([]byte, 10), false, giveUp); !errors.Is(err, syscall.EHOSTUNREACH) {
		t.Fatalf("read after ARP failed: %v, want EHOSTUNREACH", err)
	}
}
