package stack_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"syscall"
	"testing"

	"github.com/tapnet/tapnet/internal/udpsock"
	"github.com/tapnet/tapnet/stack"
)

// TestSetMTUBounds: SetMTU takes what Linux's `ip link set mtu` takes on
// an IPv4-only NIC, 68 up to the link's MTU, and 1280 up while the NIC has
// IPv6; what it sets is what MTU, Interfaces and routes report.
func TestSetMTUBounds(t *testing.T) {
	s, _, nic := newBareNIC(t)
	for _, bad := range []int{-1, 0, 67, 1501, 65536} {
		if err := nic.SetMTU(bad); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("SetMTU(%d) = %v, want EINVAL", bad, err)
		}
	}
	if nic.MTU() != 1500 {
		t.Fatalf("MTU %d after refused changes, want 1500", nic.MTU())
	}
	for _, mtu := range []int{68, 576, 1500} {
		if err := nic.SetMTU(mtu); err != nil {
			t.Fatalf("SetMTU(%d): %v", mtu, err)
		}
		ifs, _ := s.Interfaces()
		if nic.MTU() != mtu || nic.Interface().MTU != mtu || ifs[nic.ID()-1].MTU != mtu {
			t.Fatalf("SetMTU(%d): MTU %d, Interface %d, Interfaces %d", mtu, nic.MTU(), nic.Interface().MTU, ifs[nic.ID()-1].MTU)
		}
	}

	s6 := stack.New(stack.Options{})
	t.Cleanup(func() { s6.Close() })
	nic6, err := s6.AddNIC(newRelLink(relOurMAC, 9000), stack.NICOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := nic6.SetMTU(1279); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("SetMTU(1279) with IPv6 = %v, want EINVAL", err)
	}
	if err := nic6.SetMTU(1280); err != nil {
		t.Errorf("SetMTU(1280) with IPv6: %v", err)
	}
	if err := nic6.SetMTU(9000); err != nil {
		t.Errorf("SetMTU(9000) on a 9000-byte link: %v", err)
	}
	lo := s6.NIC(1)
	if err := lo.SetMTU(65536); err != nil || lo.MTU() != 65536 {
		t.Errorf("lo SetMTU(65536): %v, MTU %d", err, lo.MTU())
	}
}

// TestSetMTUFragments: after SetMTU(576) a 1400-byte datagram leaves in
// fragments of at most 576 bytes that put it back together, a DF send
// larger than fits fails with EMSGSIZE, and routes report the new room;
// back at 1500 it leaves whole again.
func TestSetMTUFragments(t *testing.T) {
	e := newRelEnv(t, stack.Options{})
	ep := e.listen(netip.Addr{}, 0)
	to := netip.AddrPortFrom(relPeerIP, 9)
	data := bytes.Repeat([]byte("tapnet-mtu"), 140)
	if err := e.nic.SetMTU(576); err != nil {
		t.Fatal(err)
	}
	if r, err := e.s.FindRoute(0, netip.Addr{}, relPeerIP); err != nil || r.MaxPayload() != 556 {
		t.Fatalf("route MaxPayload %d (%v), want 556", r.MaxPayload(), err)
	}
	if _, err := ep.Write(data, to, nil); err != nil {
		t.Fatal(err)
	}
	frames := e.link.take()
	if len(frames) != 3 {
		t.Fatalf("%d frames for a 1400-byte datagram at MTU 576, want 3", len(frames))
	}
	for i, f := range frames {
		if ip := relParseSent(t, f).ip; len(ip) > 576 {
			t.Fatalf("fragment %d is %d bytes, over the MTU of 576", i, len(ip))
		}
	}
	_, payload := relReassemble(t, frames)
	if len(payload) != 8+len(data) || !bytes.Equal(payload[8:], data) {
		t.Fatalf("fragments carry %d bytes, not the datagram", len(payload))
	}

	ep.UpdateOptions(func(o *udpsock.Options) { o.PMTUDiscovery = udpsock.PMTUDiscoveryDo })
	if _, err := ep.Write(make([]byte, 549), to, nil); !errors.Is(err, syscall.EMSGSIZE) {
		t.Fatalf("DF send of 549 bytes at MTU 576: %v, want EMSGSIZE", err)
	}
	if _, err := ep.Write(make([]byte, 548), to, nil); err != nil {
		t.Fatalf("DF send of 548 bytes at MTU 576: %v", err)
	}
	e.link.take()

	if err := e.nic.SetMTU(1500); err != nil {
		t.Fatal(err)
	}
	if _, err := ep.Write(data, to, nil); err != nil {
		t.Fatal(err)
	}
	if frames := e.link.take(); len(frames) != 1 {
		t.Fatalf("%d frames at MTU 1500, want the datagram whole", len(frames))
	}
}

// TestSetMTUSizesICMPErrors: an ICMP error quotes no more than fits the
// NIC's MTU, so it leaves in one unfragmented packet, as Linux's icmp_send
// sizes it.
func TestSetMTUSizesICMPErrors(t *testing.T) {
	e := newRelEnv(t, stack.Options{})
	if err := e.nic.SetMTU(200); err != nil {
		t.Fatal(err)
	}
	// Arrives whole: the link's MTU still bounds what is received.
	e.link.inject(relUDPFrame(relPeerIP, relOurIP, 9999, 7, make([]byte, 1000)))
	frames := e.link.take()
	if len(frames) != 1 {
		t.Fatalf("%d frames for one port unreachable, want 1", len(frames))
	}
	s := relParseSent(t, frames[0])
	if s.proto != 1 || s.l4[0] != 3 || s.l4[1] != 3 {
		t.Fatalf("sent protocol %d type %d code %d, want port unreachable", s.proto, s.l4[0], s.l4[1])
	}
	if len(s.ip) != 200 || binary.BigEndian.Uint16(s.ip[6:])&0x3fff != 0 {
		t.Fatalf("ICMP error of %d bytes (fragment field %#04x), want 200 whole", len(s.ip), binary.BigEndian.Uint16(s.ip[6:]))
	}
}
