// Package multicast holds the types IGMP (package igmp) and MLD (package
// mld) share at their edges: a socket's source filter for one group and
// the hooks that connect a listener host to its interface. It knows no
// wire format and no protocol, so the socket layer and the stack can keep
// one filter type for IPv4 and IPv6 groups alike.
//
// Packages igmp and mld name these types under their own names too
// (igmp.Filter, mld.Filter, igmp.Hooks, …); both spellings are the same
// type.
package multicast

import (
	"net/netip"
	"slices"
	"time"
)

// FilterMode is a multicast source filter mode (RFC 3376 3.1, RFC 3810
// 2.2).
type FilterMode uint8

// Filter modes. The values are the MODE_IS_INCLUDE and MODE_IS_EXCLUDE
// record types of both IGMPv3 and MLDv2.
const (
	Include FilterMode = 1 // only the listed sources
	Exclude FilterMode = 2 // all but the listed sources
)

// Filter is a socket's (or an interface's) reception state for one group.
// INCLUDE with no sources, the zero value's meaning, is "not a member".
type Filter struct {
	Mode    FilterMode
	Sources []netip.Addr
}

// Member reports whether the filter receives anything.
func (f Filter) Member() bool { return f.Mode == Exclude || len(f.Sources) > 0 }

// Allows reports whether the filter receives datagrams from src.
func (f Filter) Allows(src netip.Addr) bool {
	return slices.Contains(f.Sources, src) != (f.Mode == Exclude)
}

// Hooks connect a listener host (igmp.Host, mld.Host) to the interface it
// serves. What a message holds and how it must be sent is the protocol's:
// see igmp.Hooks and mld.Hooks.
type Hooks struct {
	// Send transmits msg to dst. msg is valid only during the call. Send
	// is called from Fire, without the host's lock held, one message at a
	// time. A nil Send makes a silent host, as on a loopback interface:
	// it tracks membership and never reports.
	Send func(dst netip.Addr, msg []byte)
	// Schedule asks for Fire to be called after d, replacing the previous
	// request; a negative d withdraws it (nothing is pending). Calls are
	// made with the host's lock held, hence one at a time: Schedule must
	// not block or call into the host (resetting a time.Timer is right).
	// With a nil Schedule the caller polls Deadline instead.
	Schedule func(d time.Duration)
}
