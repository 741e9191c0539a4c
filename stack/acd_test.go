package stack_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/stack"
)

// fastACD keeps RFC 5227's sequence with short waits.
var fastACD = stack.ACDConfig{ProbeWait: time.Millisecond, ProbeMin: time.Millisecond, ProbeMax: 2 * time.Millisecond,
	AnnounceWait: time.Millisecond, AnnounceInterval: time.Millisecond, DefendInterval: time.Hour}

func newBareNIC(t *testing.T) (*stack.Stack, *relLink, *stack.NIC) {
	t.Helper()
	s := stack.New(stack.Options{})
	t.Cleanup(func() { s.Close() })
	link := newRelLink(relOurMAC, 1500)
	nic, err := s.AddNIC(link, stack.NICOptions{IPv6: stack.IPv6Options{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	return s, link, nic
}

// TestACDProbesThenAnnounces checks a free address: three ARP probes from
// 0.0.0.0, then announcements, then the address is assigned.
func TestACDProbesThenAnnounces(t *testing.T) {
	_, link, nic := newBareNIC(t)
	p := netip.MustParsePrefix("192.0.2.9/24")
	if err := nic.AddAddressWithOptions(p, stack.AddressOptions{DetectConflicts: true, ACD: fastACD}); err != nil {
		t.Fatal(err)
	}
	if got := nic.Addresses(); len(got) != 1 || got[0] != p {
		t.Fatalf("addresses %v, want %v", got, p)
	}
	var probes, announces int
	for i := 0; i < 500 && announces < 2; i++ {
		for _, f := range link.take() {
			s := relParseSent(t, f)
			if s.etherType != ethernet.TypeARP {
				continue
			}
			sip, tip := netip.AddrFrom4([4]byte(f[28:32])), netip.AddrFrom4([4]byte(f[38:42]))
			switch {
			case sip.IsUnspecified() && tip == p.Addr() && announces == 0:
				probes++
			case sip == p.Addr() && tip == p.Addr():
				announces++
			default:
				t.Errorf("unexpected ARP %v -> %v after %d probes, %d announcements", sip, tip, probes, announces)
			}
		}
		time.Sleep(time.Millisecond)
	}
	if probes != 3 || announces != 2 {
		t.Fatalf("%d probes and %d announcements, want 3 and 2", probes, announces)
	}
}

// TestACDConflictWhileProbing has another host probe for the same address:
// the address is refused and never assigned.
func TestACDConflictWhileProbing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame func(a netip.Addr) []byte
	}{
		{"owner answers", func(a netip.Addr) []byte { return relARP(2, relPeerMAC, a, relOurMAC, a, relOurMAC) }},
		{"another probe", func(a netip.Addr) []byte {
			return relARP(1, relPeerMAC, netip.IPv4Unspecified(), ethernet.MAC{}, a, ethernet.Broadcast)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, link, nic := newBareNIC(t)
			p := netip.MustParsePrefix("192.0.2.9/24")
			slow := fastACD
			slow.ProbeWait = time.Hour // only a conflict ends the call
			done := make(chan error, 1)
			go func() { done <- nic.AddAddressWithOptions(p, stack.AddressOptions{DetectConflicts: true, ACD: slow}) }()
			var err error
		wait:
			for i := 0; i < 1000; i++ {
				link.inject(tc.frame(p.Addr()))
				select {
				case err = <-done:
					break wait
				case <-time.After(5 * time.Millisecond):
				}
			}
			if !errors.Is(err, stack.ErrAddressConflict) {
				t.Fatalf("got %v, want ErrAddressConflict", err)
			}
			if got := nic.Addresses(); len(got) != 0 {
				t.Fatalf("conflicting address assigned: %v", got)
			}
		})
	}
}

// TestACDDefendThenGiveUp: the first conflict is answered with an
// announcement, a second within DefendInterval removes the address and
// calls OnConflict.
func TestACDDefendThenGiveUp(t *testing.T) {
	_, link, nic := newBareNIC(t)
	p := netip.MustParsePrefix("192.0.2.9/24")
	lost := make(chan ethernet.MAC, 1)
	opts := stack.AddressOptions{DetectConflicts: true, ACD: fastACD, OnConflict: func(q netip.Prefix, by ethernet.MAC) {
		if q == p {
			lost <- by
		}
	}}
	opts.ACD.AnnounceNum = 1
	if err := nic.AddAddressWithOptions(p, opts); err != nil {
		t.Fatal(err)
	}
	link.take()
	claim := relARP(1, relPeerMAC, p.Addr(), ethernet.MAC{}, p.Addr(), ethernet.Broadcast)
	link.inject(claim)
	sent := link.take()
	if len(sent) != 1 || netip.AddrFrom4([4]byte(sent[0][28:32])) != p.Addr() {
		t.Fatalf("first conflict: %d frames sent, want one defending announcement", len(sent))
	}
	if len(nic.Addresses()) != 1 {
		t.Fatal("address given up at the first conflict")
	}
	link.inject(claim)
	select {
	case by := <-lost:
		if by != relPeerMAC {
			t.Fatalf("OnConflict names %v", by)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OnConflict not called")
	}
	if got := nic.Addresses(); len(got) != 0 {
		t.Fatalf("address kept after the second conflict: %v", got)
	}
}

// TestACDCancelledProbe: a check whose context ends stops probing and
// leaves the address unassigned.
func TestACDCancelledProbe(t *testing.T) {
	_, _, nic := newBareNIC(t)
	p := netip.MustParsePrefix("192.0.2.9/24")
	slow := fastACD
	slow.ProbeWait = time.Hour // only the cancellation ends the call
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- nic.AddAddressContext(ctx, p, stack.AddressOptions{DetectConflicts: true, ACD: slow}) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("probe not stopped by its context")
	}
	if got := nic.Addresses(); len(got) != 0 {
		t.Fatalf("cancelled address assigned: %v", got)
	}
	// The address can be checked again.
	if err := nic.AddAddressWithOptions(p, stack.AddressOptions{DetectConflicts: true, ACD: fastACD}); err != nil {
		t.Fatal(err)
	}
}
