package udp

import (
	"net/netip"

	"github.com/tapnet/tapnet/stack"
)

// memberships are the multicast groups an endpoint joined. Group management
// is not implemented yet: the type only gives Close something to undo.
type memberships struct{}

func (m *memberships) leaveAll(*stack.Stack) {}

// AcceptMulticast implements stack.TransportEndpoint.
func (e *Endpoint) AcceptMulticast(group, src netip.Addr, nic stack.NICID) bool { return true }
