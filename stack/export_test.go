package stack

// HookUDPInput calls see with the IP header of every UDP datagram delivered
// to s (looped copies included), as a raw socket would see it. Call it
// before traffic flows.
func HookUDPInput(s *Stack, see func(ip []byte)) { s.udpInputHook = see }

// ExpireReassembly expires incomplete reassemblies now rather than at the
// next housekeeping tick.
func ExpireReassembly(s *Stack) { s.reasm.Expire() }
