package stack

import (
	"net/netip"

	"github.com/tapnet/tapnet/internal/buffer"
)

// inputHook lets a test see every IP packet the stack hands to a transport,
// as a raw socket would, before the transport parses it.
type inputHook struct {
	TransportProtocol
	see func(ip []byte)
}

func (h inputHook) Parse(pkt *buffer.Buffer, off int, src, dst netip.Addr) (uint16, uint16, int, int, error) {
	h.see(pkt.Bytes()[:off])
	return h.TransportProtocol.Parse(pkt, off, src, dst)
}

// HookInput calls see with the IP header of every packet of protocol proto
// delivered to s (looped copies included). Call it before traffic flows.
func HookInput(s *Stack, proto uint8, see func(ip []byte)) {
	s.transports[proto] = inputHook{s.transports[proto], see}
}
