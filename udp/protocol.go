// Package udp implements UDP (RFC 768) for tapnet: its wire format and the
// endpoint behind every socket — states, binding and connecting through the
// stack's demultiplexer, a receive queue bounded in bytes, blocking reads
// with cancellation, ICMP errors turned into socket errors, and sends that
// build the header in the caller's goroutine.
//
// Importing the package registers UDP with every stack created afterwards
// (stack.RegisterTransportProtocol). Users normally reach endpoints through
// gonet, which wraps them in net.PacketConn and net.Conn.
package udp

import (
	"net/netip"

	"github.com/tapnet/tapnet/stack"
)

func init() { stack.RegisterTransportProtocol(protocol{}) }

type protocol struct{}

func (protocol) Number() uint8 { return ProtocolNumber }

func (protocol) Parse(b []byte, total int, rest uint64, src, dst netip.Addr) (uint16, uint16, int, int, error) {
	h, err := ParseHeader(b, total, rest, src, dst)
	if err != nil {
		if err == ErrChecksum {
			err = stack.ErrBadChecksum
		}
		return 0, 0, 0, 0, err
	}
	return h.SrcPort(), h.DstPort(), HeaderLen, h.Length() - HeaderLen, nil
}
