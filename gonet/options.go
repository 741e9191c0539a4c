package gonet

import (
	"net"

	"github.com/tapnet/tapnet/internal/udpsock"
)

// SetDontFragment sets IP_MTU_DISCOVER for IPv4. With on, it is
// IP_PMTUDISC_DO: datagrams are sent with the DF bit and never fragmented
// locally, so a datagram larger than the path MTU (the link's, or a smaller
// one learned from an ICMP "fragmentation needed" or Packet Too Big in the
// last 10 minutes) fails with EMSGSIZE instead (what path-MTU discovery
// relies on). With off, it is IP_PMTUDISC_DONT: no DF at all, datagrams
// fragmented to the path MTU. Until it is called a socket has Linux's UDP
// default, IP_PMTUDISC_WANT: DF on every datagram that fits the path MTU,
// larger ones fragmented locally (the fragments without DF), and no
// EMSGSIZE.
func (c *UDPConn) SetDontFragment(on bool) error {
	if c.ep.State() == udpsock.StateClosed {
		return c.setErr(net.ErrClosed)
	}
	mode := udpsock.PMTUDiscoveryDont
	if on {
		mode = udpsock.PMTUDiscoveryDo
	}
	c.ep.UpdateOptions(func(o *udpsock.Options) { o.PMTUDiscovery = mode })
	return nil
}
