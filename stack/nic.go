package stack

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tapnet/tapnet/arp"
	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/igmp"
	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/ipv4"
	"github.com/tapnet/tapnet/ipv6"
	"github.com/tapnet/tapnet/link"
	"github.com/tapnet/tapnet/mld"
	"github.com/tapnet/tapnet/neigh"
)

// NICID identifies a NIC within its stack, like an interface index
// (starting at 1).
type NICID int

// NICOptions configure a NIC.
type NICOptions struct {
	// Name is the interface name reported by Interfaces (default "tapN",
	// or "tunN" on an IP link).
	Name string
	// Addresses are assigned at creation (each announced with a
	// gratuitous ARP).
	Addresses []netip.Prefix
	// IGMP tunes the NIC's group membership reports.
	IGMP igmp.Config
	// IPv6 configures the NIC's IPv6: its link-local address, duplicate
	// address detection, router advertisements, MLD.
	IPv6 IPv6Options
}

// NIC is one link of the stack with its addresses and neighbour cache.
type NIC struct {
	s      *Stack
	id     NICID
	name   string
	dev    link.Device
	txq    []txQueue // the device's queues (link.go)
	hdrLen int       // link header length: 14 on Ethernet, 0 on IP links
	mac    ethernet.MAC
	// mtu is the IP MTU packets are sent in (SetMTU), read on every send;
	// linkMTU is the device's, the most frames may carry either way.
	mtu     atomic.Int32
	linkMTU int
	off     link.Offloads // what the link does for the stack (offload.go)
	arp     *arp.Cache    // nil without Ethernet: nothing to resolve

	addrs addrBook // the assigned addresses; guarded by s.mu
	// What the packet paths read without a lock, kept in step with addrs:
	local        addrMap[addrUse]           // own and subnet broadcast addresses
	primaries    prefixMap[primaryAddr]     // each prefix's primary address
	firstPrimary atomic.Pointer[netip.Addr] // the fallback source

	loopback bool // the stack's lo: owns all of 127.0.0.0/8, has no link

	acd acdState // RFC 5227 probes and defence (acd.go)

	igmp      *igmp.Host  // multicast group membership (igmp.go)
	igmpTimer *time.Timer // calls igmp.Fire; guarded by igmp's lock (scheduleIGMP)

	v6       nic6         // IPv6 state (ipv6_addr.go)
	nd       *neigh.Table // IPv6 neighbour table (ndp.go); nil without Ethernet
	mld      *mld.Host    // IPv6 group membership (mld.go)
	mldTimer *time.Timer  // calls mld.Fire; guarded by mld's lock

	closing   atomic.Bool    // close started: read errors are expected
	rxWG      sync.WaitGroup // the receive loops (link.go)
	errMu     sync.Mutex     // guards err; taken alone
	err       error          // why the link stopped on its own
	closeOnce sync.Once
}

// AddNIC adds a link device to the stack and starts reading from it, one
// goroutine per queue. The NIC owns the device from then on and closes it
// when the stack closes.
//
// On an Ethernet link (a TAP) the NIC resolves neighbours with ARP. On an
// IP link (link.LayerIP: a TUN, a point-to-point tunnel) it has no link
// header and no neighbours, as the kernel's own tun: every packet routed
// to the NIC is written as it is, whatever its next hop, so an address
// with a prefix makes the whole prefix reachable through the link, and a
// /32 address with a route to its peer (AddRoute with no gateway) works
// too.
//
// A link whose MTU is below 1280 gets no IPv6, as on Linux: its NIC runs
// as if NICOptions.IPv6.Disabled were set, and Stats().IPv6.LinkMTUTooSmall
// counts it.
func (s *Stack) AddNIC(dev link.Device, opts NICOptions) (*NIC, error) {
	if s.closed.Load() {
		return nil, ErrStackClosed
	}
	info := dev.Info()
	if err := checkLink(info); err != nil {
		return nil, err
	}
	s.mu.Lock()
	old := *s.nics.Load()
	n := &NIC{s: s, id: NICID(len(old) + 1), dev: dev, linkMTU: info.MTU,
		hdrLen: linkHeaderLen(info.Layer), txq: linkQueues(dev, info), off: info.Offloads}
	n.mtu.Store(int32(info.MTU))
	n.newIGMPHost(opts.IGMP)
	n.name = opts.Name
	if n.name == "" {
		n.name = fmt.Sprintf("%s%d", defaultNamePrefix(info.Layer), n.id-2)
	}
	if n.hasEthernet() {
		n.mac = info.MAC
		n.arp = arp.New(s.opts.ARP, arp.Hooks{
			SendRequest: n.sendARPRequest,
			Resolved:    n.flushResolved,
			Failed:      n.resolutionFailed,
		}, &s.stats.ARP.Stats)
	}
	n.setupIPv6(n.ipv6FitsLink(opts.IPv6))
	nics := append(slices.Clip(old), n)
	s.nics.Store(&nics)
	s.mu.Unlock()
	for _, p := range opts.Addresses {
		if err := n.AddAddress(p); err != nil {
			return nil, err
		}
	}
	n.startReceiving(info.BatchSize)
	n.startIPv6()
	return n, nil
}

// ipv6FitsLink returns o, with IPv6 disabled when the link's MTU is below
// IPv6's minimum of 1280: as Linux's addrconf does, such a NIC gets no
// IPv6 rather than one that cannot carry it. It is counted and logged.
func (n *NIC) ipv6FitsLink(o IPv6Options) IPv6Options {
	if o.Disabled || n.linkMTU >= ipv6.MinMTU {
		return o
	}
	n.s.stats.IPv6.LinkMTUTooSmall.Add(1)
	n.s.log.Warn("tapnet: link MTU below IPv6's minimum; IPv6 off on this NIC",
		"nic", n.name, "mtu", n.linkMTU, "min", ipv6.MinMTU)
	o.Disabled = true
	return o
}

// newLoopback makes the stack's lo, index 1 as on Linux, which owns
// 127.0.0.0/8. Datagrams to it never leave the stack.
func newLoopback(s *Stack) *NIC {
	n := &NIC{s: s, id: 1, name: "lo", linkMTU: loopbackMTU, loopback: true}
	n.mtu.Store(loopbackMTU)
	n.newIGMPHost(igmp.Config{})
	n.setupIPv6(IPv6Options{DADTransmits: -1})
	// lo's address has no connected route: every 127/8 destination is
	// local (see hasAddress) before routes are looked at.
	n.assignLocked(loopbackPrefix, false)
	lo6 := &addr6{prefix: loopbackPrefix6, state: addrPreferred, done: make(chan struct{})}
	close(lo6.done)
	n.v6.addrs[loopbackPrefix6.Addr()] = lo6
	n.assignLocked(loopbackPrefix6, false)
	n.publishSources6Locked()
	return n
}

// NICs returns the stack's NICs in creation order, lo first.
func (s *Stack) NICs() []*NIC { return slices.Clone(*s.nics.Load()) }

// NIC returns the NIC with the given id, or nil.
func (s *Stack) NIC(id NICID) *NIC {
	nics := *s.nics.Load()
	if id < 1 || int(id) > len(nics) {
		return nil
	}
	return nics[id-1]
}

// ID returns the NIC's index.
func (n *NIC) ID() NICID { return n.id }

// Name returns the NIC's name.
func (n *NIC) Name() string { return n.name }

// MAC returns the NIC's link address (zero on an IP link).
func (n *NIC) MAC() ethernet.MAC { return n.mac }

// loopbackMTU is lo's MTU, as on Linux.
const loopbackMTU = 65536

// MTU returns the NIC's MTU: the link's, unless SetMTU lowered it.
func (n *NIC) MTU() int { return int(n.mtu.Load()) }

// SetMTU sets the largest IP packet the NIC sends, as `ip link set mtu`
// does: datagrams are fragmented to it (or fail with EMSGSIZE when they
// must not be), IGMP and MLD reports and ICMP errors are sized for it,
// and Interfaces shows it. Frames up to the link's MTU are still
// received, as Linux's tun accepts them. It fails with EINVAL below 68,
// IPv4's minimum, or above the link's MTU (link.Info.MTU). While the NIC
// has IPv6 the minimum is IPv6's 1280, and SetMTU fails with EINVAL below
// it. This differs from Linux, which accepts less and turns the NIC's
// IPv6 off (and back on once the MTU is raised again); here a NIC that
// should run IPv4 alone below 1280 takes NICOptions.IPv6.Disabled, or a
// link whose own MTU is that small, on which AddNIC leaves IPv6 off.
func (n *NIC) SetMTU(mtu int) error {
	lowest := minIPv4MTU
	if n.v6.enabled {
		lowest = ipv6.MinMTU
	}
	if mtu < lowest || mtu > n.linkMTU {
		return syscall.EINVAL
	}
	n.s.mu.Lock() // one change at a time, so the hosts agree with the NIC
	defer n.s.mu.Unlock()
	n.mtu.Store(int32(mtu))
	n.igmp.SetMTU(mtu)
	n.mld.SetMTU(mtu)
	return nil
}

// Link returns the NIC's link device.
func (n *NIC) Link() link.Device { return n.dev }

// ARP returns the NIC's neighbour cache, or nil on an IP link, which has
// no neighbours to resolve.
func (n *NIC) ARP() *arp.Cache { return n.arp }

// Addresses returns the NIC's addresses as `ip address` lists them:
// primaries in the order they were added, then secondaries.
// IPv6 addresses still in duplicate address detection (tentative) come
// last.
func (n *NIC) Addresses() []netip.Prefix {
	n.s.mu.Lock()
	defer n.s.mu.Unlock()
	return append(slices.Clone(n.addrs.orderedLocked()), n.tentativeLocked()...)
}

// Interface describes the NIC as a net.Interface, for APIs that take one
// (multicast options).
func (n *NIC) Interface() net.Interface {
	if n.loopback {
		return net.Interface{Index: int(n.id), MTU: n.MTU(), Name: n.name,
			Flags: net.FlagUp | net.FlagLoopback | net.FlagMulticast | net.FlagRunning}
	}
	if !n.hasEthernet() {
		// As Linux shows a tun: POINTOPOINT,MULTICAST,NOARP,UP.
		return net.Interface{Index: int(n.id), MTU: n.MTU(), Name: n.name,
			Flags: net.FlagUp | net.FlagPointToPoint | net.FlagMulticast | net.FlagRunning}
	}
	return net.Interface{
		Index:        int(n.id),
		MTU:          n.MTU(),
		Name:         n.name,
		HardwareAddr: n.mac.HardwareAddr(),
		Flags:        net.FlagUp | net.FlagBroadcast | net.FlagMulticast | net.FlagRunning,
	}
}

// AddAddress assigns an address with its prefix length and, on an
// Ethernet link, announces it with a gratuitous ARP. As on Linux, the first address of a prefix is its
// primary: it gets the connected route and is the source of datagrams sent
// along it. Later addresses in the same prefix are secondaries: they
// receive, and can be bound or chosen with a control message, but never
// become the default source. Adding an address twice does nothing.
//
// An IPv6 address is tentative until duplicate address detection ends
// (WaitAddress waits for it); its prefix gets a connected route, and its
// solicited-node group is joined.
func (n *NIC) AddAddress(p netip.Prefix) error {
	if p.Addr().Is6() {
		return n.addAddress6(p, false, time.Time{}, time.Time{})
	}
	if !p.Addr().Is4() || p.Addr().IsUnspecified() || ipv4.IsMulticast(p.Addr()) || p.Bits() < 1 {
		return fmt.Errorf("stack: %v is not a usable IPv4 unicast address with a prefix", p)
	}
	n.s.mu.Lock()
	added := n.assignLocked(p, true)
	n.s.mu.Unlock()
	if added && n.hasEthernet() {
		n.sendARP(arp.OpRequest, ethernet.Broadcast, p.Addr(), ethernet.MAC{}, p.Addr())
	}
	return nil
}

// RemoveAddress removes an address. When it is the primary of its prefix,
// the oldest secondary is promoted and takes over the connected route, as
// Linux does with net.ipv4.conf.*.promote_secondaries=1 (the default of
// most distributions); the route goes only with the prefix's last address.
// Sockets bound to the address stay bound but receive nothing more. It
// fails with EADDRNOTAVAIL when the NIC does not have p, and lo keeps
// 127.0.0.1/8.
func (n *NIC) RemoveAddress(p netip.Prefix) error {
	if n.loopback && (p == loopbackPrefix || p == loopbackPrefix6) {
		return fmt.Errorf("stack: lo keeps %v", p)
	}
	if p.Addr().Is6() {
		return n.removeAddress6(p)
	}
	n.forgetDefence(p.Addr())
	n.s.mu.Lock()
	defer n.s.mu.Unlock()
	if !n.unassignLocked(p) {
		return syscall.EADDRNOTAVAIL
	}
	return nil
}

// hasAddress reports whether a is one of the NIC's addresses (lo: all of
// 127.0.0.0/8).
func (n *NIC) hasAddress(a netip.Addr) bool { return n.hasAddressHashed(a, addrHash(a)) }

// hasAddressHashed is hasAddress with a's addrHash given.
func (n *NIC) hasAddressHashed(a netip.Addr, h uint64) bool {
	if n.loopback && isLoopback(a) {
		return true
	}
	u, _ := n.local.getHashed(a, h)
	return u.own > 0
}

// isSubnetBroadcast reports whether a is the broadcast address of one of
// the NIC's prefixes.
func (n *NIC) isSubnetBroadcast(a netip.Addr) bool {
	if n.loopback && a == loopbackBroadcast {
		return true
	}
	u, _ := n.local.get(a)
	return u.broadcast > 0
}

// isLocalOrBroadcast is hasAddress || isSubnetBroadcast with one lookup.
func (n *NIC) isLocalOrBroadcast(a netip.Addr) bool {
	if n.loopback && isLoopback(a) {
		return true
	}
	_, ok := n.local.get(a)
	return ok
}

// unconfigured reports whether the link NIC has no IPv4 address yet, as
// while a DHCP client acquires one.
func (n *NIC) unconfigured() bool { return !n.loopback && n.firstPrimary.Load() == nil }

func isLoopback(a netip.Addr) bool {
	return a.Is4() && a.As4()[0] == 127 || a == netip.IPv6Loopback()
}

func subnetBroadcast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := ^uint32(0) >> p.Bits()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// primaryAddress returns the source Linux's inet_select_addr would pick:
// the first primary (in the order of Addresses) whose prefix contains dst,
// else the first primary.
func (n *NIC) primaryAddress(dst netip.Addr) netip.Addr {
	var best primaryAddr
	n.primaries.matches(dst, func(_ int, p primaryAddr) bool {
		if !best.addr.IsValid() || p.seq < best.seq {
			best = p
		}
		return true
	})
	if best.addr.IsValid() {
		return best.addr
	}
	if a := n.firstPrimary.Load(); a != nil {
		return *a
	}
	return netip.Addr{}
}

func (n *NIC) close() {
	n.closeOnce.Do(func() {
		n.igmp.Close()
		n.mld.Close()
		n.stopIPv6()
		if n.loopback {
			return
		}
		n.closing.Store(true)
		n.dev.Close()
		n.rxWG.Wait()
		if n.arp != nil {
			n.arp.Close()
		}
		if n.nd != nil {
			n.nd.Close()
		}
	})
}

// deliver is where the receive loop hands each frame: Ethernet
// demultiplexing, or straight to IP on an IP link. It takes ownership of b.
func (n *NIC) deliver(b *buffer.Buffer) {
	st := &n.s.stats
	st.Link.RxFrames.Add(1)
	if !n.hasEthernet() {
		n.deliverIP(b)
		return
	}
	if b.Len() < ethernet.HeaderLen {
		st.Link.Runts.Add(1)
		b.Release()
		return
	}
	eth := ethernet.Header(b.Bytes())
	dst := eth.Dst()
	if dst != n.mac && !dst.IsMulticast() {
		st.Link.OtherHost.Add(1)
		b.Release()
		return
	}
	switch eth.Type() {
	case ethernet.TypeIPv4:
		b.TrimFront(ethernet.HeaderLen)
		n.s.handleIPv4(n, b, false, dst.IsMulticast())
	case ethernet.TypeIPv6:
		if !n.v6.enabled {
			st.Link.UnknownEtherType.Add(1)
			b.Release()
			return
		}
		b.TrimFront(ethernet.HeaderLen)
		n.s.handleIPv6(n, b, false, dst.IsMulticast())
	case ethernet.TypeARP:
		src := eth.Src()
		b.TrimFront(ethernet.HeaderLen)
		n.handleARP(b, src, dst == n.mac)
	default:
		st.Link.UnknownEtherType.Add(1)
		b.Release()
	}
}
