// Package stack is the heart of tapnet: it owns NICs (Ethernet links with a
// MAC, or IP links such as TUN, with IPv4 and IPv6 addresses), the route
// table, neighbour caches (ARP and NDP), IPv4 and IPv6 input and output
// (with fragmentation and reassembly), ICMP and ICMPv6 (and the errno a
// socket reports for an error), each NIC's IGMP and MLD hosts (packages
// igmp and mld, framed and timed here), UDP (parsed and built with package
// udp's wire functions), the demultiplexer, ephemeral ports and the
// counters.
//
// Path MTU discovery works as on Linux: an ICMP "fragmentation needed"
// quoting a datagram one of our sockets sent (or an ICMPv6 Packet Too Big)
// lowers the MTU to that destination for 10 minutes, to no less than 552
// bytes (1280 on IPv6), on IPv4 never above the current one. Datagrams
// there are fragmented to fit, or fail with EMSGSIZE when sent with DF;
// PathMTU reports what was learned.
// Socket endpoints plug in through the small interfaces in transport.go;
// user-facing sockets live in gonet.
//
// A NIC runs over any link.Device (package link): a TAP device, an in-memory
// pipe or hub (package tap), or a link of the user's own. One goroutine per
// device queue reads batches of frames straight into pooled buffers, and each
// frame travels up inline on it: Ethernet, ARP or IPv4, reassembly,
// demultiplexing, and finally the endpoint's receive queue. Writers build
// headers in their own goroutine and write straight to the device; replies
// the receive goroutine sends (ARP, ping, ICMP errors) use the device's
// non-blocking TryWriteFrames when it has one. Datagrams to the stack's own
// addresses are delivered without touching the link.
//
// IPv6 runs beside IPv4 on every NIC unless NICOptions.IPv6.Disabled: an
// EUI-64 (or RFC 7217) link-local address, duplicate address detection,
// neighbour discovery, MLD, ICMPv6, fragmentation and reassembly, path MTU
// from Packet Too Big, RFC 6724 source selection, and, with
// IPv6Options.AcceptRA, router advertisements and SLAAC. FindRoute,
// WriteUDP and RegisterEndpoint take IPv6 addresses as they take IPv4 ones.
package stack

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tapnet/tapnet/arp"
	"github.com/tapnet/tapnet/internal/ipfrag"
	"github.com/tapnet/tapnet/internal/ratelimit"
	"github.com/tapnet/tapnet/ipv4"
)

// Options configure a stack. The zero value gives Linux-like defaults.
type Options struct {
	// ARP configures every NIC's neighbour cache.
	ARP arp.Config
	// ICMPRateLimit limits ICMP errors sent (Linux's defaults when zero).
	ICMPRateLimit RateLimitOptions
	// Reassembly configures IPv4 reassembly (30 s timeout, 4 MiB / 3 MiB
	// memory thresholds when zero).
	Reassembly ReassemblyOptions
	// Reassembly6 configures IPv6 reassembly (60 s timeout, and 4 MiB /
	// 3 MiB memory thresholds of its own, as Linux's ip6frag_* are apart
	// from ipfrag_*, when zero).
	Reassembly6 ReassemblyOptions
	// EchoBroadcast answers pings sent to broadcast and multicast
	// addresses (Linux's icmp_echo_ignore_broadcasts=0). Off by default.
	EchoBroadcast bool
	// Logger receives diagnostics (a link failing, address conflicts). A
	// library stays silent by default: nil discards everything.
	Logger *slog.Logger
}

// Stack is one userspace IPv4 host. Create it with New, add NICs, then open
// sockets on it with gonet.
type Stack struct {
	opts Options
	log  *slog.Logger
	// udpInputHook, set only by tests, sees the IP header of every UDP
	// datagram delivered, as a raw socket would.
	udpInputHook func(ip []byte)
	// icmp6Hook, set only by tests, sees every valid ICMPv6 message
	// received.
	icmp6Hook func(src netip.Addr, m []byte)

	// mu serialises changes to nics, routes and NIC addresses; readers
	// load the atomics without it. Nothing else is locked under it.
	mu     sync.Mutex
	nics   atomic.Pointer[[]*NIC]
	routes routeTable

	demux     demux
	ipID      atomic.Uint32
	icmpLimit *ratelimit.Limiter
	reasm     *ipfrag.Reassembler
	v6        stack6    // IPv6's shared state (ipv6_output.go)
	pmtu      pmtuCache // path MTUs learned from ICMP (pmtu.go)
	stats     Stats

	closed    atomic.Bool
	closeOnce sync.Once
	done      chan struct{}
	wg        sync.WaitGroup
}

// New returns a stack with no NICs.
func New(opts Options) *Stack {
	s := &Stack{opts: opts, done: make(chan struct{})}
	s.log = opts.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.icmpLimit = newICMPLimiter(opts.ICMPRateLimit)
	s.reasm = s.newReassembler(opts.Reassembly)
	s.ipID.Store(uint32(time.Now().UnixNano()))
	s.initIPv6()
	lo := []*NIC{newLoopback(s)}
	s.nics.Store(&lo)
	s.wg.Add(1)
	go s.housekeeping()
	return s
}

// housekeeping expires incomplete reassemblies once a second.
func (s *Stack) housekeeping() {
	defer s.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			s.reasm.Expire()
			s.v6.reasm.Expire()
		}
	}
}

// Stats returns the stack's live counters, every layer's; the ARP and IGMP
// groups are summed over NICs. Reassembly's memory use and datagrams in
// flight are gauges in Stats.Reassembly.
func (s *Stack) Stats() *Stats { return &s.stats }

// ErrStackClosed is returned by operations on a closed stack.
var ErrStackClosed = fmt.Errorf("stack closed: %w", net.ErrClosed)

// Close shuts every NIC (stopping their reader goroutines), tells every
// endpoint, and releases all queued packets. It is safe to call twice.
func (s *Stack) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.done)
		for _, n := range *s.nics.Load() {
			n.close()
		}
		for _, ep := range s.demux.closeAll() {
			ep.StackClosed()
		}
		s.wg.Wait()
		s.reasm.Close()
		s.v6.reasm.Close()
	})
	return nil
}

// Done is closed when the stack closes (for example after its only link
// failed).
func (s *Stack) Done() <-chan struct{} { return s.done }

// RegisterEndpoint binds ep to id for a transport protocol. A zero local
// port picks an ephemeral one (32768–60999, random start). reuse allows
// sharing the port with other reuse bindings (SO_REUSEADDR); nic restricts
// the binding to one NIC (0: any). The local address picks the family as
// TransportID says (an unspecified address is not widened to both). It
// returns the id actually bound, or
// EADDRINUSE (also when no ephemeral port is left, as Linux's bind) /
// EADDRNOTAVAIL.
func (s *Stack) RegisterEndpoint(proto uint8, id TransportID, ep TransportEndpoint, reuse bool, nic NICID) (TransportID, error) {
	if s.closed.Load() {
		return id, ErrStackClosed
	}
	if a := id.LocalAddr; a.IsValid() && !a.IsUnspecified() && !a.IsMulticast() && a != ipv4.Broadcast && !s.isLocalOrBroadcast(a) {
		return id, syscall.EADDRNOTAVAIL
	}
	return s.demux.register(proto, id, ep, reuse, nic)
}

// RebindEndpoint changes the remote part of ep's binding (connect or
// disconnect); the local address may be narrowed from any to the route's
// source, as Linux does on connect.
func (s *Stack) RebindEndpoint(proto uint8, old, id TransportID, ep TransportEndpoint) {
	s.demux.replace(proto, old, id, ep)
}

// UnregisterEndpoint removes ep's binding.
func (s *Stack) UnregisterEndpoint(proto uint8, id TransportID, ep TransportEndpoint) {
	s.demux.unregister(proto, id, ep)
}

// isLocalOrBroadcast reports whether a is one of our addresses or a subnet
// broadcast address of one of our prefixes.
func (s *Stack) isLocalOrBroadcast(a netip.Addr) bool {
	for _, n := range *s.nics.Load() {
		if n.isLocalOrBroadcast(a) {
			return true
		}
	}
	return false
}

// isSubnetBroadcast reports whether a is the broadcast address of one of our
// prefixes.
func (s *Stack) isSubnetBroadcast(a netip.Addr) bool {
	for _, n := range *s.nics.Load() {
		if n.isSubnetBroadcast(a) {
			return true
		}
	}
	return false
}

// IsLocalAddress reports whether a is assigned to one of the stack's NICs.
func (s *Stack) IsLocalAddress(a netip.Addr) bool { return s.localNIC(a) != nil }

func (s *Stack) localNIC(a netip.Addr) *NIC {
	h := addrHash(a)
	for _, n := range *s.nics.Load() {
		if n.hasAddressHashed(a, h) {
			return n
		}
	}
	return nil
}
