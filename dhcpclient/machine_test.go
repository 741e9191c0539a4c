package dhcpclient

import (
	"hash/crc32"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

var (
	testMAC    = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	testServer = netip.MustParseAddr("192.0.2.1")
	testAddr   = netip.MustParseAddr("192.0.2.50")
	t0         = time.Unix(1_700_000_000, 0)
)

func newTestMachine() *machine {
	return newMachine(testMAC, Timing{}, rand.New(rand.NewPCG(1, 2)), &Stats{})
}

// reply builds a server's answer to the machine's current transaction,
// with a one-hour lease unless mods change it.
func reply(m *machine, typ dhcpv4.MessageType, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	d := &dhcpv4.DHCPv4{
		OpCode: dhcpv4.OpcodeBootReply, HWType: 1, TransactionID: m.xid,
		ClientIPAddr: net.IPv4zero, YourIPAddr: testAddr.AsSlice(), ServerIPAddr: net.IPv4zero, GatewayIPAddr: net.IPv4zero,
		ClientHWAddr: testMAC, Options: dhcpv4.Options{},
	}
	d.UpdateOption(dhcpv4.OptMessageType(typ))
	if typ != dhcpv4.MessageTypeNak {
		d.UpdateOption(dhcpv4.OptSubnetMask(net.CIDRMask(24, 32)))
		d.UpdateOption(dhcpv4.OptIPAddressLeaseTime(time.Hour))
		d.UpdateOption(dhcpv4.OptRouter(net.IP{192, 0, 2, 1}))
		d.UpdateOption(dhcpv4.OptDNS(net.IP{192, 0, 2, 53}))
	}
	d.UpdateOption(dhcpv4.OptServerIdentifier(testServer.AsSlice()))
	for _, f := range mods {
		f(d)
	}
	return d
}

// sent returns the one message the actions send, failing otherwise.
func sent(t *testing.T, acts []action) action {
	t.Helper()
	var out []action
	for _, a := range acts {
		if a.kind == actSend {
			out = append(out, a)
		}
	}
	if len(out) != 1 {
		t.Fatalf("%d messages sent, want 1 (actions %v)", len(out), acts)
	}
	return out[0]
}

func events(acts []action) []EventKind {
	var k []EventKind
	for _, a := range acts {
		if a.kind == actNotify {
			k = append(k, a.event.Kind)
		}
	}
	return k
}

func expectState(t *testing.T, m *machine, want State) {
	t.Helper()
	if m.state != want {
		t.Fatalf("state %v, want %v", m.state, want)
	}
}

// bindTestMachine runs DISCOVER, OFFER, REQUEST, ACK at t0.
func bindTestMachine(t *testing.T, m *machine) {
	t.Helper()
	d := sent(t, m.start(t0, nil))
	if d.msg.MessageType() != dhcpv4.MessageTypeDiscover || d.dst != broadcast {
		t.Fatalf("first message %v to %v", d.msg.MessageType(), d.dst)
	}
	r := sent(t, m.receive(t0, reply(m, dhcpv4.MessageTypeOffer)))
	if r.msg.MessageType() != dhcpv4.MessageTypeRequest || r.dst != broadcast ||
		!r.msg.RequestedIPAddress().Equal(testAddr.AsSlice()) || !r.msg.ServerIdentifier().Equal(testServer.AsSlice()) {
		t.Fatalf("SELECTING's REQUEST: %v", r.msg.Summary())
	}
	expectState(t, m, StateRequesting)
	acts := m.receive(t0, reply(m, dhcpv4.MessageTypeAck))
	expectState(t, m, StateBound)
	if ev := events(acts); len(ev) != 1 || ev[0] != EventBound {
		t.Fatalf("events %v, want bound", ev)
	}
}

func TestLeaseLifecycle(t *testing.T) {
	m := newTestMachine()
	bindTestMachine(t, m)
	l := m.lease
	if l.Addr != netip.MustParsePrefix("192.0.2.50/24") || l.Server != testServer || len(l.Routers) != 1 || len(l.DNS) != 1 ||
		l.T1 != 30*time.Minute || l.T2 != 52*time.Minute+30*time.Second {
		t.Fatalf("lease %+v", l)
	}
	// T1: a unicast REQUEST with ciaddr to the server.
	if acts := m.timeout(t0.Add(l.T1 - time.Second)); acts != nil {
		t.Fatal("timer fired early")
	}
	r := sent(t, m.timeout(t0.Add(l.T1)))
	expectState(t, m, StateRenewing)
	if r.dst != testServer || !r.msg.ClientIPAddr.Equal(testAddr.AsSlice()) || r.msg.ServerIdentifier() != nil || r.msg.RequestedIPAddress() != nil {
		t.Fatalf("RENEWING's REQUEST to %v: %v", r.dst, r.msg.Summary())
	}
	renewAt := t0.Add(l.T1)
	if ev := events(m.receive(renewAt, reply(m, dhcpv4.MessageTypeAck))); len(ev) != 1 || ev[0] != EventRenewed {
		t.Fatalf("events %v, want renewed", ev)
	}
	if m.lease.Acquired != renewAt {
		t.Fatalf("renewed lease counts from %v, want %v", m.lease.Acquired, renewAt)
	}
	// The next renewal goes unanswered until T2, then REBINDING
	// broadcasts; another server answers.
	now := renewAt.Add(l.T1)
	sent(t, m.timeout(now))
	for i := 0; m.state == StateRenewing; i++ {
		if i > 10 {
			t.Fatal("still RENEWING after 10 retransmissions")
		}
		if m.deadline.Sub(now) < m.t.MinRenewRetry && m.deadline != renewAt.Add(l.T2) {
			t.Fatalf("RENEWING retransmits after %v", m.deadline.Sub(now))
		}
		now = m.deadline
		r = sent(t, m.timeout(now))
	}
	expectState(t, m, StateRebinding)
	if now != renewAt.Add(l.T2) || r.dst != broadcast || !r.msg.ClientIPAddr.Equal(testAddr.AsSlice()) {
		t.Fatalf("REBINDING at %v to %v", now.Sub(renewAt), r.dst)
	}
	other := netip.MustParseAddr("192.0.2.2")
	if ev := events(m.receive(now, reply(m, dhcpv4.MessageTypeAck, dhcpv4.WithOption(dhcpv4.OptServerIdentifier(other.AsSlice()))))); len(ev) != 1 || ev[0] != EventRebound {
		t.Fatalf("events %v, want rebound", ev)
	}
	if m.lease.Server != other {
		t.Fatalf("rebound lease from %v, want %v", m.lease.Server, other)
	}
	// Nobody answers any more: the lease expires, the address goes and
	// a DISCOVER starts over.
	start := now
	var acts []action
	for i := 0; m.state != StateSelecting; i++ {
		if i > 30 {
			t.Fatalf("not expired after 30 timeouts (state %v)", m.state)
		}
		now = m.deadline
		acts = m.timeout(now)
	}
	if now != start.Add(l.Duration) {
		t.Fatalf("expired %v after the rebind, want %v", now.Sub(start), l.Duration)
	}
	if ev := events(acts); len(ev) != 1 || ev[0] != EventExpired || acts[0].kind != actRemove || m.bound {
		t.Fatalf("expiry actions %v", acts)
	}
	if m.stats.Renewed.Load() != 1 || m.stats.Rebound.Load() != 1 || m.stats.Expired.Load() != 1 {
		t.Fatalf("stats renewed %d rebound %d expired %d", m.stats.Renewed.Load(), m.stats.Rebound.Load(), m.stats.Expired.Load())
	}
}

// TestRetransmitBackoff checks §4.1: 4 s doubling to 64 s, ±1 s of jitter.
func TestRetransmitBackoff(t *testing.T) {
	m := newTestMachine()
	m.start(t0, nil)
	now := t0
	for i, base := range []time.Duration{4, 8, 16, 32, 64, 64, 64} {
		base *= time.Second
		d := m.deadline.Sub(now)
		if d < base-time.Second || d > base+time.Second {
			t.Fatalf("retransmission %d after %v, want %v ± 1 s", i, d, base)
		}
		now = m.deadline
		if sent(t, m.timeout(now)).msg.MessageType() != dhcpv4.MessageTypeDiscover {
			t.Fatal("not a DISCOVER")
		}
	}
	// REQUESTING gives up after four REQUESTs.
	sent(t, m.receive(now, reply(m, dhcpv4.MessageTypeOffer)))
	for i := 1; i < 4; i++ {
		now = m.deadline
		sent(t, m.timeout(now))
		expectState(t, m, StateRequesting)
	}
	now = m.deadline
	if sent(t, m.timeout(now)).msg.MessageType() != dhcpv4.MessageTypeDiscover {
		t.Fatal("REQUESTING did not start over")
	}
	expectState(t, m, StateSelecting)
}

func TestNAK(t *testing.T) {
	m := newTestMachine()
	bindTestMachine(t, m)
	sent(t, m.timeout(t0.Add(m.lease.T1)))
	acts := m.receive(t0.Add(m.lease.T1), reply(m, dhcpv4.MessageTypeNak))
	if ev := events(acts); len(ev) != 1 || ev[0] != EventLost || acts[0].kind != actRemove {
		t.Fatalf("NAK while RENEWING: %v", acts)
	}
	expectState(t, m, StateSelecting)
	if m.stats.Naks.Load() != 1 {
		t.Fatal("NAK not counted")
	}
}

func TestInitReboot(t *testing.T) {
	m := newTestMachine()
	old := Lease{Addr: netip.MustParsePrefix("192.0.2.50/24"), Server: testServer, Acquired: t0.Add(-time.Minute), Duration: time.Hour}
	r := sent(t, m.start(t0, &old))
	expectState(t, m, StateInitReboot)
	if r.dst != broadcast || !r.msg.RequestedIPAddress().Equal(testAddr.AsSlice()) || r.msg.ServerIdentifier() != nil ||
		!r.msg.ClientIPAddr.Equal(net.IPv4zero) {
		t.Fatalf("INIT-REBOOT's REQUEST: %v", r.msg.Summary())
	}
	if ev := events(m.receive(t0, reply(m, dhcpv4.MessageTypeAck))); len(ev) != 1 || ev[0] != EventBound {
		t.Fatalf("events %v", ev)
	}
	// Unanswered twice, INIT-REBOOT starts over; an expired lease is not
	// asked for at all.
	m = newTestMachine()
	sent(t, m.start(t0, &old))
	sent(t, m.timeout(m.deadline))
	if sent(t, m.timeout(m.deadline)).msg.MessageType() != dhcpv4.MessageTypeDiscover {
		t.Fatal("INIT-REBOOT did not fall back to DISCOVER")
	}
	m = newTestMachine()
	if sent(t, m.start(t0.Add(2*time.Hour), &old)).msg.MessageType() != dhcpv4.MessageTypeDiscover {
		t.Fatal("expired lease asked for")
	}
}

func TestDeclineOnConflict(t *testing.T) {
	m := newTestMachine()
	m.probe = true
	sent(t, m.start(t0, nil))
	sent(t, m.receive(t0, reply(m, dhcpv4.MessageTypeOffer)))
	acts := m.receive(t0, reply(m, dhcpv4.MessageTypeAck))
	if len(acts) != 1 || acts[0].kind != actProbe || acts[0].lease.Addr.Addr() != testAddr {
		t.Fatalf("ACK with CheckAddress: %v", acts)
	}
	expectState(t, m, StateProbing)
	acts = m.probed(t0, true)
	d := sent(t, acts)
	if d.msg.MessageType() != dhcpv4.MessageTypeDecline || !d.msg.RequestedIPAddress().Equal(testAddr.AsSlice()) ||
		!d.msg.ServerIdentifier().Equal(testServer.AsSlice()) {
		t.Fatalf("DECLINE: %v", d.msg.Summary())
	}
	if m.timeout(t0.Add(9*time.Second)) != nil {
		t.Fatal("DISCOVER within 10 s of a DECLINE")
	}
	if sent(t, m.timeout(t0.Add(10*time.Second))).msg.MessageType() != dhcpv4.MessageTypeDiscover {
		t.Fatal("no DISCOVER after the DECLINE's wait")
	}
}

func TestRelease(t *testing.T) {
	m := newTestMachine()
	bindTestMachine(t, m)
	acts := m.release(t0.Add(time.Minute))
	r := sent(t, acts)
	if r.msg.MessageType() != dhcpv4.MessageTypeRelease || r.dst != testServer || !r.msg.ClientIPAddr.Equal(testAddr.AsSlice()) {
		t.Fatalf("RELEASE: %v", r.msg.Summary())
	}
	if ev := events(acts); len(ev) != 1 || ev[0] != EventReleased {
		t.Fatalf("events %v", ev)
	}
	expectState(t, m, StateStopped)
}

// TestHostileReplies: replies a broken or hostile server could send are
// ignored in SELECTING, each counted under its reason.
func TestHostileReplies(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mod   dhcpv4.Modifier
		count func(*Stats) uint64
	}{
		{"wrong xid", func(d *dhcpv4.DHCPv4) { d.TransactionID[0]++ }, func(s *Stats) uint64 { return s.WrongXID.Load() }},
		{"another client", func(d *dhcpv4.DHCPv4) { d.ClientHWAddr = net.HardwareAddr{2, 0, 0, 0, 0, 9} }, func(s *Stats) uint64 { return s.NotForUs.Load() }},
		{"a request", func(d *dhcpv4.DHCPv4) { d.OpCode = dhcpv4.OpcodeBootRequest }, func(s *Stats) uint64 { return s.NotForUs.Load() }},
		{"no message type", dhcpv4.WithoutOption(dhcpv4.OptionDHCPMessageType), func(s *Stats) uint64 { return s.Malformed.Load() }},
		{"prefix /0", dhcpv4.WithNetmask(net.CIDRMask(0, 32)), func(s *Stats) uint64 { return s.BadMask.Load() }},
		{"prefix /32", dhcpv4.WithNetmask(net.CIDRMask(32, 32)), func(s *Stats) uint64 { return s.BadMask.Load() }},
		{"no mask", dhcpv4.WithoutOption(dhcpv4.OptionSubnetMask), func(s *Stats) uint64 { return s.BadMask.Load() }},
		{"mask with holes", dhcpv4.WithGeneric(dhcpv4.OptionSubnetMask, []byte{255, 0, 255, 0}), func(s *Stats) uint64 { return s.BadMask.Load() }},
		{"router off subnet", dhcpv4.WithRouter(net.IP{198, 51, 100, 1}), func(s *Stats) uint64 { return s.BadRouter.Load() }},
		{"route via off-subnet gateway", dhcpv4.WithGeneric(dhcpv4.OptionClasslessStaticRoute, []byte{0, 198, 51, 100, 1}), func(s *Stats) uint64 { return s.BadRouter.Load() }},
		{"truncated routes", dhcpv4.WithGeneric(dhcpv4.OptionClasslessStaticRoute, []byte{24, 10}), func(s *Stats) uint64 { return s.BadRouter.Load() }},
		{"no server id", dhcpv4.WithoutOption(dhcpv4.OptionServerIdentifier), func(s *Stats) uint64 { return s.BadServer.Load() }},
		{"no lease time", dhcpv4.WithoutOption(dhcpv4.OptionIPAddressLeaseTime), func(s *Stats) uint64 { return s.BadLease.Load() }},
		{"zero address", dhcpv4.WithYourIP(net.IPv4zero), func(s *Stats) uint64 { return s.BadAddress.Load() }},
		{"multicast address", dhcpv4.WithYourIP(net.IP{239, 1, 2, 3}), func(s *Stats) uint64 { return s.BadAddress.Load() }},
		{"loopback address", dhcpv4.WithYourIP(net.IP{127, 0, 0, 1}), func(s *Stats) uint64 { return s.BadAddress.Load() }},
		{"subnet broadcast", dhcpv4.WithYourIP(net.IP{192, 0, 2, 255}), func(s *Stats) uint64 { return s.BadAddress.Load() }},
		{"an ACK in SELECTING", dhcpv4.WithMessageType(dhcpv4.MessageTypeAck), func(s *Stats) uint64 { return s.Unexpected.Load() }},
	} {
		m := newTestMachine()
		m.start(t0, nil)
		if acts := m.receive(t0, reply(m, dhcpv4.MessageTypeOffer, tc.mod)); len(acts) != 0 || m.state != StateSelecting {
			t.Errorf("%s: taken (state %v, actions %v)", tc.name, m.state, acts)
		}
		if tc.count(m.stats) != 1 || m.stats.Ignored() != 1 {
			t.Errorf("%s: counted %d (ignored %d), want 1", tc.name, tc.count(m.stats), m.stats.Ignored())
		}
	}
}

// FuzzDHCPReply feeds arbitrary bytes to the client as a server's reply in
// each state that waits for one, through the client's own decoding
// (decodeReply) and then the machine: nothing panics, what does not decode
// or is not ours is counted and changes nothing, and whatever is accepted
// is a lease the stack can use. Three inputs in four get the transaction ID
// and hardware address of the machine's request written over theirs, so
// that they reach the option checks; the rest keep their own, so that the
// wrong-transaction path is fuzzed too. Which is a function of the input.
func FuzzDHCPReply(f *testing.F) {
	m := newTestMachine()
	m.start(t0, nil)
	f.Add(reply(m, dhcpv4.MessageTypeOffer).ToBytes())
	f.Add(reply(m, dhcpv4.MessageTypeAck).ToBytes())
	f.Add(reply(m, dhcpv4.MessageTypeNak).ToBytes())
	f.Add(reply(m, dhcpv4.MessageTypeOffer, dhcpv4.WithGeneric(dhcpv4.OptionClasslessStaticRoute, []byte{24, 198, 51, 100, 192, 0, 2, 1, 0, 192, 0, 2, 1})).ToBytes())
	f.Add(reply(m, dhcpv4.MessageTypeOffer, dhcpv4.WithNetmask(net.CIDRMask(0, 32))).ToBytes())
	for i := range byte(64) { // an offer to another transaction that keeps its ID
		b := reply(m, dhcpv4.MessageTypeOffer, dhcpv4.WithTransactionID(dhcpv4.TransactionID{1, 2, 3, i})).ToBytes()
		if keepsOwnTransaction(b) {
			f.Add(b)
			break
		}
	}
	f.Add([]byte{2, 1, 6})
	f.Fuzz(func(t *testing.T, b []byte) {
		keepOwn := keepsOwnTransaction(b)
		for _, st := range []State{StateSelecting, StateRequesting, StateRenewing} {
			m := machineIn(st)
			in := b
			if !keepOwn {
				in = withTransaction(b, m.xid, testMAC)
			}
			before, xid := m.state, m.xid // receive may start a new transaction
			msg := decodeReply(in, m.stats)
			if msg == nil {
				if m.stats.Malformed.Load() != 1 || m.stats.Ignored() != 1 {
					t.Fatalf("undecodable reply counted %d malformed, %d ignored; want 1 and 1", m.stats.Malformed.Load(), m.stats.Ignored())
				}
				continue
			}
			acts := m.receive(t0, msg)
			if msg.TransactionID != xid || !sameMAC(msg.ClientHWAddr, m.mac) {
				if len(acts) != 0 || m.state != before || m.stats.Ignored() != 1 || m.stats.WrongXID.Load()+m.stats.NotForUs.Load() != 1 {
					t.Fatalf("state %v: a reply to another transaction or host was taken: actions %v, state %v, ignored %d",
						st, acts, m.state, m.stats.Ignored())
				}
				continue
			}
			checkUsable(t, st, m.offer)
			checkUsable(t, st, m.lease)
		}
	})
}

// keepsOwnTransaction picks the quarter of FuzzDHCPReply's inputs that
// keep their transaction ID and hardware address.
func keepsOwnTransaction(b []byte) bool { return crc32.ChecksumIEEE(b)%4 == 0 }

// machineIn returns a test machine in st (SELECTING, REQUESTING or
// RENEWING) with nothing counted as ignored.
func machineIn(st State) *machine {
	m := newTestMachine()
	m.start(t0, nil)
	if st != StateSelecting {
		m.receive(t0, reply(m, dhcpv4.MessageTypeOffer))
	}
	if st == StateRenewing {
		m.receive(t0, reply(m, dhcpv4.MessageTypeAck))
		m.timeout(t0.Add(m.lease.T1))
	}
	return m
}

// withTransaction returns a copy of the raw message b with xid and mac
// written at their offsets in the fixed header (RFC 2131 §2), when b is
// long enough to hold them.
func withTransaction(b []byte, xid dhcpv4.TransactionID, mac net.HardwareAddr) []byte {
	const xidOff, chaddrOff = 4, 28
	if len(b) < chaddrOff+len(mac) {
		return b
	}
	out := append([]byte(nil), b...)
	copy(out[xidOff:], xid[:])
	copy(out[chaddrOff:], mac)
	return out
}

// checkUsable fails t unless l is no lease or one the stack can use.
func checkUsable(t *testing.T, st State, l Lease) {
	t.Helper()
	if !l.Addr.IsValid() {
		return
	}
	if b := l.Addr.Bits(); b < 1 || b > 31 || !l.Server.IsValid() || l.Duration <= 0 || l.T1 > l.T2 || l.T2 > l.Duration {
		t.Fatalf("state %v accepted lease %+v", st, l)
	}
	for _, r := range l.Routers {
		if !l.Addr.Contains(r) {
			t.Fatalf("router %v off %v", r, l.Addr)
		}
	}
}
