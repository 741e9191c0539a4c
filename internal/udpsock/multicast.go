package udpsock

import (
	"net/netip"
	"slices"
	"sync"
	"syscall"

	"github.com/tapnet/tapnet/ipv4"
	"github.com/tapnet/tapnet/multicast"
	"github.com/tapnet/tapnet/stack"
)

// Per-socket limits, Linux's defaults for net.ipv4.igmp_max_memberships and
// net.ipv4.igmp_max_msf. Exceeding them gives ENOBUFS.
const (
	MaxMemberships  = 20
	MaxSourceFilter = 10
)

// membership is one (group, NIC) the endpoint joined, with its source
// filter: EXCLUDE for an any-source join (with the sources blocked since),
// INCLUDE for source-specific joins.
type membership struct {
	group  netip.Addr
	nic    *stack.NIC
	filter multicast.Filter
}

// memberships are the groups an endpoint joined. Each change is passed on
// to the NIC, which merges every socket's filter and reports with IGMP.
// Errors follow Linux's setsockopt (MCAST_JOIN_GROUP and friends).
type memberships struct {
	mu     sync.Mutex // guards list, each membership's filter, and closed
	list   []*membership
	closed bool
}

func (m *memberships) find(group netip.Addr, nic *stack.NIC) int {
	return slices.IndexFunc(m.list, func(x *membership) bool {
		return x.group == group && (nic == nil || x.nic == nic)
	})
}

func (m *memberships) remove(i int) {
	m.list = slices.Delete(m.list, i, i+1)
}

// groups returns the endpoint's membership set, making it on first use. A
// set made once the endpoint is closed starts closed, so no join slips in
// after Close has left every group.
func (e *Endpoint) groups() *memberships {
	if m := e.mcast.Load(); m != nil {
		return m
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	m := e.mcast.Load()
	if m == nil {
		m = &memberships{closed: e.state == StateClosed}
		e.mcast.Store(m)
	}
	return m
}

// leaveAll drops every membership when the endpoint closes.
func (m *memberships) leaveAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	for _, x := range m.list {
		x.nic.ChangeMembership(x.group, x.filter, multicast.Filter{})
	}
	m.list = nil
}

// Membership describes one group an endpoint joined.
type Membership struct {
	Group  netip.Addr
	NIC    stack.NICID
	Filter multicast.Filter
}

// Memberships returns the endpoint's memberships in joining order.
func (e *Endpoint) Memberships() []Membership {
	m := e.mcast.Load()
	if m == nil {
		return []Membership{}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Membership, len(m.list))
	for i, x := range m.list {
		out[i] = Membership{x.group, x.nic.ID(), multicast.Filter{Mode: x.filter.Mode, Sources: slices.Clone(x.filter.Sources)}}
	}
	return out
}

// groupNIC resolves the NIC of a membership operation: the given one, or
// the stack's default for the group (ENODEV when there is none).
func (e *Endpoint) groupNIC(nic *stack.NIC, group netip.Addr) (*stack.NIC, error) {
	if nic == nil {
		nic = e.s.DefaultMulticastNIC(group)
	}
	if nic == nil {
		return nil, syscall.ENODEV
	}
	return nic, nil
}

// lockGroup checks that group is a multicast group, resolves nic (nil: the
// group's default NIC) and takes the membership lock, which the caller
// releases.
func (e *Endpoint) lockGroup(nic *stack.NIC, group netip.Addr) (*stack.NIC, error) {
	if !isGroup(group) {
		return nil, syscall.EINVAL
	}
	nic, err := e.groupNIC(nic, group)
	if err != nil {
		return nil, err
	}
	if err := e.groups().lock(); err != nil {
		return nil, err
	}
	return nic, nil
}

// isGroup reports whether a is an IPv4 or IPv6 multicast group (not
// IPv4-mapped: sockets unmap first).
func isGroup(a netip.Addr) bool {
	return a.Is4() && ipv4.IsMulticast(a) || a.Is6() && !a.Is4In6() && a.IsMulticast()
}

// lock takes the membership lock unless the endpoint is closed.
func (m *memberships) lock() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// JoinGroup joins group on nic (nil: the stack's default NIC for the group)
// for every source. Errors: EINVAL for a non-multicast group, ENODEV,
// EADDRINUSE when already joined there, ENOBUFS past MaxMemberships.
func (e *Endpoint) JoinGroup(nic *stack.NIC, group netip.Addr) error {
	nic, err := e.lockGroup(nic, group)
	if err != nil {
		return err
	}
	m := e.groups()
	defer m.mu.Unlock()
	if m.find(group, nic) >= 0 {
		return syscall.EADDRINUSE
	}
	if len(m.list) >= MaxMemberships {
		return syscall.ENOBUFS
	}
	x := &membership{group: group, nic: nic, filter: multicast.Filter{Mode: multicast.Exclude}}
	m.list = append(m.list, x)
	nic.ChangeMembership(group, multicast.Filter{}, x.filter)
	return nil
}

// LeaveGroup leaves group on nic, whatever its source filter; a nil nic
// leaves the first membership of the group. EADDRNOTAVAIL when not joined.
func (e *Endpoint) LeaveGroup(nic *stack.NIC, group netip.Addr) error {
	if nic == nil && e.s.DefaultMulticastNIC(group) == nil {
		return syscall.ENODEV
	}
	m := e.groups()
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	i := m.find(group, nic)
	if i < 0 {
		return syscall.EADDRNOTAVAIL
	}
	x := m.list[i]
	m.remove(i)
	x.nic.ChangeMembership(group, x.filter, multicast.Filter{})
	return nil
}

// JoinSourceGroup adds src to an INCLUDE-mode membership of group on nic,
// joining it if needed. An any-source membership whose block list is
// empty switches to INCLUDE, as on Linux; one that blocks sources gives
// EINVAL. A source already listed gives EADDRNOTAVAIL, one past
// MaxSourceFilter ENOBUFS.
func (e *Endpoint) JoinSourceGroup(nic *stack.NIC, group, src netip.Addr) error {
	nic, err := e.lockGroup(nic, group)
	if err != nil {
		return err
	}
	m := e.groups()
	defer m.mu.Unlock()
	i := m.find(group, nic)
	if i < 0 {
		if len(m.list) >= MaxMemberships {
			return syscall.ENOBUFS
		}
		// INCLUDE{} is no membership yet; the source added below makes it one.
		m.list = append(m.list, &membership{group: group, nic: nic, filter: multicast.Filter{Mode: multicast.Include}})
		i = len(m.list) - 1
	}
	return m.sourceLocked(i, true, multicast.Include, src)
}

// LeaveSourceGroup removes src from an INCLUDE-mode membership; removing
// the last source leaves the group. EINVAL without such a membership,
// EADDRNOTAVAIL when src is not listed.
func (e *Endpoint) LeaveSourceGroup(nic *stack.NIC, group, src netip.Addr) error {
	return e.changeSource(nic, group, src, false, multicast.Include)
}

// BlockSource excludes src from an any-source membership
// (MCAST_BLOCK_SOURCE). EINVAL without one, EADDRNOTAVAIL when already
// blocked, ENOBUFS past MaxSourceFilter.
func (e *Endpoint) BlockSource(nic *stack.NIC, group, src netip.Addr) error {
	return e.changeSource(nic, group, src, true, multicast.Exclude)
}

// UnblockSource lets src in again (MCAST_UNBLOCK_SOURCE). EINVAL without
// an any-source membership, EADDRNOTAVAIL when src is not blocked.
func (e *Endpoint) UnblockSource(nic *stack.NIC, group, src netip.Addr) error {
	return e.changeSource(nic, group, src, false, multicast.Exclude)
}

func (e *Endpoint) changeSource(nic *stack.NIC, group, src netip.Addr, add bool, mode multicast.FilterMode) error {
	nic, err := e.groupNIC(nic, group)
	if err != nil {
		return err
	}
	m := e.groups()
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	i := m.find(group, nic)
	if i < 0 {
		return syscall.EINVAL // must have a prior join
	}
	return m.sourceLocked(i, add, mode, src)
}

// sourceLocked adds or removes one source of membership i in the given
// mode, like Linux's ip_mc_source. Filters are replaced, never modified,
// so the NIC sees the old one intact.
func (m *memberships) sourceLocked(i int, add bool, mode multicast.FilterMode, src netip.Addr) error {
	x := m.list[i]
	old := x.filter
	if len(old.Sources) > 0 && old.Mode != mode {
		return syscall.EINVAL
	}
	j := slices.Index(old.Sources, src)
	next := multicast.Filter{Mode: mode}
	switch {
	case !add && j < 0:
		return syscall.EADDRNOTAVAIL
	case !add && len(old.Sources) == 1 && mode == multicast.Include:
		// INCLUDE{} is no membership: leave the group.
		m.remove(i)
	case !add:
		next.Sources = slices.Delete(slices.Clone(old.Sources), j, j+1)
	case len(old.Sources) >= MaxSourceFilter:
		return syscall.ENOBUFS
	case j >= 0:
		return syscall.EADDRNOTAVAIL
	default:
		next.Sources = append(slices.Clone(old.Sources), src)
	}
	x.filter = next
	x.nic.ChangeMembership(x.group, old, next)
	return nil
}

// AcceptMulticast implements stack.TransportEndpoint: a datagram to group
// from src arriving on nic is wanted if the endpoint's membership of the
// group on that NIC lets src in; without one, if IP_MULTICAST_ALL is on
// (the default) and the NIC receives it for some other socket, as on Linux.
func (e *Endpoint) AcceptMulticast(group, src netip.Addr, nic stack.NICID) bool {
	if m := e.mcast.Load(); m != nil {
		m.mu.Lock()
		for _, x := range m.list {
			if x.group == group && x.nic.ID() == nic {
				ok := x.filter.Allows(src)
				m.mu.Unlock()
				return ok
			}
		}
		m.mu.Unlock()
	}
	e.mu.RLock()
	all := e.opts.MulticastAll
	e.mu.RUnlock()
	if !all {
		return false
	}
	n := e.s.NIC(nic)
	return n != nil && n.AcceptsMulticast(group, src)
}

// Options returns the endpoint's IP options.
func (e *Endpoint) Options() Options {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.opts
}

// UpdateOptions changes IP options atomically: f edits a copy, which then
// applies to later sends (a connected endpoint keeps the route it chose).
func (e *Endpoint) UpdateOptions(f func(*Options)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	o := e.opts
	f(&o)
	e.opts = o
}
