package mcast

import (
	"net/netip"
	"slices"
	"time"

	"github.com/tapnet/tapnet/multicast"
)

// The filter types are the public ones, so that igmp and mld hand them
// through unconverted; their modes' values are the record types
// ModeIsInclude and ModeIsExclude (wire_test.go checks).
type (
	FilterMode = multicast.FilterMode
	Filter     = multicast.Filter
)

// Filter modes.
const (
	Include = multicast.Include // only the listed sources
	Exclude = multicast.Exclude // all but the listed sources
)

func equalFilter(a, b Filter) bool {
	return a.Mode == b.Mode && slices.Equal(a.Sources, b.Sources)
}

// group is one group's state on the interface.
type group struct {
	addr netip.Addr
	// Socket filters, merged (RFC 3376 3.2, RFC 3810 4.2): how many
	// sockets are in EXCLUDE mode, and per source how many INCLUDE-mode
	// sockets list it and how many EXCLUDE-mode sockets list it.
	exclSockets int
	incl, excl  map[netip.Addr]int

	// V3 state-change retransmissions still due: of the filter mode, or
	// per source of an ALLOW/BLOCK record.
	modeRetrans int
	srcRetrans  map[netip.Addr]int

	// A pending answer to a query for this group (V1/V2 reports, V3
	// group-specific and group-and-source-specific queries). querySrcs
	// holds only sources the answer would list, at most
	// MaxQuerySourcesPerGroup.
	due       time.Time
	srcQuery  bool
	querySrcs map[netip.Addr]struct{}

	// V1/V2: unsolicited reports left to send, and whether we sent the
	// last report heard on the link (then we send the leave).
	unsolicited int
	unsolDue    time.Time
	reporter    bool
}

func newGroup(addr netip.Addr) *group {
	return &group{addr: addr, incl: map[netip.Addr]int{}, excl: map[netip.Addr]int{}}
}

func (g *group) member() bool { return g.exclSockets > 0 || len(g.incl) > 0 }

// idle reports whether nothing is pending, so a non-member can be dropped.
func (g *group) idle() bool { return g.modeRetrans == 0 && len(g.srcRetrans) == 0 }

// state returns the interface state: EXCLUDE if any socket excludes, with
// the sources every excluding socket excludes and no including socket
// includes; INCLUDE otherwise, with every included source. Sorted.
func (g *group) state() Filter {
	var f Filter
	if g.exclSockets > 0 {
		f.Mode = Exclude
		for s, c := range g.excl {
			if c == g.exclSockets && g.incl[s] == 0 {
				f.Sources = append(f.Sources, s)
			}
		}
	} else {
		f.Mode = Include
		for s := range g.incl {
			f.Sources = append(f.Sources, s)
		}
	}
	slices.SortFunc(f.Sources, netip.Addr.Compare)
	return f
}

// allows is state().Allows(src) without building the list.
func (g *group) allows(src netip.Addr) bool {
	if g.exclSockets > 0 {
		return g.excl[src] != g.exclSockets || g.incl[src] > 0
	}
	return g.incl[src] > 0
}

// account adds (d = 1) or removes (d = -1) one socket's filter.
func (g *group) account(f Filter, d int) {
	if !f.Member() {
		return
	}
	m := g.incl
	if f.Mode == Exclude {
		g.exclSockets += d
		m = g.excl
	}
	for _, s := range f.Sources {
		if m[s] += d; m[s] <= 0 {
			delete(m, s)
		}
	}
}

// symmetricDifference returns the sources in exactly one of two sorted
// lists.
func symmetricDifference(a, b []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, s := range a {
		if _, ok := slices.BinarySearchFunc(b, s, netip.Addr.Compare); !ok {
			out = append(out, s)
		}
	}
	for _, s := range b {
		if _, ok := slices.BinarySearchFunc(a, s, netip.Addr.Compare); !ok {
			out = append(out, s)
		}
	}
	return out
}
