package stack_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/fakeclock"
	"github.com/tapnet/tapnet/ipv6"
	"github.com/tapnet/tapnet/link"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
	"github.com/tapnet/tapnet/udp"
)

// fragHost6 is a stack at v6A whose IPv6 reassembly runs on a fake clock,
// fed with hand-made fragments from a peer on the other end of a pipe.
type fragHost6 struct {
	s      *stack.Stack
	nic    *stack.NIC
	peer   *tap.PipeEnd
	clk    *fakeclock.Clock
	quotes chan []byte
}

var (
	fragPeer6    = netip.MustParseAddr("2001:db8::9")
	fragPeerMAC6 = ethernet.MAC{0x02, 0, 0, 0, 0, 9}
)

func newFragHost6(t *testing.T) *fragHost6 {
	t.Helper()
	la, lb := tap.Pipe(tap.PipeOptions{})
	h := &fragHost6{peer: lb, clk: fakeclock.New(), quotes: make(chan []byte, 4)}
	h.s = stack.New(stack.Options{Reassembly6: stack.ReassemblyOptions{Now: h.clk.Now,
		OnTimeout: func(first []byte) { h.quotes <- bytes.Clone(first) }}})
	t.Cleanup(func() { h.s.Close() })
	var err error
	if h.nic, err = h.s.AddNIC(la, stack.NICOptions{Addresses: []netip.Prefix{v6A}, IPv6: fastDAD}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.nic.WaitAddress(ctx, v6A.Addr()); err != nil {
		t.Fatal(err)
	}
	return h
}

// udpDatagram6 returns a UDP datagram from the peer's port 5000 to port 7
// of v6A carrying payload.
func udpDatagram6(payload []byte) []byte {
	d := make([]byte, udp.HeaderLen+len(payload))
	copy(d[udp.HeaderLen:], payload)
	udp.PutHeader(d, 5000, 7, fragPeer6, v6A.Addr())
	return d
}

// fragment6 returns a frame holding data[off:end] of a datagram as a
// fragment (identification id) behind a hop-by-hop header when hbh is set,
// so that the unfragmentable part is more than the IPv6 header.
func (h *fragHost6) fragment6(data []byte, id uint32, off, end int, more, hbh bool) []byte {
	var ext []byte
	if hbh {
		ext = []byte{ipv6.ProtocolFragment, 0, ipv6.OptPadN, 4, 0, 0, 0, 0}
	}
	fh := make([]byte, 8)
	fh[0] = udp.ProtocolNumber
	fo := uint16(off)
	if more {
		fo |= 1
	}
	binary.BigEndian.PutUint16(fh[2:], fo)
	binary.BigEndian.PutUint32(fh[4:], id)
	payload := append(append(ext, fh...), data[off:end]...)
	next := uint8(ipv6.ProtocolFragment)
	if hbh {
		next = ipv6.ProtocolHopByHop
	}
	b := make([]byte, ethernet.HeaderLen+ipv6.HeaderLen+len(payload))
	ethernet.PutHeader(b, h.nic.MAC(), fragPeerMAC6, ethernet.TypeIPv6)
	ipv6.Put(b[ethernet.HeaderLen:], ipv6.Fields{PayloadLen: len(payload), NextHeader: next, HopLimit: 64, Src: fragPeer6, Dst: v6A.Addr()})
	copy(b[ethernet.HeaderLen+ipv6.HeaderLen:], payload)
	return b
}

func (h *fragHost6) inject(t *testing.T, frames ...[]byte) {
	t.Helper()
	for _, f := range frames {
		if _, err := h.peer.WriteFrames([]link.Frame{{Buf: f, Len: len(f)}}); err != nil {
			t.Fatal(err)
		}
	}
}

// waitCounter waits until counter reaches want; the pipe delivers on the
// stack's reader goroutine.
func (h *fragHost6) waitCounter(t *testing.T, counter string, want uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for h.s.Stats().Snapshot()[counter] < want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := h.s.Stats().Snapshot()[counter]; got != want {
		t.Fatalf("%s = %d, want %d", counter, got, want)
	}
}

// TestIPv6ReassemblyRebuildsHeaderChain sends a datagram in three
// fragments, out of order, behind a hop-by-hop header: the reassembled
// packet must name UDP where the fragment header was, and carry the whole
// payload with a valid checksum.
func TestIPv6ReassemblyRebuildsHeaderChain(t *testing.T) {
	h := newFragHost6(t)
	ep := (&v6Host{s: h.s, nic: h.nic}).bind(t, netip.Addr{}, 7)
	payload := bytes.Repeat([]byte("0123456789abcdef"), 200)
	d := udpDatagram6(payload)
	h.inject(t, h.fragment6(d, 42, 2400, len(d), false, true), h.fragment6(d, 42, 0, 1200, true, true), h.fragment6(d, 42, 1200, 2400, true, true))
	select {
	case p := <-ep.pkts:
		got := make([]byte, p.Payload.Len())
		p.Payload.CopyTo(got)
		p.Payload.Release()
		if !bytes.Equal(got, payload) || p.Src != netip.AddrPortFrom(fragPeer6, 5000) {
			t.Fatalf("got %d bytes from %v, want %d from %v:5000", len(got), p.Src, len(payload), fragPeer6)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("nothing delivered: %v", h.s.Stats().Snapshot())
	}
	if r := &h.s.Stats().Reassembly6; r.Fragments.Load() != 3 || r.Reassembled.Load() != 1 || r.InFlight.Load() != 0 {
		t.Errorf("Reassembly6: %d fragments, %d reassembled, %d in flight; want 3 1 0", r.Fragments.Load(), r.Reassembled.Load(), r.InFlight.Load())
	}
}

// TestIPv6ReassemblyOverlapDropsDatagram checks RFC 5722: fragments that
// overlap drop the datagram even when the shared bytes agree (IPv4 merges
// those), and later fragments of it are dropped too.
func TestIPv6ReassemblyOverlapDropsDatagram(t *testing.T) {
	h := newFragHost6(t)
	ep := (&v6Host{s: h.s, nic: h.nic}).bind(t, netip.Addr{}, 7)
	d := udpDatagram6(make([]byte, 100))
	h.inject(t, h.fragment6(d, 7, 0, 64, true, false), h.fragment6(d, 7, 56, 104, true, false), h.fragment6(d, 7, 104, len(d), false, false))
	h.waitCounter(t, "Reassembly6.Tombstoned", 1)
	if got := h.s.Stats().Reassembly6.Overlaps.Load(); got != 1 {
		t.Errorf("Reassembly6.Overlaps = %d, want 1", got)
	}
	select {
	case p := <-ep.pkts:
		p.Payload.Release()
		t.Fatal("an overlapping datagram was delivered")
	default:
	}
}

// TestIPv6ReassemblyTimeoutQuotes checks the 60 s timeout (on the fake
// clock) and that Time Exceeded quotes the first fragment up to 1232
// bytes, as much as a 1280-byte ICMPv6 error holds, not IPv4's header and
// 8 bytes.
func TestIPv6ReassemblyTimeoutQuotes(t *testing.T) {
	h := newFragHost6(t)
	d := udpDatagram6(make([]byte, 3000))
	first := h.fragment6(d, 9, 0, 1400, true, false)
	h.inject(t, first)
	h.waitCounter(t, "Reassembly6.InFlight", 1)
	h.clk.Advance(59 * time.Second)
	stack.ExpireReassembly6(h.s)
	if got := h.s.Stats().Reassembly6.Timeouts.Load(); got != 0 {
		t.Fatalf("timed out after 59 s")
	}
	sent := h.s.Stats().ICMPv6.ErrorsSent.Load()
	h.clk.Advance(time.Second)
	stack.ExpireReassembly6(h.s)
	select {
	case q := <-h.quotes:
		if want := first[ethernet.HeaderLen:][:1232]; !bytes.Equal(q, want) {
			t.Errorf("quote of %d bytes, want the first fragment's first 1232", len(q))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no timeout reported")
	}
	if got := h.s.Stats().ICMPv6.ErrorsSent.Load(); got != sent+1 {
		t.Errorf("ICMPv6.ErrorsSent moved by %d, want 1 (time exceeded)", got-sent)
	}
}
