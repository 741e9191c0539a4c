package dhcpclient_test

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/rfc1035label"
	"github.com/tapnet/tapnet/dhcpclient"
	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/fakeclock"
	"github.com/tapnet/tapnet/internal/udpsock"
	"github.com/tapnet/tapnet/link"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

// manualClock is a fakeclock as a dhcpclient.Clock: time moves only when
// the test advances it.
type manualClock struct{ *fakeclock.Clock }

func (c manualClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.AfterFunc(d, func() { ch <- c.Now() })
	return ch
}

var (
	fakeServerIP = netip.MustParseAddr("192.0.2.1")
	fakeLeased   = netip.MustParseAddr("192.0.2.50")
	otherMAC     = ethernet.MAC{0x02, 0, 0, 0, 0, 0x99}
)

// fakeEnv is a client stack and a server stack on an in-memory hub, and a
// third port for frames of the test's own.
type fakeEnv struct {
	t       *testing.T
	clk     manualClock
	s       *stack.Stack
	nic     *stack.NIC
	raw     *tap.HubPort
	mtu     int                 // option 26 in the server's replies; 0: none
	extra   []dhcpv4.Modifier   // more options of the server's replies
	silent  chan struct{}       // closed: the server stops answering
	got     chan *dhcpv4.DHCPv4 // DECLINEs and RELEASEs the server received
	events  chan dhcpclient.Event
	srvDone chan struct{}
}

func newFakeEnv(t *testing.T, mtu int, extra ...dhcpv4.Modifier) *fakeEnv {
	t.Helper()
	hub := tap.NewHub()
	e := &fakeEnv{t: t, clk: manualClock{fakeclock.New()}, mtu: mtu, extra: extra, silent: make(chan struct{}),
		got: make(chan *dhcpv4.DHCPv4, 16), events: make(chan dhcpclient.Event, 64), srvDone: make(chan struct{}),
		raw: hub.Port(tap.HubPortOptions{MAC: otherMAC})}
	go drain(e.raw)
	e.s = stack.New(stack.Options{})
	srv := stack.New(stack.Options{})
	t.Cleanup(func() { e.s.Close(); srv.Close(); hub.Close(); <-e.srvDone })
	var err error
	if e.nic, err = e.s.AddNIC(hub.Port(tap.HubPortOptions{}), stack.NICOptions{IPv6: stack.IPv6Options{Disabled: true}}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.AddNIC(hub.Port(tap.HubPortOptions{}), stack.NICOptions{IPv6: stack.IPv6Options{Disabled: true},
		Addresses: []netip.Prefix{netip.PrefixFrom(fakeServerIP, 24)}}); err != nil {
		t.Fatal(err)
	}
	ep := udpsock.New(srv)
	if err := ep.Bind(netip.AddrPortFrom(netip.IPv4Unspecified(), dhcpclient.ServerPort)); err != nil {
		t.Fatal(err)
	}
	go e.serve(ep)
	return e
}

func drain(p *tap.HubPort) {
	buf := make([]byte, 2048)
	frames := []link.Frame{{Buf: buf}}
	for i := 0; i < 1<<20; i++ {
		frames[0] = link.Frame{Buf: buf}
		if _, err := p.ReadFrames(frames); err != nil {
			return
		}
	}
}

// serve answers DISCOVER with an OFFER and REQUEST with an ACK of
// 192.0.2.50/24 for an hour, broadcast, until silent.
func (e *fakeEnv) serve(ep *udpsock.Endpoint) {
	defer close(e.srvDone)
	buf := make([]byte, 1500)
	for {
		info, err := ep.Read(buf, false, nil)
		if errors.Is(err, udpsock.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		req, err := dhcpv4.FromBytes(buf[:info.N])
		if err != nil {
			continue
		}
		typ := dhcpv4.MessageTypeOffer
		switch req.MessageType() {
		case dhcpv4.MessageTypeDiscover:
		case dhcpv4.MessageTypeRequest:
			typ = dhcpv4.MessageTypeAck
		default:
			e.got <- req
			continue
		}
		select {
		case <-e.silent:
			continue
		default:
		}
		mods := []dhcpv4.Modifier{dhcpv4.WithMessageType(typ), dhcpv4.WithYourIP(fakeLeased.AsSlice()),
			dhcpv4.WithNetmask(net.CIDRMask(24, 32)), dhcpv4.WithLeaseTime(3600),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(fakeServerIP.AsSlice()))}
		if e.mtu != 0 {
			mods = append(mods, dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionInterfaceMTU, binary.BigEndian.AppendUint16(nil, uint16(e.mtu)))))
		}
		resp, err := dhcpv4.NewReplyFromRequest(req, append(mods, e.extra...)...)
		if err != nil {
			continue
		}
		ep.Write(resp.ToBytes(), netip.AddrPortFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), dhcpclient.ClientPort), nil)
	}
}

func (e *fakeEnv) start(cfg dhcpclient.Config) *dhcpclient.Client {
	e.t.Helper()
	cfg.Clock = e.clk
	cfg.OnEvent = func(ev dhcpclient.Event) { e.events <- ev }
	c, err := dhcpclient.Start(e.s, e.nic, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// await waits for an event of kind, advancing the clock by step while
// none comes (0: not at all), for at most 2000 rounds.
func (e *fakeEnv) await(kind dhcpclient.EventKind, step time.Duration) dhcpclient.Lease {
	e.t.Helper()
	for range 2000 {
		select {
		case ev := <-e.events:
			if ev.Kind == kind {
				return ev.Lease
			}
		case <-time.After(5 * time.Millisecond):
			e.clk.Advance(step)
		}
	}
	e.t.Fatalf("no %v event", kind)
	return dhcpclient.Lease{}
}

// TestLeaseMTUAppliedAndRestored: option 26 sets the NIC's MTU while the
// lease lasts (clamped to the link's), and the MTU the NIC had comes back
// when the lease expires or is released.
func TestLeaseMTUAppliedAndRestored(t *testing.T) {
	for _, tc := range []struct {
		name      string
		option    int
		want      int
		expire    bool
		beforeMTU int
	}{
		{"576, released", 576, 576, false, 1500},
		{"1400, expired", 1400, 1400, true, 1500},
		{"above the link's", 9000, 1500, false, 1500},
		{"below 68 ignored", 60, 1400, false, 1400},
		{"none", 0, 1400, true, 1400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newFakeEnv(t, tc.option)
			if err := e.nic.SetMTU(tc.beforeMTU); err != nil {
				t.Fatal(err)
			}
			c := e.start(dhcpclient.Config{})
			l := e.await(dhcpclient.EventBound, time.Second)
			if l.Addr != netip.PrefixFrom(fakeLeased, 24) {
				t.Fatalf("lease %v", l.Addr)
			}
			if e.nic.MTU() != tc.want || e.nic.Interface().MTU != tc.want {
				t.Fatalf("MTU %d with option 26 = %d, want %d", e.nic.MTU(), tc.option, tc.want)
			}
			if tc.expire {
				close(e.silent)
				e.await(dhcpclient.EventExpired, time.Minute)
			} else {
				c.Close()
			}
			if e.nic.MTU() != tc.beforeMTU || len(e.nic.Addresses()) != 0 {
				t.Fatalf("after the lease: MTU %d, addresses %v; want %d and none", e.nic.MTU(), e.nic.Addresses(), tc.beforeMTU)
			}
		})
	}
}

// The lease's search domains reach SearchDomains (and so LookupNetIP):
// option 119 when given, else option 15.
func TestSearchDomains(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra []dhcpv4.Modifier
		want  []string
	}{
		{"none", nil, nil},
		{"domain name", []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptDomainName("lan.test"))}, []string{"lan.test"}},
		{"search list first", []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptDomainName("lan.test")),
			dhcpv4.WithOption(dhcpv4.OptDomainSearch(&rfc1035label.Labels{Labels: []string{"a.test", "b.test"}}))}, []string{"a.test", "b.test"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newFakeEnv(t, 0, tc.extra...)
			c := e.start(dhcpclient.Config{})
			if got := c.SearchDomains(); got != nil {
				t.Fatalf("before a lease: %q", got)
			}
			e.await(dhcpclient.EventBound, time.Second)
			got := c.SearchDomains()
			if !slices.Equal(got, tc.want) {
				t.Fatalf("SearchDomains %q, want %q", got, tc.want)
			}
			if len(got) > 0 {
				got[0] = "changed.test"
				if l, _ := c.Lease(); slices.Contains(l.Search, "changed.test") {
					t.Fatal("SearchDomains returned the lease's own slice")
				}
			}
		})
	}
}

// arpFrame is an ARP packet from otherMAC claiming addr (a request whose
// sender and target are addr: a gratuitous ARP).
func arpFrame(addr netip.Addr) []byte {
	f := make([]byte, ethernet.HeaderLen+28)
	ethernet.PutHeader(f, ethernet.Broadcast, otherMAC, ethernet.TypeARP)
	p := f[ethernet.HeaderLen:]
	binary.BigEndian.PutUint16(p[0:], 1)
	binary.BigEndian.PutUint16(p[2:], ethernet.TypeIPv4)
	p[4], p[5] = 6, 4
	binary.BigEndian.PutUint16(p[6:], 1)
	copy(p[8:], otherMAC[:])
	a := addr.As4()
	copy(p[14:], a[:])
	copy(p[24:], a[:])
	return f
}

var fastProbe = stack.ACDConfig{ProbeWait: time.Millisecond, ProbeMin: time.Millisecond, ProbeMax: 2 * time.Millisecond,
	AnnounceWait: time.Millisecond, AnnounceInterval: time.Millisecond, DefendInterval: time.Hour}

// TestDefendedAddressLostDeclines: a leased address that the stack gives
// up to another host (a second conflict within DefendInterval) is
// declined: DECLINE to the server, address gone, and a new DISCOVER only
// after DeclineWait (RFC 2131 §3.1.5).
func TestDefendedAddressLostDeclines(t *testing.T) {
	e := newFakeEnv(t, 0)
	c := e.start(dhcpclient.Config{CheckAddress: true, Probe: fastProbe})
	e.await(dhcpclient.EventBound, 0)
	discovers := c.Stats().Discovers.Load()
	claim := arpFrame(fakeLeased)
	for i := 0; i < 2; i++ {
		if _, err := e.raw.WriteFrames([]link.Frame{{Buf: claim, Len: len(claim)}}); err != nil {
			t.Fatal(err)
		}
	}
	d := e.await(dhcpclient.EventDeclined, 0)
	if d.Addr.Addr() != fakeLeased {
		t.Fatalf("declined %v", d.Addr)
	}
	select {
	case m := <-e.got:
		if m.MessageType() != dhcpv4.MessageTypeDecline || !m.RequestedIPAddress().Equal(fakeLeased.AsSlice()) {
			t.Fatalf("server got %v", m.Summary())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no DECLINE reached the server")
	}
	if len(e.nic.Addresses()) != 0 || c.State() != dhcpclient.StateInit {
		t.Fatalf("after the conflict: addresses %v, state %v", e.nic.Addresses(), c.State())
	}
	e.clk.Advance(9 * time.Second)
	if c.Stats().Discovers.Load() != discovers {
		t.Fatal("DISCOVER within 10 s of the DECLINE")
	}
	e.await(dhcpclient.EventBound, time.Second)
	if c.Stats().Declines.Load() != 1 {
		t.Fatalf("%d DECLINEs, want 1", c.Stats().Declines.Load())
	}
}

// TestCloseDuringAddressCheck: Close while the offered address is being
// probed stops the check, and the address is never assigned.
func TestCloseDuringAddressCheck(t *testing.T) {
	e := newFakeEnv(t, 0)
	slow := fastProbe
	slow.ProbeWait, slow.ProbeMin, slow.ProbeMax, slow.AnnounceWait = 50*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond
	c := e.start(dhcpclient.Config{CheckAddress: true, Probe: slow})
	for i := 0; c.State() != dhcpclient.StateProbing; i++ {
		if i == 2000 {
			t.Fatalf("state %v, never PROBING", c.State())
		}
		time.Sleep(time.Millisecond)
	}
	c.Close()
	// The check would have ended within 250 ms; look past that.
	for range 50 {
		if got := e.nic.Addresses(); len(got) != 0 {
			t.Fatalf("address %v assigned after Close", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
