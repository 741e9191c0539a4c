package stack

import (
	"net/netip"
	"time"

	"github.com/tapnet/tapnet/internal/buffer"
	"github.com/tapnet/tapnet/ipv6"
	"github.com/tapnet/tapnet/neigh"
)

// HookUDPInput calls see with the IP header of every UDP datagram delivered
// to s (looped copies included), as a raw socket would see it. Call it
// before traffic flows.
func HookUDPInput(s *Stack, see func(ip []byte)) { s.udpInputHook = see }

// ExpireReassembly expires incomplete reassemblies now rather than at the
// next housekeeping tick.
func ExpireReassembly(s *Stack) { s.reasm.Expire() }

// HookICMPv6Input calls see with every valid ICMPv6 message s receives.
// Call it before traffic flows.
func HookICMPv6Input(s *Stack, see func(src netip.Addr, m []byte)) { s.icmp6Hook = see }

// SendICMPv6 sends an ICMPv6 message of type typ with rest-of-header rest
// and body to dst (through nic, which link-local destinations need), as a
// ping socket would.
func SendICMPv6(s *Stack, nic NICID, dst netip.Addr, typ uint8, rest uint32, body []byte) error {
	r, err := s.FindRoute(nic, netip.Addr{}, dst)
	if err != nil {
		return err
	}
	b := buffer.Get(ipv6.ICMPHeaderLen + len(body))
	b.SetLen(ipv6.ICMPHeaderLen)
	b.Append(body)
	ipv6.PutICMPHeader(b.Bytes(), typ, 0, rest)
	ipv6.PutChecksum(b.Bytes(), r.LocalAddr, r.RemoteAddr)
	return s.writePacket(&r, ipv6.ProtocolICMPv6, b, WriteOptions{})
}

// SendNDP sends msg, an NDP message without its checksum, from nic's
// link-local address to dst with hop limit 255, as a router would.
func SendNDP(s *Stack, nic NICID, dst netip.Addr, msg []byte) error {
	n := s.NIC(nic)
	src, _ := n.LinkLocalAddress()
	b := buffer.Get(len(msg))
	b.SetLen(len(msg))
	copy(b.Bytes(), msg)
	n.sendNDP(b, len(msg), src, dst, [6]byte{})
	return nil
}

// ExpireReassembly6 expires incomplete IPv6 reassemblies now.
func ExpireReassembly6(s *Stack) { s.v6.reasm.Expire() }

// SetIPv6Clock makes neighbour discovery, DAD, router solicitation and
// address lifetimes of s run on now and afterFunc. Call it before AddNIC.
func SetIPv6Clock(s *Stack, now func() time.Time, afterFunc func(time.Duration, func()) neigh.Timer) {
	s.v6.now, s.v6.afterFunc = now, afterFunc
}

// SetPathMTUClock makes the path MTU cache of s expire entries by now.
func SetPathMTUClock(s *Stack, now func() time.Time) { s.pmtu.now = now }
