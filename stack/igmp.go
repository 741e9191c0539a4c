package stack

import (
	"net/netip"

	"github.com/tapnet/tapnet/internal/buffer"
)

var allHosts = netip.AddrFrom4([4]byte{224, 0, 0, 1})

// acceptsGroup reports whether the NIC listens to a multicast group: the
// all-hosts group, or one some socket joined.
func (n *NIC) acceptsGroup(g netip.Addr) bool {
	if g == allHosts {
		return true
	}
	n.groupsMu.Lock()
	defer n.groupsMu.Unlock()
	return n.groups[g] > 0
}

// handleIGMP consumes IGMP messages. Group management (reports, queries)
// is not implemented yet; messages are counted as delivered and dropped.
func (s *Stack) handleIGMP(_ *NIC, b *buffer.Buffer, _ int, _ castKind) {
	b.ReleaseChain()
}
