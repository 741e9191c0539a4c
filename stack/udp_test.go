package stack_test

import (
	"bytes"
	"errors"
	"net/netip"
	"syscall"
	"testing"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/udp"
)

// TestWriteUDP sends through the stack's public UDP send path: the header
// and checksum are built for the route, the datagram goes out (or loops
// back to our own socket), and bad input is an error, never a panic.
func TestWriteUDP(t *testing.T) {
	e := newRelEnv(t, stack.Options{})
	r, err := e.s.FindRoute(0, netip.Addr{}, relPeerIP)
	if err != nil {
		t.Fatal(err)
	}
	e.link.take()
	sent := e.s.Stats().UDP.Sent.Load()
	if err := e.s.WriteUDP(&r, 4000, 53, []byte("query"), stack.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	frames := e.link.take()
	if len(frames) != 1 {
		t.Fatalf("%d frames sent, want 1", len(frames))
	}
	s := relParseSent(t, frames[0]) // verifies the UDP checksum
	h := udp.Header(s.l4)
	if s.proto != udp.ProtocolNumber || s.src != relOurIP || s.dst != relPeerIP ||
		h.SrcPort() != 4000 || h.DstPort() != 53 || h.Length() != udp.HeaderLen+5 || !bytes.Equal(s.l4[udp.HeaderLen:], []byte("query")) {
		t.Fatalf("sent %+v", s)
	}
	if got := e.s.Stats().UDP.Sent.Load() - sent; got != 1 {
		t.Errorf("UDP.Sent grew by %d, want 1", got)
	}

	// Looped back to our own socket, without the link.
	ep := e.listen(netip.Addr{}, 7)
	lr, err := e.s.FindRoute(0, netip.Addr{}, relOurIP)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.s.WriteUDP(&lr, 4001, 7, []byte("self"), stack.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := relRead(ep); len(got) != 1 || string(got[0].data) != "self" || got[0].src != netip.AddrPortFrom(relOurIP, 4001) {
		t.Fatalf("looped datagram: %+v", got)
	}

	for _, c := range []struct {
		name    string
		r       *stack.Route
		payload int
		o       stack.WriteOptions
		want    error
	}{
		{"nil route", nil, 1, stack.WriteOptions{}, syscall.EINVAL},
		{"zero route", &stack.Route{}, 1, stack.WriteOptions{}, syscall.EINVAL},
		{"too large", &r, udp.MaxPayload + 1, stack.WriteOptions{}, syscall.EMSGSIZE},
		{"DF above the MTU", &r, 1500 - 20 - 8 + 1, stack.WriteOptions{DF: true}, syscall.EMSGSIZE},
	} {
		if err := e.s.WriteUDP(c.r, 4000, 53, make([]byte, c.payload), c.o); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if f := e.link.take(); len(f) != 0 {
		t.Errorf("%d frames sent for refused datagrams", len(f))
	}
}

// TestDeliveryCounted checks that the stack counts what an endpoint did with
// each datagram: queued, dropped on a full buffer, or refused after a read
// shutdown (counted as no port, as Linux does).
func TestDeliveryCounted(t *testing.T) {
	e := newRelEnv(t, stack.Options{})
	ep := e.listen(netip.Addr{}, 7)
	ep.SetReceiveBufferSize(1) // the minimum: one small datagram fits
	if err := ep.Connect(netip.AddrPortFrom(relPeerIP, 5000)); err != nil {
		t.Fatal(err)
	}
	send := func() {
		e.link.inject(relEther(relOurMAC, relPeerMAC, ethernet.TypeIPv4,
			relIPv4(relIP{ttl: 64, proto: 17, id: 1, src: relPeerIP, dst: relOurIP, payload: relUDP(relPeerIP, relOurIP, 5000, 7, []byte("x"))})))
	}
	before := e.s.Stats().Snapshot()
	for i := 0; i < 5; i++ {
		send()
	}
	d := relDelta(before, e.s.Stats().Snapshot())
	if d["UDP.Delivered"] == 0 || d["UDP.BufferErrors"] == 0 || d["UDP.Delivered"]+d["UDP.BufferErrors"] != 5 || ep.Drops() != d["UDP.BufferErrors"] {
		t.Fatalf("full buffer: %s, endpoint drops %d", relFormat(d), ep.Drops())
	}
	if err := ep.Shutdown(true, false); err != nil {
		t.Fatal(err)
	}
	before = e.s.Stats().Snapshot()
	send()
	if d := relDelta(before, e.s.Stats().Snapshot()); d["UDP.NoPort"] != 1 || d["UDP.Delivered"] != 0 {
		t.Fatalf("after shutdown: %s", relFormat(d))
	}
	relCheckBalance(t, e.s.Stats().Snapshot())
}
