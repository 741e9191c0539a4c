package igmp

import "github.com/tapnet/tapnet/multicast"

// FilterMode is a multicast source filter mode (RFC 3376 3.1); the same type
// as multicast.FilterMode, shared by igmp and mld.
type FilterMode = multicast.FilterMode

// Filter modes. The values are IGMPv3's MODE_IS_INCLUDE and
// MODE_IS_EXCLUDE record types.
const (
	Include = multicast.Include // only the listed sources
	Exclude = multicast.Exclude // all but the listed sources
)

// Filter is a socket's (or an interface's) reception state for one group;
// the same type as multicast.Filter, shared by igmp and mld. INCLUDE with
// no sources, the zero value's meaning, is "not a member".
type Filter = multicast.Filter
