package dhcpclient

import "sync/atomic"

// Stats count a client's exchanges and the replies it ignored.
type Stats struct {
	Discovers, Requests, Declines, Releases atomic.Uint64 // sent
	Offers, Acks, Naks                      atomic.Uint64 // accepted
	Renewed, Rebound, Expired               atomic.Uint64 // lease transitions
	RequestTimeouts                         atomic.Uint64 // REQUESTs unanswered: back to DISCOVER

	// Replies ignored, by reason.
	NotForUs   atomic.Uint64 // not a BOOTREPLY to our hardware address
	WrongXID   atomic.Uint64 // no request of ours has that transaction ID
	Malformed  atomic.Uint64 // undecodable, or no known message type
	Unexpected atomic.Uint64 // a valid message the state does not take
	BadAddress atomic.Uint64 // offered address unusable
	BadMask    atomic.Uint64 // subnet mask missing, bogus, /0 or /32
	BadServer  atomic.Uint64 // server identifier missing or unusable
	BadLease   atomic.Uint64 // lease time missing or zero
	BadRouter  atomic.Uint64 // router or route gateway off the subnet
}

func (s *Stats) countBad(err error) {
	switch err {
	case errBadAddress:
		s.BadAddress.Add(1)
	case errBadMask:
		s.BadMask.Add(1)
	case errBadServer:
		s.BadServer.Add(1)
	case errBadLease:
		s.BadLease.Add(1)
	case errBadRouter:
		s.BadRouter.Add(1)
	default:
		s.Malformed.Add(1)
	}
}

// Ignored returns the number of replies ignored for any reason.
func (s *Stats) Ignored() uint64 {
	return s.NotForUs.Load() + s.WrongXID.Load() + s.Malformed.Load() + s.Unexpected.Load() +
		s.BadAddress.Load() + s.BadMask.Load() + s.BadServer.Load() + s.BadLease.Load() + s.BadRouter.Load()
}
