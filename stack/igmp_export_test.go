package stack

// Limits and state the IGMP tests check from package stack_test.
const (
	MaxQuerySourcesPerGroup = maxQuerySourcesPerGroup
	MaxQuerySourcesPerNIC   = maxQuerySourcesPerNIC
)

// QuerySourcesRecorded returns how many query sources n keeps for pending
// answers, or -1 when the NIC's running total disagrees with its groups.
func QuerySourcesRecorded(n *NIC) int {
	h := &n.igmp
	h.mu.Lock()
	defer h.mu.Unlock()
	sum := 0
	for _, g := range h.groups {
		sum += len(g.querySrcs)
	}
	if sum != h.querySrcs {
		return -1
	}
	return sum
}
