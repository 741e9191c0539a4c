package neigh

// State is a neighbour entry's state: RFC 4861's neighbour unreachability
// detection states, as Linux names them NUD_*. An entry that fails is
// removed, so there is no FAILED state to observe.
type State uint8

const (
	// Incomplete: solicitations are out and packets wait for the answer.
	Incomplete State = iota + 1
	// Reachable: confirmed within the reachable time.
	Reachable
	// Stale: its address is usable but unconfirmed; the next packet sent
	// to it starts Delay.
	Stale
	// Delay: a packet went out on a stale address; probing starts after
	// DelayFirstProbeTime unless reachability is confirmed first.
	Delay
	// Probe: unicast solicitations are out; the address stays in use
	// until MaxUnicastProbes of them go unanswered.
	Probe
)

// String returns the state's name in lower case, as `ip neigh` prints
// it: "incomplete", "reachable", "stale", "delay", "probe", or "none" for
// the zero State (no entry).
func (s State) String() string {
	switch s {
	case Incomplete:
		return "incomplete"
	case Reachable:
		return "reachable"
	case Stale:
		return "stale"
	case Delay:
		return "delay"
	case Probe:
		return "probe"
	}
	return "none"
}
