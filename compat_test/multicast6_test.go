package compat

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/tapnet/tapnet/gonet"
	"github.com/tapnet/tapnet/stack"
)

// MulticastConn6 is the method set of golang.org/x/net/ipv6's *PacketConn
// that multicast code uses; the kernel's (ipv6.NewPacketConn over a
// *net.UDPConn) and tapnet's (gonet.NewPacketConn6) both have it.
type MulticastConn6 interface {
	JoinGroup(ifi *net.Interface, group net.Addr) error
	LeaveGroup(ifi *net.Interface, group net.Addr) error
	JoinSourceSpecificGroup(ifi *net.Interface, group, source net.Addr) error
	LeaveSourceSpecificGroup(ifi *net.Interface, group, source net.Addr) error
	ExcludeSourceSpecificGroup(ifi *net.Interface, group, source net.Addr) error
	IncludeSourceSpecificGroup(ifi *net.Interface, group, source net.Addr) error
	MulticastInterface() (*net.Interface, error)
	SetMulticastInterface(ifi *net.Interface) error
	MulticastHopLimit() (int, error)
	SetMulticastHopLimit(hoplim int) error
	MulticastLoopback() (bool, error)
	SetMulticastLoopback(on bool) error
	TrafficClass() (int, error)
	SetTrafficClass(tclass int) error
	HopLimit() (int, error)
	SetHopLimit(hoplim int) error
	ICMPFilter() (*ipv6.ICMPFilter, error)
	SetICMPFilter(f *ipv6.ICMPFilter) error
	SetBPF(filter []bpf.RawInstruction) error
	SetControlMessage(cf ipv6.ControlFlags, on bool) error
	ReadFrom(b []byte) (n int, cm *ipv6.ControlMessage, src net.Addr, err error)
	WriteTo(b []byte, cm *ipv6.ControlMessage, dst net.Addr) (n int, err error)
	ReadBatch(ms []ipv6.Message, flags int) (int, error)
	WriteBatch(ms []ipv6.Message, flags int) (int, error)
	SetDeadline(t time.Time) error
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
	Close() error
	LocalAddr() net.Addr
}

var (
	_ MulticastConn6 = (*ipv6.PacketConn)(nil)
	_ MulticastConn6 = (*gonet.PacketConn6)(nil)
)

// mcMessage is x/net's batch message: ipv4.Message and ipv6.Message are
// both socket.Message.
type mcMessage = ipv4.Message

// mcCM is a received or sent control message of either family: the hop
// limit (TTL), source, destination and interface.
type mcCM struct {
	hops     int
	src, dst net.IP
	ifindex  int
}

// mcFlags are the control messages a scenario asks for.
type mcFlags uint8

const (
	mcHops mcFlags = 1 << iota
	mcDst
	mcIface
)

// mcConn is what the multicast scenarios drive: x/net's PacketConn of
// either family, its hop limit options under one name.
type mcConn interface {
	JoinGroup(ifi *net.Interface, group net.Addr) error
	LeaveGroup(ifi *net.Interface, group net.Addr) error
	JoinSourceSpecificGroup(ifi *net.Interface, group, source net.Addr) error
	LeaveSourceSpecificGroup(ifi *net.Interface, group, source net.Addr) error
	ExcludeSourceSpecificGroup(ifi *net.Interface, group, source net.Addr) error
	IncludeSourceSpecificGroup(ifi *net.Interface, group, source net.Addr) error
	SetMulticastInterface(ifi *net.Interface) error
	MulticastLoopback() (bool, error)
	SetMulticastLoopback(on bool) error
	MulticastHops() (int, error)
	SetMulticastHops(n int) error
	SetHops(n int) error
	SetControlMessage(cf mcFlags, on bool) error
	ReadFrom(b []byte) (n int, cm *mcCM, src net.Addr, err error)
	WriteTo(b []byte, cm *mcCM, dst net.Addr) (n int, err error)
	ReadBatch(ms []mcMessage, flags int) (int, error)
	WriteBatch(ms []mcMessage, flags int) (int, error)
	SetReadDeadline(t time.Time) error
	Close() error
	LocalAddr() net.Addr
}

// mc4 adapts an x/net/ipv4-shaped conn.
type mc4 struct{ MulticastConn }

func (c mc4) MulticastHops() (int, error)  { return c.MulticastTTL() }
func (c mc4) SetMulticastHops(n int) error { return c.SetMulticastTTL(n) }
func (c mc4) SetHops(n int) error          { return c.SetTTL(n) }

func (c mc4) SetControlMessage(cf mcFlags, on bool) error {
	var f ipv4.ControlFlags
	if cf&mcHops != 0 {
		f |= ipv4.FlagTTL
	}
	if cf&mcDst != 0 {
		f |= ipv4.FlagDst
	}
	if cf&mcIface != 0 {
		f |= ipv4.FlagInterface
	}
	return c.MulticastConn.SetControlMessage(f, on)
}

func (c mc4) ReadFrom(b []byte) (int, *mcCM, net.Addr, error) {
	n, cm, src, err := c.MulticastConn.ReadFrom(b)
	return n, fromCM4(cm), src, err
}

func (c mc4) WriteTo(b []byte, cm *mcCM, dst net.Addr) (int, error) {
	var cm4 *ipv4.ControlMessage
	if cm != nil {
		cm4 = &ipv4.ControlMessage{TTL: cm.hops, Src: cm.src, IfIndex: cm.ifindex}
	}
	return c.MulticastConn.WriteTo(b, cm4, dst)
}

func fromCM4(cm *ipv4.ControlMessage) *mcCM {
	if cm == nil {
		return nil
	}
	return &mcCM{hops: cm.TTL, src: cm.Src, dst: cm.Dst, ifindex: cm.IfIndex}
}

// mc6 adapts an x/net/ipv6-shaped conn.
type mc6 struct{ MulticastConn6 }

func (c mc6) MulticastHops() (int, error)  { return c.MulticastHopLimit() }
func (c mc6) SetMulticastHops(n int) error { return c.SetMulticastHopLimit(n) }
func (c mc6) SetHops(n int) error          { return c.SetHopLimit(n) }

func (c mc6) SetControlMessage(cf mcFlags, on bool) error {
	var f ipv6.ControlFlags
	if cf&mcHops != 0 {
		f |= ipv6.FlagHopLimit
	}
	if cf&mcDst != 0 {
		f |= ipv6.FlagDst
	}
	if cf&mcIface != 0 {
		f |= ipv6.FlagInterface
	}
	return c.MulticastConn6.SetControlMessage(f, on)
}

func (c mc6) ReadFrom(b []byte) (int, *mcCM, net.Addr, error) {
	n, cm, src, err := c.MulticastConn6.ReadFrom(b)
	return n, fromCM6(cm), src, err
}

func (c mc6) WriteTo(b []byte, cm *mcCM, dst net.Addr) (int, error) {
	var cm6 *ipv6.ControlMessage
	if cm != nil {
		cm6 = &ipv6.ControlMessage{HopLimit: cm.hops, Src: cm.src, IfIndex: cm.ifindex}
	}
	return c.MulticastConn6.WriteTo(b, cm6, dst)
}

func fromCM6(cm *ipv6.ControlMessage) *mcCM {
	if cm == nil {
		return nil
	}
	return &mcCM{hops: cm.HopLimit, src: cm.Src, dst: cm.Dst, ifindex: cm.IfIndex}
}

// mcFamily is one run of the multicast table: its groups, what its
// control messages look like on the wire, and how its option names read.
type mcFamily struct {
	suffix     string // subject name suffix: "" for IGMP
	v6         bool
	g1, g2     *net.UDPAddr
	otherGroup *net.UDPAddr      // a group of the other family, which joins refuse
	names      *strings.Replacer // IPv4 option names in labels to the family's
	hopsName   string            // the hop limit in a rendered control message
	newOOB     func(cf mcFlags) []byte
	ifIndexOOB func(ifindex int) []byte
	parseOOB   func(oob []byte) (*mcCM, error)
}

var igmpFamily = &mcFamily{
	g1:         &net.UDPAddr{IP: net.IPv4(239, 1, 2, 3).To4()},
	g2:         &net.UDPAddr{IP: net.IPv4(239, 1, 2, 4).To4()},
	otherGroup: &net.UDPAddr{IP: net.ParseIP("ff02::1")},
	names:      strings.NewReplacer(),
	hopsName:   "ttl",
	newOOB: func(cf mcFlags) []byte {
		var f ipv4.ControlFlags
		if cf&mcHops != 0 {
			f |= ipv4.FlagTTL
		}
		if cf&mcDst != 0 {
			f |= ipv4.FlagDst
		}
		return ipv4.NewControlMessage(f)
	},
	ifIndexOOB: func(i int) []byte { return (&ipv4.ControlMessage{IfIndex: i}).Marshal() },
	parseOOB: func(oob []byte) (*mcCM, error) {
		var cm ipv4.ControlMessage
		err := cm.Parse(oob)
		return fromCM4(&cm), err
	},
}

// mldFamily runs the table over global-scope IPv6 groups, G1 any-source
// (ff0e::), G2 in the source-specific range (ff3e::/96; Linux filters
// both alike, and G1 there gives the same table), with x/net/ipv6's
// names: HopLimit for TTL.
var mldFamily = &mcFamily{
	suffix:     "-mld",
	v6:         true,
	g1:         &net.UDPAddr{IP: net.ParseIP("ff0e::db8:1")},
	g2:         &net.UDPAddr{IP: net.ParseIP("ff3e::8000:2")},
	otherGroup: &net.UDPAddr{IP: net.IPv4(239, 1, 2, 3).To4()},
	names:      strings.NewReplacer("TTL", "HopLimit", "IPv6", "IPv4"),
	hopsName:   "hops",
	newOOB: func(cf mcFlags) []byte {
		var f ipv6.ControlFlags
		if cf&mcHops != 0 {
			f |= ipv6.FlagHopLimit
		}
		if cf&mcDst != 0 {
			f |= ipv6.FlagDst
		}
		return ipv6.NewControlMessage(f)
	},
	ifIndexOOB: func(i int) []byte { return (&ipv6.ControlMessage{IfIndex: i}).Marshal() },
	parseOOB: func(oob []byte) (*mcCM, error) {
		var cm ipv6.ControlMessage
		err := cm.Parse(oob)
		return fromCM6(&cm), err
	},
}

// tapnetMLDSubject is three tapnet stacks on an in-memory switch with
// IPv6 addresses (no DAD: the hub is theirs alone).
func tapnetMLDSubject() mcSubject {
	return mcSubject{name: "tapnet-hub", hosts: func(t *testing.T) [3]*mcHost {
		addrs := [3]netip.Prefix{netip.MustParsePrefix("2001:db8::2/64"), netip.MustParsePrefix("2001:db8::1/64"), netip.MustParsePrefix("2001:db8::3/64")}
		opts := stack.NICOptions{IPv6: stack.IPv6Options{DADTransmits: -1}}
		return hubHosts(t, addrs, opts, func(s *stack.Stack, ifi *net.Interface, h *mcHost) {
			h.listen = func(ip netip.Addr, port int) (mcConn, error) {
				c, err := gonet.ListenUDP(s, "udp6", &net.UDPAddr{IP: ip.AsSlice(), Port: port})
				if err != nil {
					return nil, err
				}
				return mc6{gonet.NewPacketConn6(c)}, nil
			}
			h.listenGroup = func(g *net.UDPAddr) (mcConn, error) {
				c, err := gonet.ListenMulticastUDP(s, "udp6", ifi, g)
				if err != nil {
					return nil, err
				}
				return mc6{gonet.NewPacketConn6(c)}, nil
			}
		})
	}}
}
