// Package udp implements UDP's wire format (RFC 768): a header view,
// parsing with checksum verification and header construction.
//
// Importing the package registers UDP with every stack created afterwards
// (stack.RegisterTransportProtocol). The socket endpoint behind gonet's
// conns lives in an internal package.
package udp

import (
	"net/netip"

	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/internal/checksum"

	"github.com/tapnet/tapnet/stack"
)

func init() { stack.RegisterTransportProtocol(protocol{}) }

type protocol struct{}

func (protocol) Number() uint8 { return ProtocolNumber }

func (protocol) Parse(pkt *buffer.Buffer, off int, src, dst netip.Addr) (uint16, uint16, int, int, error) {
	b := pkt.Bytes()[off:]
	total := len(b)
	var rest uint64
	if pkt.Next != nil {
		// A reassembled datagram: the checksum covers the length field's
		// bytes, which may end before the last part (Linux trims to it).
		total = pkt.ChainLen() - off
		want := total
		if len(b) >= HeaderLen {
			want = min(Header(b).Length(), total)
		}
		want -= len(b)
		for p := pkt.Next; p != nil && want > 0; p = p.Next {
			part := p.Bytes()[:min(p.Len(), want)]
			rest = checksum.Sum(part, rest)
			want -= len(part)
		}
	}
	h, err := ParseHeader(b, total, rest, src, dst)
	if err != nil {
		if err == ErrChecksum {
			err = stack.ErrBadChecksum
		}
		return 0, 0, 0, 0, err
	}
	return h.SrcPort(), h.DstPort(), HeaderLen, h.Length() - HeaderLen, nil
}
