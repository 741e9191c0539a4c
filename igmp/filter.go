package igmp

import (
	"net/netip"
	"slices"

	"github.com/tapnet/tapnet/internal/mcast"
	"github.com/tapnet/tapnet/ipv4"
)

// FilterMode is a multicast source filter mode (RFC 3376 3.1).
type FilterMode uint8

// Filter modes. The values are IGMPv3's MODE_IS_INCLUDE and
// MODE_IS_EXCLUDE record types.
const (
	Include FilterMode = ipv4.ModeIsInclude // only the listed sources
	Exclude FilterMode = ipv4.ModeIsExclude // all but the listed sources
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

// core and fromCore convert to and from the shared core's filter, whose
// modes have the same values.
func (f Filter) core() mcast.Filter {
	return mcast.Filter{Mode: mcast.FilterMode(f.Mode), Sources: f.Sources}
}

func fromCore(f mcast.Filter) Filter { return Filter{Mode: FilterMode(f.Mode), Sources: f.Sources} }
