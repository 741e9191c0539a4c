package gonet

import (
	"net"

	"github.com/tapnet/tapnet/internal/udpsock"
)

// SetDontFragment mirrors IP_MTU_DISCOVER = IP_PMTUDISC_DO: datagrams are
// sent with the DF bit and never fragmented locally, so a datagram larger
// than the path MTU (the link's, or a smaller one learned from an ICMP
// "fragmentation needed" or Packet Too Big in the last 10 minutes) fails
// with EMSGSIZE instead (what path-MTU discovery relies on). Off by
// default: without it datagrams go out without DF and are fragmented to the
// path MTU. Linux's default for UDP differs on the wire (IP_PMTUDISC_WANT
// sets DF on every datagram that fits the path MTU); what a socket sees is
// the same, EMSGSIZE only with IP_PMTUDISC_DO.
func (c *UDPConn) SetDontFragment(on bool) error {
	if c.ep.State() == udpsock.StateClosed {
		return c.setErr(net.ErrClosed)
	}
	c.ep.UpdateOptions(func(o *udpsock.Options) { o.DontFragment = on })
	return nil
}
