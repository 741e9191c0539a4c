package stack_test

import (
	"maps"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/fakeclock"
	"github.com/tapnet/tapnet/stack"
)

// relTicking is a clock that moves a minute forward at every reading, so
// that rate limits never get in the way of counting.
func relTicking() func() time.Time {
	var mu sync.Mutex
	t := time.Unix(1_700_000_000, 0)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Minute)
		return t
	}
}

// relReasmEnv is a relEnv whose reassembly clock the test drives, with a
// count of the timeouts the stack has finished handling.
type relReasmEnv struct {
	*relEnv
	clk      *fakeclock.Clock
	notified atomic.Int64
}

func newRelReasmEnv(t *testing.T, echoBroadcast bool) *relReasmEnv {
	r := &relReasmEnv{clk: fakeclock.New()}
	r.relEnv = newRelEnv(t, stack.Options{
		EchoBroadcast: echoBroadcast,
		ICMPRateLimit: stack.RateLimitOptions{Now: relTicking()},
		Reassembly: stack.ReassemblyOptions{Now: r.clk.Now,
			// Called after the stack's own handling of the timeout.
			OnTimeout: func([]byte) { r.notified.Add(1) }},
	})
	return r
}

// expire times out every datagram under reassembly and waits until the
// stack has handled them: timeouts expected in all, notified of them with a
// first fragment.
func (r *relReasmEnv) expire(t *testing.T, timeouts uint64, notified int64) {
	t.Helper()
	rs := &r.s.Stats().Reassembly
	wantTimeouts := rs.Timeouts.Load() + timeouts
	wantNotified := r.notified.Load() + notified
	r.clk.Advance(time.Minute)
	stack.ExpireReassembly(r.s)
	deadline := time.Now().Add(5 * time.Second)
	for rs.Timeouts.Load() < wantTimeouts || r.notified.Load() < wantNotified {
		if time.Now().After(deadline) {
			t.Fatalf("reassembly timeouts %d, notified %d; want %d and %d", rs.Timeouts.Load(), r.notified.Load(), wantTimeouts, wantNotified)
		}
		time.Sleep(time.Millisecond)
	}
}

func relFrag(src, dst netip.Addr, proto uint8, id uint16, offset int, mf bool, payload []byte, ethDst ethernet.MAC) []byte {
	return relEther(ethDst, relPeerMAC, ethernet.TypeIPv4,
		relIPv4(relIP{ttl: 64, proto: proto, id: id, offset: offset, mf: mf, src: src, dst: dst, payload: payload}))
}

// TestNoAmplification checks that the stack sends nothing in reply to
// packets that must not be answered (RFC 1122 3.2.2, RFC 1812 4.3.2.7, and
// Linux's icmp_send): ICMP errors, broadcasts and multicasts (at the IP or
// the link layer), non-first fragments, and broadcast pings.
func TestNoAmplification(t *testing.T) {
	r := newRelReasmEnv(t, false)
	e := r.relEnv
	allHostsMAC := ethernet.MulticastIPv4(relAllHost.As4())
	closedTo := func(dst netip.Addr, ethDst ethernet.MAC) []byte {
		return relEther(ethDst, relPeerMAC, ethernet.TypeIPv4, relIPv4(relIP{ttl: 64, proto: 17, src: relPeerIP, dst: dst,
			payload: relUDP(relPeerIP, dst, 5000, 9, []byte("closed"))}))
	}
	protoTo := func(dst netip.Addr, ethDst ethernet.MAC) []byte {
		return relEther(ethDst, relPeerMAC, ethernet.TypeIPv4, relIPv4(relIP{ttl: 64, proto: 253, src: relPeerIP, dst: dst, payload: []byte("x")}))
	}
	pingTo := func(dst netip.Addr, ethDst ethernet.MAC) []byte {
		return relEther(ethDst, relPeerMAC, ethernet.TypeIPv4, relIPv4(relIP{ttl: 64, proto: 1, src: relPeerIP, dst: dst,
			payload: relICMP(8, 0, 0x00010001, []byte("ping"))}))
	}
	// An ICMP port unreachable quoting a datagram we might have sent.
	quoted := relIPv4(relIP{ttl: 64, proto: 17, src: relOurIP, dst: relPeerIP, payload: relUDP(relOurIP, relPeerIP, 40000, 9, nil)})
	unreach := relICMP(3, 3, 0, quoted)
	noPort := map[string]uint64{"Link.RxFrames": 1, "IP.Received": 1, "IP.Delivered": 1, "UDP.Received": 1, "UDP.NoPort": 1}
	unknown := map[string]uint64{"Link.RxFrames": 1, "IP.Received": 1, "IP.Delivered": 1, "IP.UnknownProtocol": 1}
	ignored := map[string]uint64{"Link.RxFrames": 1, "IP.Received": 1, "IP.Delivered": 1, "ICMP.Received": 1, "ICMP.EchoRequests": 1, "ICMP.EchoIgnored": 1}

	cases := []struct {
		name     string
		frames   [][]byte
		timeouts uint64 // reassembly timeouts to trigger after the frames
		notified int64
		want     map[string]uint64
	}{
		{name: "closed port, limited broadcast", frames: [][]byte{closedTo(relLimited, ethernet.Broadcast)}, want: noPort},
		{name: "closed port, subnet broadcast", frames: [][]byte{closedTo(relBcastIP, ethernet.Broadcast)}, want: noPort},
		{name: "closed port, all-hosts group", frames: [][]byte{closedTo(relAllHost, allHostsMAC)}, want: noPort},
		{name: "closed port, unicast IP in a link broadcast", frames: [][]byte{closedTo(relOurIP, ethernet.Broadcast)}, want: noPort},
		{name: "closed port, unicast IP in a link multicast", frames: [][]byte{closedTo(relOurIP, allHostsMAC)}, want: noPort},
		{name: "unknown protocol, limited broadcast", frames: [][]byte{protoTo(relLimited, ethernet.Broadcast)}, want: unknown},
		{name: "unknown protocol, all-hosts group", frames: [][]byte{protoTo(relAllHost, allHostsMAC)}, want: unknown},
		{name: "unknown protocol, unicast IP in a link broadcast", frames: [][]byte{protoTo(relOurIP, ethernet.Broadcast)}, want: unknown},
		{name: "ICMP error", frames: [][]byte{relICMPFrame(unreach)},
			want: map[string]uint64{"Link.RxFrames": 1, "IP.Received": 1, "IP.Delivered": 1, "ICMP.Received": 1, "ICMP.ErrorsReceived": 1}},
		{name: "ICMP error about an ICMP error", frames: [][]byte{relICMPFrame(relICMP(3, 1, 0,
			relIPv4(relIP{ttl: 64, proto: 1, src: relOurIP, dst: relPeerIP, payload: unreach})[:28]))},
			want: map[string]uint64{"Link.RxFrames": 1, "IP.Received": 1, "IP.Delivered": 1, "ICMP.Received": 1, "ICMP.ErrorsReceived": 1}},
		{name: "unsolicited echo reply", frames: [][]byte{relICMPFrame(relICMP(0, 0, 1, []byte("pong")))},
			want: map[string]uint64{"Link.RxFrames": 1, "IP.Received": 1, "IP.Delivered": 1, "ICMP.Received": 1}},
		{name: "ping to the limited broadcast", frames: [][]byte{pingTo(relLimited, ethernet.Broadcast)}, want: ignored},
		{name: "ping to the subnet broadcast", frames: [][]byte{pingTo(relBcastIP, ethernet.Broadcast)}, want: ignored},
		{name: "ping to all hosts", frames: [][]byte{pingTo(relAllHost, allHostsMAC)}, want: ignored},
		{name: "non-first fragment to a closed port times out",
			frames:   [][]byte{relFrag(relPeerIP, relOurIP, 17, 100, 8, false, []byte("tail of a datagram"), relOurMAC)},
			timeouts: 1,
			want:     map[string]uint64{"Link.RxFrames": 1, "IP.Received": 1, "IP.FragmentsIn": 1, "Reassembly.Fragments": 1, "Reassembly.Timeouts": 1}},
		{name: "non-first fragment of an unknown protocol times out",
			frames:   [][]byte{relFrag(relPeerIP, relOurIP, 253, 101, 16, true, make([]byte, 16), relOurMAC)},
			timeouts: 1,
			want:     map[string]uint64{"Link.RxFrames": 1, "IP.Received": 1, "IP.FragmentsIn": 1, "Reassembly.Fragments": 1, "Reassembly.Timeouts": 1}},
		{name: "first fragment of an ICMP error times out",
			frames:   [][]byte{relFrag(relPeerIP, relOurIP, 1, 102, 0, true, unreach[:16], relOurMAC)},
			timeouts: 1, notified: 1,
			want: map[string]uint64{"Link.RxFrames": 1, "IP.Received": 1, "IP.FragmentsIn": 1, "Reassembly.Fragments": 1, "Reassembly.Timeouts": 1, "ICMP.ErrorsSuppressed": 1}},
		{name: "first fragment to the subnet broadcast times out",
			frames:   [][]byte{relFrag(relPeerIP, relBcastIP, 17, 103, 0, true, relUDP(relPeerIP, relBcastIP, 5000, 9, make([]byte, 24))[:16], ethernet.Broadcast)},
			timeouts: 1, notified: 1,
			want: map[string]uint64{"Link.RxFrames": 1, "IP.Received": 1, "IP.FragmentsIn": 1, "Reassembly.Fragments": 1, "Reassembly.Timeouts": 1}},
		{name: "first fragment to a group times out",
			frames:   [][]byte{relFrag(relPeerIP, relAllHost, 17, 104, 0, true, relUDP(relPeerIP, relAllHost, 5000, 9, make([]byte, 24))[:16], allHostsMAC)},
			timeouts: 1, notified: 1,
			want: map[string]uint64{"Link.RxFrames": 1, "IP.Received": 1, "IP.FragmentsIn": 1, "Reassembly.Fragments": 1, "Reassembly.Timeouts": 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.s.Stats().Snapshot()
			for _, f := range c.frames {
				e.link.inject(f)
			}
			if c.timeouts > 0 {
				r.expire(t, c.timeouts, c.notified)
			}
			after := e.s.Stats().Snapshot()
			if d := relDelta(before, after); !maps.Equal(d, c.want) {
				t.Errorf("counters moved by %s, want %s", relFormat(d), relFormat(c.want))
			}
			relCheckBalance(t, after)
			for _, f := range e.link.take() {
				s := relParseSent(t, f)
				t.Errorf("stack answered: EtherType %#04x proto %d %v -> %v %x", s.etherType, s.proto, s.src, s.dst, s.l4)
			}
		})
	}
}

// TestReassemblyTimeExceeded is the control of the fragment cases above: a
// unicast datagram whose first fragment arrived, and that never completes,
// is answered with one time exceeded (code 1) quoting that fragment.
func TestReassemblyTimeExceeded(t *testing.T) {
	r := newRelReasmEnv(t, false)
	first := relIPv4(relIP{ttl: 64, proto: 17, id: 200, mf: true, src: relPeerIP, dst: relOurIP,
		payload: relUDP(relPeerIP, relOurIP, 5000, 7, make([]byte, 40))[:24]})
	r.link.inject(relEther(relOurMAC, relPeerMAC, ethernet.TypeIPv4, first))
	r.expire(t, 1, 1)
	sent := r.link.take()
	if len(sent) != 1 {
		t.Fatalf("%d frames sent, want one time exceeded", len(sent))
	}
	s := relParseSent(t, sent[0])
	if s.proto != 1 || s.l4[0] != 11 || s.l4[1] != 1 || s.dst != relPeerIP {
		t.Fatalf("sent proto %d type %d code %d to %v, want ICMP 11/1 to the peer", s.proto, s.l4[0], s.l4[1], s.dst)
	}
	if q := s.l4[8:]; string(q) != string(first[:28]) {
		t.Fatalf("quoted %x, want the first fragment's header and 8 bytes %x", q, first[:28])
	}
}

// TestEchoBroadcastEnabled checks the opt-in: with EchoBroadcast set,
// pings to broadcast and group addresses are answered from our address.
func TestEchoBroadcastEnabled(t *testing.T) {
	r := newRelReasmEnv(t, true)
	e := r.relEnv
	for _, c := range []struct {
		dst    netip.Addr
		ethDst ethernet.MAC
	}{
		{relLimited, ethernet.Broadcast},
		{relBcastIP, ethernet.Broadcast},
		{relAllHost, ethernet.MulticastIPv4(relAllHost.As4())},
	} {
		e.link.inject(relEther(c.ethDst, relPeerMAC, ethernet.TypeIPv4, relIPv4(relIP{ttl: 64, proto: 1, src: relPeerIP, dst: c.dst,
			payload: relICMP(8, 0, 0x00070001, []byte("bping"))})))
		sent := e.link.take()
		if len(sent) != 1 {
			t.Fatalf("ping to %v: %d frames sent, want one reply", c.dst, len(sent))
		}
		s := relParseSent(t, sent[0])
		if s.proto != 1 || s.l4[0] != 0 || s.src != relOurIP || s.dst != relPeerIP || string(s.l4[8:]) != "bping" {
			t.Fatalf("ping to %v: reply proto %d type %d from %v to %v", c.dst, s.proto, s.l4[0], s.src, s.dst)
		}
	}
	if got := e.s.Stats().ICMP.EchoReplies.Load(); got != 3 {
		t.Errorf("EchoReplies %d, want 3", got)
	}
}
