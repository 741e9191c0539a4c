// Package udpsock is the UDP socket behind every gonet conn: states,
// binding and connecting through the stack's demultiplexer, a receive queue
// bounded in bytes, blocking reads with cancellation, ICMP errors turned
// into socket errors, multicast memberships with source filters, and sends
// handed to the stack in the caller's goroutine.
//
// It is internal because gonet is its only user: gonet wraps an Endpoint in
// net.PacketConn and net.Conn. The UDP wire format lives in package udp.
package udpsock

import (
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/udp"
)

// State is an endpoint's life-cycle state.
type State uint8

const (
	StateInitial   State = iota // created, no port yet
	StateBound                  // has a local port
	StateConnected              // has a remote address: sends go there, others are filtered out
	StateClosed                 // closed: reads, writes and binds fail with ErrClosed
)

// Receive-buffer accounting charges each queued datagram what Linux
// charges as its skb truesize (stack.Payload.Truesize), so that the same SO_RCVBUF
// holds about as many datagrams as on the kernel.
const (
	DefaultReceiveBuffer = 212992 // Linux's net.core.rmem_default
	DefaultSendBuffer    = 212992
	minReceiveBuffer     = 2304     // Linux's SOCK_MIN_RCVBUF
	maxBuffer            = 64 << 20 // a userspace stack has no rmem_max; this bounds memory
)

// Errors an endpoint returns besides errno values; gonet maps them to the
// errors package net uses.
var (
	ErrClosed  = errors.New("use of closed endpoint")
	ErrTimeout = errors.New("i/o timeout")
)

type rcvItem struct {
	payload  stack.Payload
	cost     int // receive-buffer charge: the payload's truesize
	src      netip.AddrPort
	dst      netip.Addr
	ttl, tos uint8
	nic      stack.NICID
}

// Endpoint is a UDP socket's protocol state. Its methods are safe for
// concurrent use. It is made by New, or embedded in a larger struct (so
// that a socket costs one allocation) and set up there by Init; it must not
// be copied.
//
// Lock order: mu, then rcvMu (Shutdown takes both). The memberships' lock
// is never held with either; while holding it the endpoint calls into the NIC,
// which takes its own membership lock.
type Endpoint struct {
	s  *stack.Stack
	v6 bool // AF_INET6; fixed at creation

	v6only bool // IPV6_V6ONLY, guarded by mu

	// mu guards the binding and the socket's options: state, id,
	// bindAddr, bindPort, reuse, bindNIC, route, wrShut, opts and
	// sndBuffer. Sends hold it (read) only to copy what they need.
	mu        sync.RWMutex
	state     State
	id        stack.TransportID
	bindAddr  bool // local address chosen by Bind (kept on disconnect)
	bindPort  bool // local port chosen by Bind
	reuse     bool
	bindNIC   stack.NICID
	route     stack.Route // cached while connected
	wrShut    bool
	opts      Options
	sndBuffer int

	// rcvMu guards the receive queue: rcvQ, rcvHead, rcvLen, rcvUsed,
	// rcvLimit, rcvShut, rcvDead and rcvReady. The link's reader takes it to queue.
	rcvMu    sync.Mutex
	rcvQ     []rcvItem // ring buffer
	rcvHead  int
	rcvLen   int
	rcvUsed  int // bytes charged (truesize) of the queued datagrams
	rcvLimit int
	rcvShut  bool
	rcvDead  bool
	// rcvReady holds a token while data, an error or the close may be
	// waiting. Close leaves one too, and each reader that finds the
	// endpoint closed passes it on, so one channel wakes every reader.
	// It is made by the first reader that has to wait: a socket that
	// never blocks in a read never needs it.
	rcvReady chan struct{}

	softErr atomic.Uint32 // pending errno for a connected socket
	drops   atomic.Uint64 // datagrams dropped on a full receive buffer (Linux's sk_drops)

	// mcast is made by the first multicast operation: most sockets never
	// join a group, and a nil set means no memberships.
	mcast atomic.Pointer[memberships]
}

// PMTUDiscovery is a socket's IP_MTU_DISCOVER mode for IPv4.
type PMTUDiscovery uint8

const (
	// PMTUDiscoveryWant is Linux's default for UDP: DF on every datagram
	// that fits the path MTU, larger ones fragmented locally without DF.
	PMTUDiscoveryWant PMTUDiscovery = iota
	// PMTUDiscoveryDont (IP_PMTUDISC_DONT) never sets DF.
	PMTUDiscoveryDont
	// PMTUDiscoveryDo (IP_PMTUDISC_DO) sets DF on every datagram, and sends
	// larger than the path MTU fail with EMSGSIZE.
	PMTUDiscoveryDo
)

// Options are per-socket IP options.
type Options struct {
	TTL            uint8 // unicast TTL; 0 means 64
	TOS            uint8
	MulticastTTL   uint8 // default 1
	MulticastLoop  bool  // default true
	MulticastNIC   stack.NICID
	PMTUDiscovery  PMTUDiscovery // IP_MTU_DISCOVER; the zero value is WANT
	MulticastAll   bool          // IP_MULTICAST_ALL, default true
	ReceiveTTL     bool          // kept for control messages
	ReceiveDstAddr bool

	// IPv6 options of an AF_INET6 endpoint, kept apart from the IPv4
	// ones as Linux keeps them: IPv4 datagrams of a dual-stack socket
	// use the IPv4 options, IPv6 datagrams these.
	HopLimit           uint8 // IPV6_UNICAST_HOPS; 0 means 64
	TrafficClass       uint8 // IPV6_TCLASS
	MulticastHopLimit  uint8 // IPV6_MULTICAST_HOPS, default 1
	MulticastLoop6     bool  // IPV6_MULTICAST_LOOP, default true
	MulticastNIC6      stack.NICID
	ReceiveHopLimit    bool // IPV6_RECVHOPLIMIT
	ReceivePacketInfo6 bool // IPV6_RECVPKTINFO
	ReceiveTClass      bool // IPV6_RECVTCLASS
}

// multicastNIC is the NIC multicast to dst leaves by without a binding
// (IP_MULTICAST_IF or IPV6_MULTICAST_IF).
func (o *Options) multicastNIC(dst netip.Addr) stack.NICID {
	if dst.Is6() {
		return o.MulticastNIC6
	}
	return o.MulticastNIC
}

// New returns an endpoint on s in the initial state.
func New(s *stack.Stack) *Endpoint {
	e := new(Endpoint)
	e.Init(s)
	return e
}

// Init sets up a zero Endpoint on s in the initial state, for an Endpoint
// embedded in another struct. It must be called once, before any other
// method.
func (e *Endpoint) Init(s *stack.Stack) {
	e.s = s
	e.rcvLimit = DefaultReceiveBuffer
	e.sndBuffer = DefaultSendBuffer
	e.opts = Options{MulticastTTL: 1, MulticastLoop: true, MulticastAll: true, MulticastHopLimit: 1, MulticastLoop6: true}
}

// Stack returns the endpoint's stack.
func (e *Endpoint) Stack() *stack.Stack { return e.s }

// State returns the current state.
func (e *Endpoint) State() State {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.state
}

// SetReuseAddr allows the port to be shared with other endpoints that set
// it (SO_REUSEADDR); it must be called before Bind.
func (e *Endpoint) SetReuseAddr(v bool) {
	e.mu.Lock()
	e.reuse = v
	e.mu.Unlock()
}

// BindToNIC restricts the endpoint to one NIC (SO_BINDTODEVICE): it
// receives only what arrives there and sends through it unless a write
// names another. It must be called before Bind; 0 undoes it.
func (e *Endpoint) BindToNIC(id stack.NICID) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state != StateInitial {
		return syscall.EINVAL
	}
	e.bindNIC = id
	return nil
}

// Bind assigns the local address; port 0 picks an ephemeral port. The
// address must be unspecified, one of the stack's addresses, a broadcast
// address or a multicast group. Binding twice is EINVAL, as on Linux.
//
// On an AF_INET6 endpoint, :: binds both families unless IPV6_V6ONLY; an
// IPv4-mapped address binds IPv4 (EINVAL with IPV6_V6ONLY); a specific
// IPv6 address sets IPV6_V6ONLY, and a link-local one needs a NIC, from
// its zone or BindToNIC (EINVAL without), as Linux's inet6_bind.
func (e *Endpoint) Bind(addr netip.AddrPort) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch e.state {
	case StateClosed:
		return ErrClosed
	case StateInitial:
	default:
		return syscall.EINVAL
	}
	a, nic, v6only, err := e.bindAddrLocked(addr.Addr())
	if err != nil {
		return err
	}
	id := stack.TransportID{LocalAddr: a, LocalPort: addr.Port()}
	got, err := e.s.RegisterEndpoint(udp.ProtocolNumber, id, e, e.reuse, nic)
	if err != nil {
		return err
	}
	e.id = got
	e.bindAddr = isSpecific(a)
	e.bindPort = addr.Port() != 0
	e.bindNIC, e.v6only = nic, v6only
	e.state = StateBound
	return nil
}

// bindAddrLocked checks a bind address and returns its demux address, the
// NIC the binding is restricted to and the IPV6_V6ONLY it leaves.
func (e *Endpoint) bindAddrLocked(a netip.Addr) (netip.Addr, stack.NICID, bool, error) {
	nic, v6only := e.bindNIC, e.v6only
	if !a.IsValid() || a.IsUnspecified() && (a.Is4() == !e.v6) {
		return e.wildcardLocked(), nic, v6only, nil
	}
	zone, err := e.zoneNIC(a)
	if err != nil {
		return a, nic, v6only, err
	}
	w, err := e.wireAddr(a, v6only)
	if err == syscall.ENETUNREACH {
		err = syscall.EINVAL // a mapped address on a v6-only socket
	}
	if err != nil {
		return a, nic, v6only, err
	}
	if w.Is6() && !w.IsUnspecified() {
		v6only = true
		if needsScope(w) {
			if nic, err = scopeNIC(zone, nic, true); err != nil {
				return a, nic, v6only, err
			}
		}
	}
	return w, nic, v6only, nil
}

// bindEphemeralLocked binds an unbound endpoint to an ephemeral port on any
// address (the kernel's autobind on first send or connect). Like Linux's
// inet_autobind, it reports a full port range as EAGAIN, where an explicit
// bind reports EADDRINUSE.
func (e *Endpoint) bindEphemeralLocked() error {
	got, err := e.s.RegisterEndpoint(udp.ProtocolNumber, stack.TransportID{LocalAddr: e.wildcardLocked()}, e, e.reuse, e.bindNIC)
	if err == syscall.EADDRINUSE {
		return syscall.EAGAIN
	}
	if err != nil {
		return err
	}
	e.id = got
	e.state = StateBound
	return nil
}

// Connect sets the remote address: sends without an address go there and
// datagrams from anyone else are dropped. An invalid address disconnects,
// like connect with AF_UNSPEC.
func (e *Endpoint) Connect(raddr netip.AddrPort) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state == StateClosed {
		return ErrClosed
	}
	if !raddr.Addr().IsValid() {
		e.disconnectLocked()
		return nil
	}
	ra, nic, err := e.peerLocked(raddr.Addr(), e.bindNIC, true)
	if err != nil {
		return err
	}
	if raddr.Port() == 0 {
		return syscall.ECONNREFUSED // Linux's connect() to port 0 works, but no datagram can be sent; refuse early
	}
	if m := e.opts.multicastNIC(ra); ra.IsMulticast() && m != 0 {
		nic = m
	}
	local := e.id.LocalAddr
	if !isSpecific(local) {
		local = netip.Addr{}
	}
	r, err := e.s.FindRoute(nic, local, ra)
	if err != nil {
		return err
	}
	if e.state == StateInitial {
		if err := e.bindEphemeralLocked(); err != nil {
			return err
		}
	}
	old := e.id
	id := old
	if !isSpecific(id.LocalAddr) {
		id.LocalAddr = r.LocalAddr
	}
	id.RemoteAddr, id.RemotePort = ra, raddr.Port()
	e.s.RebindEndpoint(udp.ProtocolNumber, old, id, e)
	e.id = id
	e.route = r
	if needsScope(ra) {
		// Linux's connect binds the socket to the peer's link for good
		// (sk_bound_dev_if), which getsockname shows as the zone.
		e.bindNIC = nic
	}
	e.state = StateConnected
	e.softErr.Store(0)
	return nil
}

func (e *Endpoint) disconnectLocked() {
	if e.state != StateConnected {
		return
	}
	old := e.id
	id := old
	id.RemoteAddr, id.RemotePort = netip.Addr{}, 0
	if !e.bindAddr {
		id.LocalAddr = e.wildcardLocked()
	}
	e.s.RebindEndpoint(udp.ProtocolNumber, old, id, e)
	e.id = id
	e.route = stack.Route{}
	e.state = StateBound
}

// LocalAddr returns the bound address (unspecified before a bind or
// connect narrows it) and port (0 before binding), as getsockname shows
// it for the endpoint's family.
func (e *Endpoint) LocalAddr() netip.AddrPort {
	e.mu.RLock()
	defer e.mu.RUnlock()
	a := e.id.LocalAddr
	switch {
	case !a.IsValid() || a.IsUnspecified() && a.Is6():
		a = netip.IPv4Unspecified()
		if e.v6 {
			a = netip.IPv6Unspecified()
		}
	default:
		a = e.userAddr(a, e.bindNIC)
	}
	return netip.AddrPortFrom(a, e.id.LocalPort)
}

// RemoteAddr returns the connected peer, and false when not connected.
func (e *Endpoint) RemoteAddr() (netip.AddrPort, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.state != StateConnected {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(e.userAddr(e.id.RemoteAddr, e.route.NIC.ID()), e.id.RemotePort), true
}

// peerLocked checks a peer or destination address for the socket's family
// and returns it as on the wire with the NIC its zone or the socket's
// binding picks: a link-scoped peer needs one when required (connect).
// An IPv4 peer of a socket bound to an IPv6 address, or the reverse, is
// ENETUNREACH: no route joins the two.
func (e *Endpoint) peerLocked(a netip.Addr, nic stack.NICID, required bool) (netip.Addr, stack.NICID, error) {
	zone, err := e.zoneNIC(a)
	if err != nil {
		return a, nic, err
	}
	w, err := e.wireAddr(a, e.v6only)
	if err != nil {
		return w, nic, err
	}
	if err := familyMismatch(e.id.LocalAddr, w); err != nil {
		return w, nic, err
	}
	if needsScope(w) {
		nic, err = scopeNIC(zone, nic, required)
	}
	return w, nic, err
}

// Shutdown stops reading (queued datagrams are dropped and reads return 0),
// writing (sends fail with EPIPE), or both. Like Linux, it requires a
// connected socket (ENOTCONN otherwise).
func (e *Endpoint) Shutdown(read, write bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state == StateClosed {
		return ErrClosed
	}
	if e.state != StateConnected {
		return syscall.ENOTCONN
	}
	if write {
		e.wrShut = true
	}
	if read {
		e.rcvMu.Lock()
		e.rcvShut = true
		e.drainLocked()
		e.signalLocked()
		e.rcvMu.Unlock()
	}
	return nil
}

// Close unbinds the endpoint, leaves its groups, releases its queue and
// wakes every blocked reader with ErrClosed. A second Close returns
// ErrClosed.
func (e *Endpoint) Close() error {
	e.mu.Lock()
	if e.state == StateClosed {
		e.mu.Unlock()
		return ErrClosed
	}
	if e.state != StateInitial {
		e.s.UnregisterEndpoint(udp.ProtocolNumber, e.id, e)
	}
	e.state = StateClosed
	e.mu.Unlock()
	// A membership set made before the state changed is seen here; one
	// made after starts closed (see groups).
	if m := e.mcast.Load(); m != nil {
		m.leaveAll()
	}
	e.rcvMu.Lock()
	e.rcvDead = true
	e.drainLocked()
	e.signalLocked()
	e.rcvMu.Unlock()
	return nil
}

// StackClosed implements stack.TransportEndpoint: the stack is gone, so the
// endpoint closes.
func (e *Endpoint) StackClosed() { e.Close() }

func (e *Endpoint) drainLocked() {
	for e.rcvLen > 0 {
		it := &e.rcvQ[e.rcvHead]
		it.payload.Release()
		*it = rcvItem{}
		e.rcvHead = (e.rcvHead + 1) % len(e.rcvQ)
		e.rcvLen--
	}
	e.rcvUsed = 0
}

// signalLocked leaves a wake-up token for one blocked reader, if a reader
// ever had to wait. The caller holds rcvMu, under which a reader checks
// the queue and takes the channel before it waits, so no wake-up is lost.
func (e *Endpoint) signalLocked() {
	if e.rcvReady == nil {
		return
	}
	select {
	case e.rcvReady <- struct{}{}:
	default:
	}
}

// signal is signalLocked for a caller without rcvMu.
func (e *Endpoint) signal() {
	e.rcvMu.Lock()
	e.signalLocked()
	e.rcvMu.Unlock()
}

// Drops returns how many datagrams were dropped because the receive buffer
// was full.
func (e *Endpoint) Drops() uint64 { return e.drops.Load() }

// SetReceiveBufferSize sets the receive buffer as SO_RCVBUF does: the
// kernel doubles the value to leave room for bookkeeping, and so do we.
func (e *Endpoint) SetReceiveBufferSize(n int) {
	v := min(max(2*n, minReceiveBuffer), maxBuffer)
	e.rcvMu.Lock()
	e.rcvLimit = v
	e.rcvMu.Unlock()
}

// ReceiveBufferSize returns the effective receive buffer size.
func (e *Endpoint) ReceiveBufferSize() int {
	e.rcvMu.Lock()
	defer e.rcvMu.Unlock()
	return e.rcvLimit
}

// SetSendBufferSize records SO_SNDBUF (doubled, as Linux does). Sends are
// not queued per socket: they are written to the link, whose queue blocks
// the writer when full, so the value is only reported back.
func (e *Endpoint) SetSendBufferSize(n int) {
	e.mu.Lock()
	e.sndBuffer = min(max(2*n, 4608), maxBuffer)
	e.mu.Unlock()
}

// SendBufferSize returns the recorded SO_SNDBUF.
func (e *Endpoint) SendBufferSize() int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.sndBuffer
}

// HandlePacket implements stack.TransportEndpoint: it queues a datagram or
// drops it when the receive buffer is full; the stack counts which.
func (e *Endpoint) HandlePacket(p stack.Packet) stack.Delivery {
	cost := p.Payload.Truesize()
	e.rcvMu.Lock()
	if e.rcvDead || e.rcvShut {
		e.rcvMu.Unlock()
		p.Payload.Release()
		return stack.NotReceiving
	}
	if e.rcvUsed > e.rcvLimit {
		e.rcvMu.Unlock()
		e.drops.Add(1)
		p.Payload.Release()
		return stack.ReceiveBufferFull
	}
	if e.rcvLen == len(e.rcvQ) {
		e.growLocked()
	}
	e.rcvQ[(e.rcvHead+e.rcvLen)%len(e.rcvQ)] = rcvItem{payload: p.Payload, cost: cost, src: p.Src, dst: p.Dst.Addr(), ttl: p.TTL, tos: p.TOS, nic: p.NIC}
	e.rcvLen++
	e.rcvUsed += cost
	e.signalLocked()
	e.rcvMu.Unlock()
	return stack.Delivered
}

func (e *Endpoint) growLocked() {
	n := max(16, 2*len(e.rcvQ))
	q := make([]rcvItem, n)
	for i := 0; i < e.rcvLen; i++ {
		q[i] = e.rcvQ[(e.rcvHead+i)%len(e.rcvQ)]
	}
	e.rcvQ, e.rcvHead = q, 0
}

// HandleError implements stack.TransportEndpoint. Like Linux without
// IP_RECVERR, only hard errors on a connected socket are kept, to be
// reported once by the next read or write.
func (e *Endpoint) HandleError(ce stack.ControlError) {
	if !ce.Hard {
		return
	}
	e.mu.RLock()
	connected := e.state == StateConnected && ce.Remote == netip.AddrPortFrom(e.id.RemoteAddr, e.id.RemotePort)
	e.mu.RUnlock()
	if !connected {
		return
	}
	e.softErr.Store(uint32(ce.Errno))
	e.signal()
}

// takeError returns and clears a pending socket error.
func (e *Endpoint) takeError() error {
	if e.softErr.Load() == 0 {
		return nil
	}
	if v := e.softErr.Swap(0); v != 0 {
		return syscall.Errno(v)
	}
	return nil
}

// testHookErrorChecked, when set by a test, runs in Read between the check
// for a pending error and the look at the queue.
var testHookErrorChecked func(*Endpoint)

// ReadInfo describes a datagram returned by Read.
type ReadInfo struct {
	N         int // bytes copied
	Len       int // datagram length; N < Len means truncated
	Src       netip.AddrPort
	Dst       netip.Addr
	TTL, TOS  uint8
	NIC       stack.NICID
	Truncated bool
}

// Read copies the next datagram into dst, blocking until one arrives, an
// error is pending, cancel is closed (ErrTimeout) or the endpoint closes
// (ErrClosed). A datagram longer than dst is truncated and the rest lost;
// with peek it stays queued. After a read shutdown it returns 0 at once.
func (e *Endpoint) Read(dst []byte, peek bool, cancel <-chan struct{}) (ReadInfo, error) {
	for {
		if err := e.takeError(); err != nil {
			e.signal() // the token may have been the close's: pass it on
			return ReadInfo{}, err
		}
		if testHookErrorChecked != nil {
			testHookErrorChecked(e)
		}
		e.rcvMu.Lock()
		if e.rcvLen > 0 {
			it := e.rcvQ[e.rcvHead]
			if peek {
				info := it.info(dst)
				e.rcvMu.Unlock()
				e.showAddrs(&info)
				return info, nil
			}
			e.rcvQ[e.rcvHead] = rcvItem{}
			e.rcvHead = (e.rcvHead + 1) % len(e.rcvQ)
			e.rcvLen--
			e.rcvUsed -= it.cost
			if e.rcvLen > 0 {
				e.signalLocked() // pass the token on to another waiting reader
			}
			e.rcvMu.Unlock()
			info := it.info(dst)
			it.payload.Release()
			e.showAddrs(&info)
			return info, nil
		}
		if e.rcvDead || e.rcvShut {
			dead := e.rcvDead
			e.signalLocked() // wake the next reader blocked on the endpoint
			e.rcvMu.Unlock()
			if dead {
				return ReadInfo{}, ErrClosed
			}
			return ReadInfo{}, nil // read shut down
		}
		if e.softErr.Load() != 0 {
			// An error came after the check above; HandleError stores it
			// before it takes rcvMu to signal, so it is seen here or
			// wakes the wait below.
			e.rcvMu.Unlock()
			continue
		}
		if e.rcvReady == nil {
			e.rcvReady = make(chan struct{}, 1)
		}
		ready := e.rcvReady
		e.rcvMu.Unlock()
		select {
		case <-ready:
		case <-cancel:
			return ReadInfo{}, ErrTimeout
		}
	}
}

// showAddrs converts a datagram's addresses for the endpoint's family.
func (e *Endpoint) showAddrs(info *ReadInfo) {
	if e.v6 {
		info.Src = netip.AddrPortFrom(e.userAddr(info.Src.Addr(), info.NIC), info.Src.Port())
		info.Dst = e.userAddr(info.Dst, info.NIC)
	}
}

func (it *rcvItem) info(dst []byte) ReadInfo {
	n := it.payload.CopyTo(dst)
	l := it.payload.Len()
	return ReadInfo{N: n, Len: l, Src: it.src, Dst: it.dst, TTL: it.ttl, TOS: it.tos, NIC: it.nic, Truncated: n < l}
}

// WriteOptions override socket options for one datagram (IP_PKTINFO-style
// control messages).
type WriteOptions struct {
	Src netip.Addr // source address; must be ours
	NIC stack.NICID
	TTL int // -1 or 0: the socket's
	// TOS, with SetTOS, is the datagram's TOS or traffic class
	// (IPV6_TCLASS as a control message) instead of the socket's.
	TOS    uint8
	SetTOS bool
}

// Write sends p to to, or to the connected peer when to is invalid. An
// unbound endpoint is bound to an ephemeral port first. It blocks while the
// link's transmit queue is full.
//
// The endpoint's lock is held only to copy what the send needs
// (sendSnapshot); routing, building and writing the datagram happen
// outside it.
func (e *Endpoint) Write(p []byte, to netip.AddrPort, wo *WriteOptions) (int, error) {
	if len(p) > MaxPayload6 || !e.v6 && len(p) > udp.MaxPayload {
		return 0, syscall.EMSGSIZE
	}
	st, r, dst, err := e.prepareSend(to, wo)
	if err != nil {
		return 0, err
	}
	if len(p) > maxPayload(dst.Addr()) {
		return 0, syscall.EMSGSIZE
	}
	if err := e.s.WriteUDP(&r, st.lport, dst.Port(), p, st.writeOptions(&r, wo)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// prepareSend does what every send does first: it copies the send state,
// binding an unbound endpoint to an ephemeral port as the kernel does on
// the first send, and routes the datagram to to (or the connected peer).
func (e *Endpoint) prepareSend(to netip.AddrPort, wo *WriteOptions) (sendState, stack.Route, netip.AddrPort, error) {
	st, err := e.sendSnapshot()
	if err == errUnbound {
		if err = e.autobind(); err == nil {
			st, err = e.sendSnapshot()
		}
	}
	if err != nil {
		return sendState{}, stack.Route{}, netip.AddrPort{}, err
	}
	r, dst, err := e.sendRoute(&st, to, wo)
	return st, r, dst, err
}

// errUnbound tells prepareSend to bind an ephemeral port and look again.
var errUnbound = errors.New("endpoint not bound")

// sendState is what a send needs of the endpoint, copied under e.mu.
type sendState struct {
	local     netip.Addr // bound address; invalid or unspecified: any
	v6only    bool
	lport     uint16
	bindNIC   stack.NICID
	opts      Options
	connected bool
	route     stack.Route // when connected
	remote    netip.AddrPort
}

// sendSnapshot copies the send state, failing as Linux's udp_sendmsg does
// on a closed or write-shut socket, or with a connected socket's pending
// error. errUnbound asks the caller to autobind first.
func (e *Endpoint) sendSnapshot() (sendState, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	switch {
	case e.state == StateInitial:
		return sendState{}, errUnbound
	case e.state == StateClosed:
		return sendState{}, ErrClosed
	case e.wrShut:
		return sendState{}, syscall.EPIPE
	}
	st := sendState{local: e.id.LocalAddr, v6only: e.v6only, lport: e.id.LocalPort, bindNIC: e.bindNIC, opts: e.opts}
	if e.state == StateConnected {
		if err := e.takeError(); err != nil {
			return sendState{}, err
		}
		st.connected, st.route = true, e.route
		st.remote = netip.AddrPortFrom(e.id.RemoteAddr, e.id.RemotePort)
	}
	return st, nil
}

// autobind binds an unbound endpoint to an ephemeral port, as the kernel
// does on the first send.
func (e *Endpoint) autobind() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state != StateInitial {
		return nil // bound (or closed) meanwhile; sendSnapshot tells
	}
	return e.bindEphemeralLocked()
}

// sendRoute returns the route and destination of a datagram to to, or to
// the connected peer when to is invalid (EDESTADDRREQ when there is none).
func (e *Endpoint) sendRoute(st *sendState, to netip.AddrPort, wo *WriteOptions) (stack.Route, netip.AddrPort, error) {
	switch {
	case to.Addr().IsValid():
		return e.routeTo(st, to, wo)
	case st.connected:
		return st.route, st.remote, nil
	default:
		return stack.Route{}, netip.AddrPort{}, syscall.EDESTADDRREQ
	}
}

// routeTo finds the route to an explicit destination: through the NIC and
// from the source that wo, the multicast interface or the binding choose.
func (e *Endpoint) routeTo(st *sendState, to netip.AddrPort, wo *WriteOptions) (stack.Route, netip.AddrPort, error) {
	ra, nic, err := e.sendPeer(st, to.Addr())
	if err != nil {
		return stack.Route{}, to, err
	}
	if to.Port() == 0 {
		return stack.Route{}, to, syscall.EINVAL
	}
	src := st.local
	if !isSpecific(src) {
		src = netip.Addr{}
	}
	if m := st.opts.multicastNIC(ra); ra.IsMulticast() && m != 0 {
		nic = m
	}
	if wo != nil {
		if wo.NIC != 0 {
			nic = wo.NIC
		}
		if wo.Src.IsValid() && !wo.Src.IsUnspecified() {
			src = wo.Src
		}
	}
	r, err := e.s.FindRoute(nic, src, ra)
	return r, netip.AddrPortFrom(ra, to.Port()), err
}

// sendPeer is peerLocked for a send, from the snapshot: a zone picks the
// NIC, but none is required (the route decides, as on Linux).
func (e *Endpoint) sendPeer(st *sendState, a netip.Addr) (netip.Addr, stack.NICID, error) {
	zone, err := e.zoneNIC(a)
	if err != nil {
		return a, 0, syscall.ENETUNREACH // udpv6_sendmsg finds no route through an unknown NIC
	}
	w, err := e.wireAddr(a, st.v6only)
	if err != nil {
		return w, 0, err
	}
	if err := familyMismatch(st.local, w); err != nil {
		return w, 0, err
	}
	nic := st.bindNIC
	if needsScope(w) {
		nic, err = scopeNIC(zone, nic, false)
	}
	return w, nic, err
}

// writeOptions gives the IP settings of a datagram along r: the socket's
// unicast or multicast TTL (hop limit) and TOS (traffic class) of the
// datagram's family, overridden by wo's TTL.
func (st *sendState) writeOptions(r *stack.Route, wo *WriteOptions) stack.WriteOptions {
	o := st.opts
	w := stack.WriteOptions{TTL: o.TTL, TOS: o.TOS, DF: o.PMTUDiscovery == PMTUDiscoveryDo,
		DFIfFits: o.PMTUDiscovery == PMTUDiscoveryWant}
	switch v6 := r.RemoteAddr.Is6(); {
	case v6 && r.Multicast:
		w.TTL, w.TOS, w.Loop = o.MulticastHopLimit, o.TrafficClass, o.MulticastLoop6
	case v6:
		w.TTL, w.TOS = o.HopLimit, o.TrafficClass
	case r.Multicast:
		w.TTL, w.Loop = o.MulticastTTL, o.MulticastLoop
	}
	if wo != nil && wo.TTL > 0 {
		w.TTL = uint8(wo.TTL)
	}
	if wo != nil && wo.SetTOS {
		w.TOS = wo.TOS
	}
	w.HostOnly = r.Multicast && w.TTL == 0 // IP_MULTICAST_TTL 0
	return w
}

// WriteBatch sends each payload of ps as one datagram to to (or the
// connected peer), like that many Writes, but lets them reach the link
// together (stack.WriteUDPBatch: one UDP super-frame per run of
// equal-sized payloads on a link with segmentation offload, one link batch
// otherwise). It returns how many were sent and the error that stopped it.
func (e *Endpoint) WriteBatch(ps [][]byte, to netip.AddrPort, wo *WriteOptions) (int, error) {
	if len(ps) == 0 {
		return 0, nil
	}
	st, r, dst, err := e.prepareSend(to, wo)
	if err != nil {
		return 0, err
	}
	return e.s.WriteUDPBatch(&r, st.lport, dst.Port(), ps, st.writeOptions(&r, wo))
}
