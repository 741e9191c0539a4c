package dhcpclient

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// State is a state of RFC 2131's client state diagram (§4.4), with Probing
// for the address check between ACK and use (RFC 5227).
type State int

// The client's states.
const (
	StateInit State = iota
	StateSelecting
	StateRequesting
	StateInitReboot
	StateProbing
	StateBound
	StateRenewing
	StateRebinding
	StateStopped
)

var stateNames = [...]string{"INIT", "SELECTING", "REQUESTING", "INIT-REBOOT", "PROBING", "BOUND", "RENEWING", "REBINDING", "STOPPED"}

func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return "State(?)"
	}
	return stateNames[s]
}

// Timing holds the protocol's timers; the zero value gives RFC 2131's.
type Timing struct {
	// FirstRetransmit is the wait after a first DISCOVER or REQUEST,
	// doubled on each retransmission up to MaxRetransmit, each with up to
	// a second of jitter either way (§4.1: 4 s and 64 s).
	FirstRetransmit, MaxRetransmit time.Duration
	// RequestTries is how many REQUESTs (SELECTING's, or INIT-REBOOT's)
	// go unanswered before starting over with a DISCOVER (4 and 2).
	RequestTries, RebootTries int
	// MinRenewRetry is the shortest wait between retransmissions while
	// RENEWING or REBINDING (§4.4.5: 60 s).
	MinRenewRetry time.Duration
	// DeclineWait is the wait after a DECLINE before a new DISCOVER
	// (§3.1: at least 10 s).
	DeclineWait time.Duration
}

func (t Timing) withDefaults() Timing {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.FirstRetransmit, 4*time.Second)
	def(&t.MaxRetransmit, 64*time.Second)
	def(&t.MinRenewRetry, 60*time.Second)
	def(&t.DeclineWait, 10*time.Second)
	if t.RequestTries <= 0 {
		t.RequestTries = 4
	}
	if t.RebootTries <= 0 {
		t.RebootTries = 2
	}
	return t
}

// actionKind is what the machine asks its driver to do.
type actionKind int

const (
	actSend   actionKind = iota // send msg to dst
	actProbe                    // check lease.Addr is free, then call probed
	actApply                    // configure the stack with lease
	actRemove                   // undo lease's configuration
	actNotify                   // report event
)

type action struct {
	kind  actionKind
	msg   *dhcpv4.DHCPv4
	dst   netip.Addr // the limited broadcast or the server
	lease Lease
	event Event
}

// machine is the client's state machine. It does no I/O and reads no
// clock: the driver passes the time in and carries out the actions, so
// every transition is tested without waiting.
type machine struct {
	t             Timing
	mac           net.HardwareAddr
	hostname      string
	probe         bool // check addresses before use
	broadcastFlag bool // ask for broadcast replies
	rnd           *rand.Rand
	stats         *Stats

	state    State
	xid      dhcpv4.TransactionID
	began    time.Time // of the exchange: the secs field counts from it
	sent     time.Time // first REQUEST of the exchange: the lease counts from it
	tries    int
	wait     time.Duration
	deadline time.Time // zero: none
	offer    Lease     // SELECTING's choice, REQUESTING's subject
	pending  Lease     // ACKed, being probed
	lease    Lease     // applied to the stack
	bound    bool      // lease is applied
}

func newMachine(mac net.HardwareAddr, t Timing, rnd *rand.Rand, st *Stats) *machine {
	return &machine{t: t.withDefaults(), mac: mac, rnd: rnd, stats: st}
}

// start begins with INIT-REBOOT when a remembered lease is still valid,
// else with a DISCOVER.
func (m *machine) start(now time.Time, remembered *Lease) []action {
	if remembered != nil && remembered.Addr.IsValid() && now.Before(remembered.Expiry()) {
		m.offer = *remembered
		m.state = StateInitReboot
		m.newExchange(now)
		m.sent = now
		return []action{m.sendRequest(now)}
	}
	return m.discover(now)
}

// discover enters SELECTING with a new transaction.
func (m *machine) discover(now time.Time) []action {
	m.state = StateSelecting
	m.newExchange(now)
	return []action{m.sendDiscover(now)}
}

func (m *machine) newExchange(now time.Time) {
	m.xid = dhcpv4.TransactionID{}
	for i := range m.xid {
		m.xid[i] = byte(m.rnd.Uint32())
	}
	m.began, m.tries, m.wait = now, 0, m.t.FirstRetransmit
}

// backoff arms the retransmission timer: the current wait with ±1 s of
// jitter, then doubles the wait up to the maximum (§4.1).
func (m *machine) backoff(now time.Time) {
	jitter := time.Duration(m.rnd.Int64N(int64(2*time.Second))) - time.Second
	d := max(m.wait+jitter, m.wait/2)
	m.deadline = now.Add(d)
	m.wait = min(2*m.wait, m.t.MaxRetransmit)
	m.tries++
}

// renewBackoff arms the timer for half the time left until end, but no
// less than MinRenewRetry and never past end (§4.4.5).
func (m *machine) renewBackoff(now, end time.Time) {
	d := max(end.Sub(now)/2, m.t.MinRenewRetry)
	m.deadline = minTime(now.Add(d), end)
	m.tries++
}

// timeout handles the timer firing at now (the driver calls it once now
// is at or past deadline).
func (m *machine) timeout(now time.Time) []action {
	if m.deadline.IsZero() || now.Before(m.deadline) {
		return nil
	}
	m.deadline = time.Time{}
	switch m.state {
	case StateInit: // the wait after a DECLINE is over
		return m.discover(now)
	case StateSelecting:
		return []action{m.sendDiscover(now)}
	case StateRequesting:
		if m.tries >= m.t.RequestTries {
			m.stats.RequestTimeouts.Add(1)
			return m.discover(now)
		}
		return []action{m.sendRequest(now)}
	case StateInitReboot:
		if m.tries >= m.t.RebootTries {
			m.stats.RequestTimeouts.Add(1)
			return m.discover(now)
		}
		return []action{m.sendRequest(now)}
	case StateBound:
		m.state = StateRenewing
		m.newExchange(now)
		m.sent = now
		return []action{m.sendRequest(now)}
	case StateRenewing:
		if !now.Before(m.lease.Acquired.Add(m.lease.T2)) {
			m.state = StateRebinding
			m.newExchange(now)
			m.sent = now
		}
		return []action{m.sendRequest(now)}
	case StateRebinding:
		if !now.Before(m.lease.Expiry()) {
			m.stats.Expired.Add(1)
			acts := m.unbind(EventExpired)
			return append(acts, m.discover(now)...)
		}
		return []action{m.sendRequest(now)}
	}
	return nil
}

// unbind removes the applied lease and reports kind.
func (m *machine) unbind(kind EventKind) []action {
	if !m.bound {
		return nil
	}
	l := m.lease
	m.bound, m.lease = false, Lease{}
	return []action{{kind: actRemove, lease: l}, {kind: actNotify, event: Event{Kind: kind, Lease: l}}}
}

// receive handles a message from a server, received at now.
func (m *machine) receive(now time.Time, msg *dhcpv4.DHCPv4) []action {
	if msg.OpCode != dhcpv4.OpcodeBootReply || msg.HWType != 1 || !sameMAC(msg.ClientHWAddr, m.mac) {
		m.stats.NotForUs.Add(1)
		return nil
	}
	if msg.TransactionID != m.xid || !m.awaitsReply() {
		m.stats.WrongXID.Add(1)
		return nil
	}
	switch msg.MessageType() {
	case dhcpv4.MessageTypeOffer:
		return m.receiveOffer(now, msg)
	case dhcpv4.MessageTypeAck:
		return m.receiveAck(now, msg)
	case dhcpv4.MessageTypeNak:
		return m.receiveNak(now, msg)
	}
	m.stats.Malformed.Add(1)
	return nil
}

func (m *machine) awaitsReply() bool {
	switch m.state {
	case StateSelecting, StateRequesting, StateInitReboot, StateRenewing, StateRebinding:
		return true
	}
	return false
}

func (m *machine) receiveOffer(now time.Time, msg *dhcpv4.DHCPv4) []action {
	if m.state != StateSelecting {
		m.stats.Unexpected.Add(1)
		return nil
	}
	l, err := parseLease(msg, now)
	if err != nil {
		m.stats.countBad(err)
		return nil
	}
	m.stats.Offers.Add(1)
	m.offer = l
	m.state = StateRequesting
	m.tries, m.wait = 0, m.t.FirstRetransmit
	m.sent = now
	return []action{m.sendRequest(now)}
}

func (m *machine) receiveAck(now time.Time, msg *dhcpv4.DHCPv4) []action {
	if m.state == StateSelecting {
		m.stats.Unexpected.Add(1)
		return nil
	}
	l, err := parseLease(msg, m.sent)
	if err != nil {
		m.stats.countBad(err)
		return nil
	}
	if m.state == StateRequesting && (l.Server != m.offer.Server || l.Addr.Addr() != m.offer.Addr.Addr()) {
		m.stats.Unexpected.Add(1) // another server's ACK, or another address
		return nil
	}
	m.stats.Acks.Add(1)
	m.deadline = time.Time{}
	if m.probe && (!m.bound || m.lease.Addr.Addr() != l.Addr.Addr()) {
		m.state, m.pending = StateProbing, l
		return []action{{kind: actProbe, lease: l}}
	}
	return m.bind(l)
}

// bind applies l (replacing any other lease) and waits for T1.
func (m *machine) bind(l Lease) []action {
	kind := EventBound
	switch {
	case m.state == StateRenewing:
		kind = EventRenewed
		m.stats.Renewed.Add(1)
	case m.state == StateRebinding:
		kind = EventRebound
		m.stats.Rebound.Add(1)
	}
	var acts []action
	if m.bound && m.lease.Addr != l.Addr {
		acts = m.unbind(EventLost)
	}
	m.state, m.lease, m.bound = StateBound, l, true
	m.deadline = l.Acquired.Add(l.T1)
	return append(acts, action{kind: actApply, lease: l}, action{kind: actNotify, event: Event{Kind: kind, Lease: l}})
}

func (m *machine) receiveNak(now time.Time, msg *dhcpv4.DHCPv4) []action {
	if m.state == StateSelecting {
		m.stats.Unexpected.Add(1)
		return nil
	}
	srv, _ := unicastAddr(msg.ServerIdentifier())
	if m.state == StateRequesting && srv != m.offer.Server {
		m.stats.Unexpected.Add(1) // a NAK from a server we did not choose
		return nil
	}
	m.stats.Naks.Add(1)
	acts := m.unbind(EventLost)
	if len(acts) == 0 {
		acts = []action{{kind: actNotify, event: Event{Kind: EventNAK}}}
	}
	return append(acts, m.discover(now)...)
}

// probed takes the result of the address check of the ACKed lease.
func (m *machine) probed(now time.Time, conflict bool) []action {
	if m.state != StateProbing {
		return nil
	}
	l := m.pending
	m.pending = Lease{}
	if !conflict {
		return m.bind(l)
	}
	return m.decline(now, l)
}

// conflict takes the news that the stack gave up p, defended against
// another host that kept claiming it (RFC 5227 §2.4). When p is the
// applied lease's address, the lease is declined as if the check had
// failed (RFC 2131 §3.1.5): DECLINE, then INIT after DeclineWait.
func (m *machine) conflict(now time.Time, p netip.Prefix) []action {
	if !m.bound || m.lease.Addr != p {
		return nil // news of a lease already gone
	}
	return m.decline(now, m.lease)
}

// decline refuses l, which another host uses: its configuration goes, a
// DECLINE tells the server, and a new DISCOVER waits DeclineWait.
func (m *machine) decline(now time.Time, l Lease) []action {
	m.stats.Declines.Add(1)
	msg := m.message(dhcpv4.MessageTypeDecline, now)
	msg.UpdateOption(dhcpv4.OptRequestedIPAddress(l.Addr.Addr().AsSlice()))
	msg.UpdateOption(dhcpv4.OptServerIdentifier(l.Server.AsSlice()))
	msg.DeleteOption(dhcpv4.OptionParameterRequestList)
	acts := m.unbind(EventLost)
	acts = append(acts, action{kind: actSend, msg: msg, dst: broadcast},
		action{kind: actNotify, event: Event{Kind: EventDeclined, Lease: l}})
	m.state = StateInit
	m.deadline = now.Add(m.t.DeclineWait)
	return acts
}

// release gives the lease back (RELEASE) and stops.
func (m *machine) release(now time.Time) []action {
	var acts []action
	if m.bound {
		m.stats.Releases.Add(1)
		rel := m.message(dhcpv4.MessageTypeRelease, now)
		rel.ClientIPAddr = m.lease.Addr.Addr().AsSlice()
		rel.UpdateOption(dhcpv4.OptServerIdentifier(m.lease.Server.AsSlice()))
		rel.DeleteOption(dhcpv4.OptionParameterRequestList)
		acts = append(acts, action{kind: actSend, msg: rel, dst: m.lease.Server})
		acts = append(acts, m.unbind(EventReleased)...)
	}
	m.state, m.deadline = StateStopped, time.Time{}
	return acts
}

var broadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

func (m *machine) sendDiscover(now time.Time) action {
	m.stats.Discovers.Add(1)
	m.backoff(now)
	return action{kind: actSend, msg: m.message(dhcpv4.MessageTypeDiscover, now), dst: broadcast}
}

// sendRequest builds the REQUEST of the current state as §4.3.2 lays out:
// SELECTING's names the server and address, INIT-REBOOT's only the
// address, RENEWING's and REBINDING's put the address in ciaddr and go to
// the server or to everyone.
func (m *machine) sendRequest(now time.Time) action {
	m.stats.Requests.Add(1)
	req := m.message(dhcpv4.MessageTypeRequest, now)
	dst := broadcast
	switch m.state {
	case StateRequesting:
		req.UpdateOption(dhcpv4.OptRequestedIPAddress(m.offer.Addr.Addr().AsSlice()))
		req.UpdateOption(dhcpv4.OptServerIdentifier(m.offer.Server.AsSlice()))
		m.backoff(now)
	case StateInitReboot:
		req.UpdateOption(dhcpv4.OptRequestedIPAddress(m.offer.Addr.Addr().AsSlice()))
		m.backoff(now)
	case StateRenewing:
		req.ClientIPAddr = m.lease.Addr.Addr().AsSlice()
		dst = m.lease.Server
		m.renewBackoff(now, m.lease.Acquired.Add(m.lease.T2))
	case StateRebinding:
		req.ClientIPAddr = m.lease.Addr.Addr().AsSlice()
		m.renewBackoff(now, m.lease.Expiry())
	}
	return action{kind: actSend, msg: req, dst: dst}
}

// message builds a client message of the current transaction.
func (m *machine) message(typ dhcpv4.MessageType, now time.Time) *dhcpv4.DHCPv4 {
	secs := now.Sub(m.began) / time.Second
	d := &dhcpv4.DHCPv4{
		OpCode:        dhcpv4.OpcodeBootRequest,
		HWType:        1,
		TransactionID: m.xid,
		NumSeconds:    uint16(min(secs, 0xffff)),
		ClientIPAddr:  net.IPv4zero,
		YourIPAddr:    net.IPv4zero,
		ServerIPAddr:  net.IPv4zero,
		GatewayIPAddr: net.IPv4zero,
		ClientHWAddr:  m.mac,
		Options:       dhcpv4.Options{},
	}
	if m.broadcastFlag && !m.bound {
		d.SetBroadcast()
	}
	d.UpdateOption(dhcpv4.OptMessageType(typ))
	d.UpdateOption(dhcpv4.OptClientIdentifier(append([]byte{1}, m.mac...)))
	d.UpdateOption(dhcpv4.OptParameterRequestList(
		dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer,
		dhcpv4.OptionDomainName, dhcpv4.OptionInterfaceMTU, dhcpv4.OptionDNSDomainSearchList,
		dhcpv4.OptionClasslessStaticRoute))
	if m.hostname != "" && typ != dhcpv4.MessageTypeRelease && typ != dhcpv4.MessageTypeDecline {
		d.UpdateOption(dhcpv4.OptHostName(m.hostname))
	}
	return d
}

func sameMAC(a, b net.HardwareAddr) bool { return string(a) == string(b) }

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
