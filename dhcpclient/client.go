package dhcpclient

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/gonet"
	"github.com/tapnet/tapnet/internal/udpsock"
	"github.com/tapnet/tapnet/stack"
)

// Ports of DHCP (RFC 2131 §4.1).
const (
	ServerPort = 67
	ClientPort = 68
)

// EventKind says what happened to the lease.
type EventKind int

// Lease events.
const (
	EventBound    EventKind = iota // a lease was obtained and applied
	EventRenewed                   // the server extended it (RENEWING)
	EventRebound                   // another server extended it (REBINDING)
	EventExpired                   // it ran out: address and routes removed
	EventLost                      // NAK, or a conflict: address and routes removed
	EventNAK                       // a REQUEST for no applied lease was refused
	EventDeclined                  // the address was in use: DECLINE sent
	EventReleased                  // given back on Close
)

var eventNames = [...]string{"bound", "renewed", "rebound", "expired", "lost", "nak", "declined", "released"}

func (k EventKind) String() string {
	if k < 0 || int(k) >= len(eventNames) {
		return "EventKind(?)"
	}
	return eventNames[k]
}

// Event reports a lease change.
type Event struct {
	Kind  EventKind
	Lease Lease
}

// Clock is the time a client runs on; tests give it a manual or faster one.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Config configures a Client. The zero value asks for a new lease with
// RFC 2131's timers.
type Config struct {
	// Hostname is sent in option 12 when set.
	Hostname string
	// Lease is a remembered lease: while it has not expired, the client
	// starts in INIT-REBOOT and asks for the same address again.
	Lease *Lease
	// BroadcastReplies sets the BROADCAST flag (RFC 2131 §4.1), asking
	// servers to broadcast their replies instead of sending them to the
	// address on offer. The stack takes either; this is for networks or
	// relays that need it.
	BroadcastReplies bool
	// CheckAddress probes an offered address with ARP before using it
	// (RFC 5227) and DECLINEs it when another host answers, or when the
	// stack later gives it up, defended, to another host that keeps
	// claiming it.
	CheckAddress bool
	// Probe tunes that check (RFC 5227's timers when zero).
	Probe stack.ACDConfig
	// OnEvent is called, from the client's goroutine, after each lease
	// change has been applied to the stack.
	OnEvent func(Event)
	// Timing tunes the protocol's timers.
	Timing Timing
	// Clock is the client's time (the real one when nil).
	Clock Clock
	// Logger receives the lease changes (nil: silent).
	Logger *slog.Logger
}

// Client keeps a NIC configured from DHCP: it obtains a lease, applies its
// address, routes and DNS servers to the stack, renews and rebinds it, and
// removes it when it expires. Create it with Start; Close releases the
// lease.
type Client struct {
	s     *stack.Stack
	nic   *stack.NIC
	cfg   Config
	clock Clock
	ep    *udpsock.Endpoint
	stats Stats

	rx        chan *dhcpv4.DHCPv4
	probeDone chan probeResult
	conflicts chan netip.Prefix // defended addresses given up (stack.AddressOptions.OnConflict)
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	// The address check in progress, owned by run: Close cancels it and
	// waits for it, so that it cannot assign the address afterwards.
	probeCancel context.CancelFunc
	probeWG     sync.WaitGroup

	mu     sync.Mutex
	m      *machine // owned by run; state and lease read under mu
	bound  chan struct{}
	routes []stack.RouteEntry // what apply added
	// mtuBefore is the NIC's MTU before a lease's option 26 changed it,
	// put back when no lease sets it any more; 0 while unchanged.
	mtuBefore int
}

// probeResult is how an address check ended.
type probeResult struct {
	p   netip.Prefix
	err error // nil: the address was free and is now assigned
}

// Start binds UDP port 68 on nic and begins acquiring a lease in the
// background. Only one client per NIC can run at a time.
func Start(s *stack.Stack, nic *stack.NIC, cfg Config) (*Client, error) {
	ep := udpsock.New(s)
	ep.SetReuseAddr(true) // one client per NIC, each bound to its own
	if err := ep.BindToNIC(nic.ID()); err != nil {
		ep.Close()
		return nil, err
	}
	if err := ep.Bind(netip.AddrPortFrom(netip.IPv4Unspecified(), ClientPort)); err != nil {
		ep.Close()
		return nil, err
	}
	c := &Client{
		s: s, nic: nic, cfg: cfg, clock: cfg.Clock, ep: ep,
		rx:        make(chan *dhcpv4.DHCPv4, 16),
		probeDone: make(chan probeResult, 1),
		conflicts: make(chan netip.Prefix, 1),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		bound:     make(chan struct{}),
	}
	if c.clock == nil {
		c.clock = realClock{}
	}
	if c.cfg.Logger == nil {
		c.cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c.m = newMachine(nic.MAC().HardwareAddr(), cfg.Timing, rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())), &c.stats)
	c.m.hostname, c.m.probe, c.m.broadcastFlag = cfg.Hostname, cfg.CheckAddress, cfg.BroadcastReplies
	go c.receive()
	go c.run()
	return c, nil
}

// Stats returns the client's counters.
func (c *Client) Stats() *Stats { return &c.stats }

// State returns the client's state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m.state
}

// Lease returns the lease applied to the stack, if any.
func (c *Client) Lease() (Lease, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m.lease, c.m.bound
}

// ErrClosed is returned by Wait once the client is closed.
var ErrClosed = errors.New("dhcpclient: client closed")

// Wait blocks until the first lease is applied, ctx ends or the client is
// closed.
func (c *Client) Wait(ctx context.Context) (Lease, error) {
	select {
	case <-c.bound:
		l, _ := c.Lease()
		return l, nil
	case <-ctx.Done():
		return Lease{}, ctx.Err()
	case <-c.done:
		return Lease{}, ErrClosed
	}
}

// Close releases the lease (RELEASE to the server, address and routes
// removed, the MTU put back) and stops the client. An address check in
// progress is cancelled, and its address removed.
func (c *Client) Close() error {
	c.closeOnce.Do(func() { close(c.stop) })
	<-c.done
	return nil
}

// receive reads the replies of servers and hands them to run.
func (c *Client) receive() {
	buf := make([]byte, 1500)
	for {
		info, err := c.ep.Read(buf, false, nil)
		if errors.Is(err, udpsock.ErrClosed) {
			return
		}
		if err != nil || info.Src.Port() != ServerPort {
			continue
		}
		msg := decodeReply(buf[:info.N], &c.stats)
		if msg == nil {
			continue
		}
		select {
		case c.rx <- msg:
		case <-c.stop:
			return
		}
	}
}

// decodeReply decodes a server's datagram, or counts it as malformed and
// returns nil.
func decodeReply(b []byte, st *Stats) *dhcpv4.DHCPv4 {
	msg, err := dhcpv4.FromBytes(b)
	if err != nil {
		st.Malformed.Add(1)
		return nil
	}
	return msg
}

// run drives the machine: its actions, its timer, the replies and probes.
func (c *Client) run() {
	defer close(c.done)
	defer c.ep.Close()
	c.step(func(now time.Time) []action { return c.m.start(now, c.cfg.Lease) })
	for {
		var timer <-chan time.Time
		if dl := c.m.deadline; !dl.IsZero() {
			timer = c.clock.After(dl.Sub(c.clock.Now()))
		}
		select {
		case msg := <-c.rx:
			c.step(func(now time.Time) []action { return c.m.receive(now, msg) })
		case <-timer:
			c.step(c.m.timeout)
		case r := <-c.probeDone:
			c.probeCancel()
			c.probeCancel = nil
			conflict := errors.Is(r.err, stack.ErrAddressConflict)
			c.step(func(now time.Time) []action { return c.m.probed(now, conflict) })
		case p := <-c.conflicts:
			c.step(func(now time.Time) []action { return c.m.conflict(now, p) })
		case <-c.stop:
			c.abandonProbe()
			c.step(c.m.release)
			return
		}
	}
}

// step runs one transition of the machine (under mu, for State and Lease)
// and carries out its actions in order.
func (c *Client) step(f func(now time.Time) []action) {
	c.mu.Lock()
	acts := f(c.clock.Now())
	c.mu.Unlock()
	for _, a := range acts {
		switch a.kind {
		case actSend:
			c.send(a.msg, a.dst)
		case actProbe:
			c.startProbe(a.lease.Addr)
		case actApply:
			c.apply(a.lease)
		case actRemove:
			c.remove(a.lease)
		case actNotify:
			c.notify(a.event)
		}
	}
}

func (c *Client) send(msg *dhcpv4.DHCPv4, dst netip.Addr) {
	_, err := c.ep.Write(msg.ToBytes(), netip.AddrPortFrom(dst, ServerPort), &udpsock.WriteOptions{NIC: c.nic.ID()})
	if err != nil {
		c.cfg.Logger.Warn("dhcp: send", "type", msg.MessageType(), "to", dst, "err", err)
	}
}

// startProbe checks the address with RFC 5227's probes in the
// background; a free address stays assigned (apply then finds it there)
// and defended: giving it up later reaches run through conflicts.
func (c *Client) startProbe(p netip.Prefix) {
	ctx, cancel := context.WithCancel(context.Background())
	c.probeCancel = cancel
	c.probeWG.Add(1)
	go func() {
		defer c.probeWG.Done()
		err := c.nic.AddAddressContext(ctx, p, stack.AddressOptions{DetectConflicts: true, ACD: c.cfg.Probe,
			OnConflict: c.lostAddress})
		c.probeDone <- probeResult{p, err}
	}()
}

// abandonProbe stops an address check in progress and removes the address
// when it was assigned before the check could be stopped.
func (c *Client) abandonProbe() {
	if c.probeCancel == nil {
		return
	}
	c.probeCancel()
	c.probeWG.Wait()
	select {
	case r := <-c.probeDone:
		if r.err == nil {
			c.nic.RemoveAddress(r.p)
		}
	default:
	}
}

// lostAddress is the stack's OnConflict for a leased address: another host
// kept claiming it, and the stack gave it up.
func (c *Client) lostAddress(p netip.Prefix, _ ethernet.MAC) {
	select {
	case c.conflicts <- p:
	case <-c.done:
	}
}

// apply configures the stack with l: its address and, replacing those of
// the lease it renews, its routes (option 121, else the first router as
// default gateway).
func (c *Client) apply(l Lease) {
	if err := c.nic.AddAddress(l.Addr); err != nil {
		c.cfg.Logger.Warn("dhcp: add address", "addr", l.Addr, "err", err)
	}
	c.applyMTU(l.MTU)
	c.removeRoutes()
	var want []stack.RouteEntry
	for _, r := range l.Routes {
		want = append(want, stack.RouteEntry{Dst: r.Dst, Gateway: r.Gateway, NIC: c.nic.ID()})
	}
	if len(l.Routes) == 0 && len(l.Routers) > 0 {
		want = append(want, stack.RouteEntry{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: l.Routers[0], NIC: c.nic.ID()})
	}
	for _, r := range want {
		if r.Gateway.IsUnspecified() {
			r.Gateway = netip.Addr{} // on-link
		}
		if err := c.s.AddRoute(r); err != nil {
			c.cfg.Logger.Warn("dhcp: add route", "dst", r.Dst, "err", err)
			continue
		}
		c.routes = append(c.routes, r)
	}
}

func (c *Client) removeRoutes() {
	for _, r := range c.routes {
		c.s.RemoveRoute(r)
	}
	c.routes = nil
}

// remove undoes apply.
func (c *Client) remove(l Lease) {
	c.removeRoutes()
	c.nic.RemoveAddress(l.Addr)
	c.restoreMTU()
}

// applyMTU sets the NIC's MTU to a lease's option 26 (0: none), never
// above the link's MTU, as dhclient and dhcpcd do; a lease without it
// puts back the MTU the NIC had before.
func (c *Client) applyMTU(leased int) {
	if leased < 68 { // RFC 2132 §5.1's minimum
		c.restoreMTU()
		return
	}
	if dev := c.nic.Link(); dev != nil {
		leased = min(leased, dev.Info().MTU)
	}
	if leased == c.nic.MTU() {
		return
	}
	before := c.nic.MTU()
	if err := c.nic.SetMTU(leased); err != nil {
		c.cfg.Logger.Warn("dhcp: set MTU", "mtu", leased, "err", err)
		return
	}
	if c.mtuBefore == 0 {
		c.mtuBefore = before
	}
}

// restoreMTU puts back the MTU the NIC had before a lease changed it.
func (c *Client) restoreMTU() {
	if c.mtuBefore == 0 {
		return
	}
	if err := c.nic.SetMTU(c.mtuBefore); err != nil {
		c.cfg.Logger.Warn("dhcp: restore MTU", "mtu", c.mtuBefore, "err", err)
	}
	c.mtuBefore = 0
}

func (c *Client) notify(e Event) {
	c.cfg.Logger.Info("dhcp: "+e.Kind.String(), "nic", c.nic.Name(), "addr", e.Lease.Addr, "server", e.Lease.Server)
	if e.Kind == EventBound {
		select {
		case <-c.bound:
		default:
			close(c.bound)
		}
	}
	if c.cfg.OnEvent != nil {
		c.cfg.OnEvent(e)
	}
}

// Resolver returns a *net.Resolver that asks the DNS servers of the current
// lease over the stack (see gonet.Resolver); without a lease its lookups
// fail.
func (c *Client) Resolver() *net.Resolver {
	return gonet.ResolverFunc(c.s, c.dnsServers)
}

// SearchDomains returns the current lease's domain search list (option
// 119), or its domain name (option 15) when it has no list; nil without a
// lease. Resolver does not apply them (net.Resolver takes the host's
// resolv.conf search list); LookupNetIP does.
func (c *Client) SearchDomains() []string {
	l, ok := c.Lease()
	switch {
	case !ok:
		return nil
	case len(l.Search) > 0:
		return append([]string(nil), l.Search...)
	case l.Domain != "":
		return []string{l.Domain}
	}
	return nil
}

// LookupNetIP looks host up through the lease's DNS servers, trying a
// relative name with the lease's search domains as a host's stub resolver
// would (see gonet.LookupNetIPSearch): "printer" finds
// printer.example.com when the lease's domain is example.com.
func (c *Client) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return gonet.LookupNetIPSearch(ctx, c.Resolver(), network, host, c.SearchDomains())
}

func (c *Client) dnsServers() []netip.AddrPort {
	l, ok := c.Lease()
	if !ok {
		return nil
	}
	out := make([]netip.AddrPort, len(l.DNS))
	for i, a := range l.DNS {
		out[i] = netip.AddrPortFrom(a, 53)
	}
	return out
}
