package mcast

import (
	"fmt"
	"net/netip"
)

// CheckInvariants returns an error when the host's bookkeeping disagrees
// with its groups: the running count of query sources, the caps, idle
// non-members kept, counts gone non-positive. Tests and fuzz targets of
// the codecs call it after every step.
func (h *Host) CheckInvariants() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	sum := 0
	for a, g := range h.groups {
		if a != g.addr {
			return fmt.Errorf("group %v filed under %v", g.addr, a)
		}
		if !g.member() && g.idle() {
			return fmt.Errorf("idle non-member %v kept", a)
		}
		if len(g.querySrcs) > MaxQuerySourcesPerGroup {
			return fmt.Errorf("%v keeps %d query sources", a, len(g.querySrcs))
		}
		for _, m := range []map[netip.Addr]int{g.incl, g.excl} {
			for s, c := range m {
				if c <= 0 {
					return fmt.Errorf("%v: count %d for source %v", a, c, s)
				}
			}
		}
		if g.exclSockets < 0 {
			return fmt.Errorf("%v: %d excluding sockets", a, g.exclSockets)
		}
		sum += len(g.querySrcs)
	}
	if sum != h.querySrcs || sum > MaxQuerySourcesPerHost {
		return fmt.Errorf("query sources: running count %d, groups hold %d", h.querySrcs, sum)
	}
	return nil
}
