package compat

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv4"

	"github.com/tapnet/tapnet/gonet"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

// MulticastConn is the method set of golang.org/x/net/ipv4's *PacketConn
// that multicast code uses. The kernel's (ipv4.NewPacketConn over a
// *net.UDPConn) and tapnet's (gonet.NewPacketConn) both have it, so one
// scenario table drives both.
type MulticastConn interface {
	JoinGroup(ifi *net.Interface, group net.Addr) error
	LeaveGroup(ifi *net.Interface, group net.Addr) error
	JoinSourceSpecificGroup(ifi *net.Interface, group, source net.Addr) error
	LeaveSourceSpecificGroup(ifi *net.Interface, group, source net.Addr) error
	ExcludeSourceSpecificGroup(ifi *net.Interface, group, source net.Addr) error
	IncludeSourceSpecificGroup(ifi *net.Interface, group, source net.Addr) error
	MulticastInterface() (*net.Interface, error)
	SetMulticastInterface(ifi *net.Interface) error
	MulticastTTL() (int, error)
	SetMulticastTTL(ttl int) error
	MulticastLoopback() (bool, error)
	SetMulticastLoopback(on bool) error
	TOS() (int, error)
	SetTOS(tos int) error
	TTL() (int, error)
	SetTTL(ttl int) error
	ICMPFilter() (*ipv4.ICMPFilter, error)
	SetICMPFilter(f *ipv4.ICMPFilter) error
	SetBPF(filter []bpf.RawInstruction) error
	SetControlMessage(cf ipv4.ControlFlags, on bool) error
	ReadFrom(b []byte) (n int, cm *ipv4.ControlMessage, src net.Addr, err error)
	WriteTo(b []byte, cm *ipv4.ControlMessage, dst net.Addr) (n int, err error)
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
	SetDeadline(t time.Time) error
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
	Close() error
	LocalAddr() net.Addr
}

var (
	_ MulticastConn = (*ipv4.PacketConn)(nil)
	_ MulticastConn = (*gonet.PacketConn)(nil)
)

// mcHost is one host of a multicast subject: its address, its interface
// on the shared link, and how to open sockets on it.
type mcHost struct {
	name string
	addr netip.Addr
	ifi  *net.Interface
	// listen binds ip:port (udp4 or udp6 by the table's family; the zero
	// ip is the unspecified address) and wraps the conn.
	listen func(ip netip.Addr, port int) (mcConn, error)
	// listenGroup is ListenMulticastUDP(ifi, group:port) wrapped.
	listenGroup func(group *net.UDPAddr) (mcConn, error)
}

// mcSubject builds three hosts on one link for each scenario: A observes,
// B and C send from different addresses.
type mcSubject struct {
	name  string
	hosts func(t *testing.T) [3]*mcHost
	// want holds deliberate differences from the table, by scenario; list
	// each in doc.go.
	want map[string][]string
}

const (
	mcSafety = 2 * time.Second
	mcQuiet  = 150 * time.Millisecond
)

func mcGroupPort(g *net.UDPAddr, port int) *net.UDPAddr { return &net.UDPAddr{IP: g.IP, Port: port} }

// hubHosts builds three tapnet stacks on an in-memory switch, with the
// addresses given (A, B, C), and opens sockets on them with open.
func hubHosts(t *testing.T, addrs [3]netip.Prefix, opts stack.NICOptions,
	wrap func(s *stack.Stack, ifi *net.Interface, h *mcHost)) [3]*mcHost {
	hub := tap.NewHub()
	var hs [3]*mcHost
	var ss []*stack.Stack
	t.Cleanup(func() {
		for _, s := range ss {
			s.Close()
		}
		hub.Close()
	})
	for i, name := range []string{"A", "B", "C"} {
		s := stack.New(stack.Options{})
		ss = append(ss, s)
		o := opts
		o.Addresses = []netip.Prefix{addrs[i]}
		if _, err := s.AddNIC(hub.Port(tap.HubPortOptions{}), o); err != nil {
			t.Fatal(err)
		}
		ifi, err := s.InterfaceByName("tap0")
		if err != nil {
			t.Fatal(err)
		}
		hs[i] = &mcHost{name: name, addr: addrs[i].Addr(), ifi: ifi}
		wrap(s, ifi, hs[i])
	}
	return hs
}

// tapnetMcSubject is three tapnet stacks on an in-memory switch.
func tapnetMcSubject(f *mcFamily) mcSubject {
	if f.v6 {
		return tapnetMLDSubject()
	}
	return mcSubject{name: "tapnet-hub", hosts: func(t *testing.T) [3]*mcHost {
		addrs := [3]netip.Prefix{netip.MustParsePrefix("192.0.2.2/24"), netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("192.0.2.3/24")}
		return hubHosts(t, addrs, stack.NICOptions{}, func(s *stack.Stack, ifi *net.Interface, h *mcHost) {
			h.listen = func(ip netip.Addr, port int) (mcConn, error) {
				c, err := gonet.ListenUDP(s, "udp4", &net.UDPAddr{IP: ip.AsSlice(), Port: port})
				if err != nil {
					return nil, err
				}
				return mc4{gonet.NewPacketConn(c)}, nil
			}
			h.listenGroup = func(g *net.UDPAddr) (mcConn, error) {
				c, err := gonet.ListenMulticastUDP(s, "udp4", ifi, g)
				if err != nil {
					return nil, err
				}
				return mc4{gonet.NewPacketConn(c)}, nil
			}
		})
	}}
}

// mcEnv is one scenario's view of a subject.
type mcEnv struct {
	t          *testing.T
	f          *mcFamily
	a, b, c    *mcHost
	obs        []string
	settleTime time.Duration
}

// rec records a line; the family renames the IPv4 option names in the
// format (TTL becomes HopLimit for MLD).
func (e *mcEnv) rec(format string, args ...any) {
	e.obs = append(e.obs, fmt.Sprintf(e.f.names.Replace(format), args...))
}

func (e *mcEnv) settle() { time.Sleep(e.settleTime) }

// open takes a new conn, failing the scenario if opening failed, and closes
// it at cleanup.
func (e *mcEnv) open(c mcConn, err error) mcConn {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("open: %v", err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// receiver opens a socket on h bound to the unspecified address and port.
func (e *mcEnv) receiver(h *mcHost, port int) mcConn {
	e.t.Helper()
	return e.open(h.listen(netip.Addr{}, port))
}

// sender opens a socket on h bound to its address (B and C of the kernel
// share a namespace) whose multicast goes out of h's interface (the
// namespaces have no multicast route).
func (e *mcEnv) sender(h *mcHost, port int) mcConn {
	e.t.Helper()
	c := e.open(h.listen(h.addr, port))
	if err := c.SetMulticastInterface(h.ifi); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// send writes msg to group:port; failing breaks the scenario's premise.
func (e *mcEnv) send(c mcConn, g *net.UDPAddr, port int, msg string) {
	e.t.Helper()
	if _, err := c.WriteTo([]byte(msg), nil, mcGroupPort(g, port)); err != nil {
		e.t.Fatalf("send %q: %v", msg, err)
	}
}

// op records an operation's error.
func (e *mcEnv) op(label string, err error) { e.rec("%s: %s", e.f.names.Replace(label), e.err(err)) }

// recv reads one datagram within wait and records it with its control
// message; "timeout" when nothing came.
func (e *mcEnv) recv(label string, c mcConn, wait time.Duration) {
	b := make([]byte, 64)
	c.SetReadDeadline(time.Now().Add(wait))
	n, cm, src, err := c.ReadFrom(b)
	c.SetReadDeadline(time.Time{})
	if errors.Is(err, os.ErrDeadlineExceeded) {
		e.rec("%s: timeout", label)
		return
	}
	e.rec("%s: n=%d data=%q from=%s cm=%s err=%s", label, n, b[:n], e.addr(src), e.cm(cm), e.err(err))
}

// none checks that nothing (more) arrives.
func (e *mcEnv) none(label string, c mcConn) { e.recv(label, c, mcQuiet) }

func (e *mcEnv) host(ip net.IP) string {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return fmt.Sprint(ip)
	}
	a = a.Unmap()
	for _, h := range []*mcHost{e.a, e.b, e.c} {
		if h.addr == a {
			return h.name
		}
	}
	switch {
	case ip.Equal(e.f.g1.IP):
		return "G1"
	case ip.Equal(e.f.g2.IP):
		return "G2"
	case a.IsUnspecified():
		return "any"
	}
	return a.String()
}

func (e *mcEnv) addr(a net.Addr) string {
	switch v := a.(type) {
	case nil:
		return "nil"
	case *net.UDPAddr:
		s := fmt.Sprintf("%s:%d/iplen=%d", e.host(v.IP), v.Port, len(v.IP))
		if v.Zone != "" {
			s += "%" + v.Zone
		}
		return s
	}
	return fmt.Sprintf("%T(%v)", a, a)
}

func (e *mcEnv) ifindex(i int) string {
	for _, h := range []*mcHost{e.a, e.b, e.c} {
		if h.ifi.Index == i {
			return h.name + ".if"
		}
	}
	return fmt.Sprint(i)
}

func (e *mcEnv) cm(cm *mcCM) string {
	if cm == nil {
		return "nil"
	}
	dst := "nil"
	if cm.dst != nil {
		dst = e.host(cm.dst)
	}
	return fmt.Sprintf("{%s=%d src=%s dst=%s ifindex=%s}", e.f.hopsName, cm.hops, e.host(cm.src), dst, e.ifindex(cm.ifindex))
}

// err renders an error's structure and message, addresses by role.
func (e *mcEnv) err(err error) string {
	if err == nil {
		return "nil"
	}
	msg := ipInText.ReplaceAllStringFunc(linuxWording(err), func(m string) string {
		if ap, err := netip.ParseAddrPort(m); err == nil {
			return fmt.Sprintf("%s:%d", e.host(net.IP(ap.Addr().AsSlice())), ap.Port())
		}
		if ip, err := netip.ParseAddr(m); err == nil {
			return e.host(net.IP(ip.AsSlice()))
		}
		return m
	})
	return fmt.Sprintf("%s %q", e.shape(err), msg)
}

func (e *mcEnv) shape(err error) string {
	switch x := err.(type) {
	case *net.OpError:
		return fmt.Sprintf("OpError{%s %s src=%s addr=%s err=%s}", x.Op, x.Net, e.addr(x.Source), e.addr(x.Addr), e.shape(x.Err))
	case *os.SyscallError:
		return fmt.Sprintf("SyscallError{%s %s}", x.Syscall, e.shape(x.Err))
	case syscall.Errno:
		if name, ok := errnoNames[x]; ok {
			return name
		}
		return fmt.Sprintf("Errno(%d)", int(x))
	}
	switch {
	case errors.Is(err, net.ErrClosed):
		return "ErrClosed"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "ErrDeadlineExceeded"
	}
	return fmt.Sprintf("%T", err)
}

type mcScenario struct {
	name string
	run  func(e *mcEnv)
	want []string // the IGMP table: IPv4 groups
	// want6 is the MLD table: the same scenario over IPv6 groups.
	want6 []string
	// linuxOnly, when set, says why the scenario's table holds only on
	// Linux; elsewhere it is skipped.
	linuxOnly string
}

var mcScenarios = []mcScenario{
	{
		name: "join-receive-leave",
		run: func(e *mcEnv) {
			l := e.receiver(e.a, 5001)
			tx := e.sender(e.b, 4001)
			e.send(tx, e.f.g1, 5001, "before")
			e.none("A before join", l)
			e.op("A JoinGroup", l.JoinGroup(e.a.ifi, e.f.g1))
			e.send(tx, e.f.g1, 5001, "joined")
			e.recv("A", l, mcSafety)
			e.op("A LeaveGroup", l.LeaveGroup(e.a.ifi, e.f.g1))
			e.send(tx, e.f.g1, 5001, "left")
			e.none("A after leave", l)
		},
		want: []string{
			`A before join: timeout`,
			`A JoinGroup: nil`,
			`A: n=6 data="joined" from=B:4001/iplen=4 cm=nil err=nil`,
			`A LeaveGroup: nil`,
			`A after leave: timeout`,
		},
		want6: []string{
			`A before join: timeout`,
			`A JoinGroup: nil`,
			`A: n=6 data="joined" from=B:4001/iplen=16 cm=nil err=nil`,
			`A LeaveGroup: nil`,
			`A after leave: timeout`,
		},
	},
	{
		name: "source-specific-include",
		run: func(e *mcEnv) {
			l := e.receiver(e.a, 5001)
			e.op("A JoinSourceSpecificGroup(G1, B)", l.JoinSourceSpecificGroup(e.a.ifi, e.f.g1, &net.UDPAddr{IP: e.b.addr.AsSlice()}))
			tb, tc := e.sender(e.b, 4001), e.sender(e.c, 4002)
			e.send(tc, e.f.g1, 5001, "from C")
			e.send(tb, e.f.g1, 5001, "from B")
			e.recv("A", l, mcSafety)
			e.none("A", l)
			e.op("A JoinSourceSpecificGroup(G1, C)", l.JoinSourceSpecificGroup(e.a.ifi, e.f.g1, &net.UDPAddr{IP: e.c.addr.AsSlice()}))
			e.op("A JoinSourceSpecificGroup(G1, C) again", l.JoinSourceSpecificGroup(e.a.ifi, e.f.g1, &net.UDPAddr{IP: e.c.addr.AsSlice()}))
			e.op("A ExcludeSourceSpecificGroup(G1, C)", l.ExcludeSourceSpecificGroup(e.a.ifi, e.f.g1, &net.UDPAddr{IP: e.c.addr.AsSlice()}))
			e.send(tc, e.f.g1, 5001, "C again")
			e.recv("A", l, mcSafety)
			e.op("A LeaveSourceSpecificGroup(G1, B)", l.LeaveSourceSpecificGroup(e.a.ifi, e.f.g1, &net.UDPAddr{IP: e.b.addr.AsSlice()}))
			e.send(tb, e.f.g1, 5001, "B again")
			e.none("A", l)
		},
		want: []string{
			`A JoinSourceSpecificGroup(G1, B): nil`,
			`A: n=6 data="from B" from=B:4001/iplen=4 cm=nil err=nil`,
			`A: timeout`,
			`A JoinSourceSpecificGroup(G1, C): nil`,
			`A JoinSourceSpecificGroup(G1, C) again: SyscallError{setsockopt EADDRNOTAVAIL} "setsockopt: cannot assign requested address"`,
			`A ExcludeSourceSpecificGroup(G1, C): SyscallError{setsockopt EINVAL} "setsockopt: invalid argument"`,
			`A: n=7 data="C again" from=C:4002/iplen=4 cm=nil err=nil`,
			`A LeaveSourceSpecificGroup(G1, B): nil`,
			`A: timeout`,
		},
		want6: []string{
			`A JoinSourceSpecificGroup(G1, B): nil`,
			`A: n=6 data="from B" from=B:4001/iplen=16 cm=nil err=nil`,
			`A: timeout`,
			`A JoinSourceSpecificGroup(G1, C): nil`,
			`A JoinSourceSpecificGroup(G1, C) again: SyscallError{setsockopt EADDRNOTAVAIL} "setsockopt: cannot assign requested address"`,
			`A ExcludeSourceSpecificGroup(G1, C): SyscallError{setsockopt EINVAL} "setsockopt: invalid argument"`,
			`A: n=7 data="C again" from=C:4002/iplen=16 cm=nil err=nil`,
			`A LeaveSourceSpecificGroup(G1, B): nil`,
			`A: timeout`,
		},
	},
	{
		name: "source-specific-exclude",
		run: func(e *mcEnv) {
			l := e.receiver(e.a, 5001)
			c := &net.UDPAddr{IP: e.c.addr.AsSlice()}
			e.op("A ExcludeSourceSpecificGroup before join", l.ExcludeSourceSpecificGroup(e.a.ifi, e.f.g1, c))
			e.op("A JoinGroup", l.JoinGroup(e.a.ifi, e.f.g1))
			e.op("A ExcludeSourceSpecificGroup(G1, C)", l.ExcludeSourceSpecificGroup(e.a.ifi, e.f.g1, c))
			tb, tc := e.sender(e.b, 4001), e.sender(e.c, 4002)
			e.send(tc, e.f.g1, 5001, "from C")
			e.send(tb, e.f.g1, 5001, "from B")
			e.recv("A", l, mcSafety)
			e.none("A", l)
			e.op("A IncludeSourceSpecificGroup(G1, C)", l.IncludeSourceSpecificGroup(e.a.ifi, e.f.g1, c))
			e.op("A IncludeSourceSpecificGroup(G1, C) again", l.IncludeSourceSpecificGroup(e.a.ifi, e.f.g1, c))
			e.send(tc, e.f.g1, 5001, "C again")
			e.recv("A", l, mcSafety)
		},
		want: []string{
			`A ExcludeSourceSpecificGroup before join: SyscallError{setsockopt EINVAL} "setsockopt: invalid argument"`,
			`A JoinGroup: nil`,
			`A ExcludeSourceSpecificGroup(G1, C): nil`,
			`A: n=6 data="from B" from=B:4001/iplen=4 cm=nil err=nil`,
			`A: timeout`,
			`A IncludeSourceSpecificGroup(G1, C): nil`,
			`A IncludeSourceSpecificGroup(G1, C) again: SyscallError{setsockopt EADDRNOTAVAIL} "setsockopt: cannot assign requested address"`,
			`A: n=7 data="C again" from=C:4002/iplen=4 cm=nil err=nil`,
		},
		want6: []string{
			`A ExcludeSourceSpecificGroup before join: SyscallError{setsockopt EINVAL} "setsockopt: invalid argument"`,
			`A JoinGroup: nil`,
			`A ExcludeSourceSpecificGroup(G1, C): nil`,
			`A: n=6 data="from B" from=B:4001/iplen=16 cm=nil err=nil`,
			`A: timeout`,
			`A IncludeSourceSpecificGroup(G1, C): nil`,
			`A IncludeSourceSpecificGroup(G1, C) again: SyscallError{setsockopt EADDRNOTAVAIL} "setsockopt: cannot assign requested address"`,
			`A: n=7 data="C again" from=C:4002/iplen=16 cm=nil err=nil`,
		},
	},
	{
		name: "loopback-on-off",
		run: func(e *mcEnv) {
			la := e.receiver(e.a, 5001)
			lb := e.receiver(e.b, 5001)
			e.op("A JoinGroup", la.JoinGroup(e.a.ifi, e.f.g1))
			e.op("B JoinGroup", lb.JoinGroup(e.b.ifi, e.f.g1))
			tx := e.sender(e.a, 4001)
			on, err := tx.MulticastLoopback()
			e.rec("MulticastLoopback: %v %s", on, e.err(err))
			e.send(tx, e.f.g1, 5001, "loop on")
			e.recv("A (own host)", la, mcSafety)
			e.recv("B", lb, mcSafety)
			e.op("SetMulticastLoopback(false)", tx.SetMulticastLoopback(false))
			on, err = tx.MulticastLoopback()
			e.rec("MulticastLoopback: %v %s", on, e.err(err))
			e.send(tx, e.f.g1, 5001, "loop off")
			e.recv("B", lb, mcSafety)
			e.none("A (own host)", la)
		},
		want: []string{
			`A JoinGroup: nil`,
			`B JoinGroup: nil`,
			`MulticastLoopback: true nil`,
			`A (own host): n=7 data="loop on" from=A:4001/iplen=4 cm=nil err=nil`,
			`B: n=7 data="loop on" from=A:4001/iplen=4 cm=nil err=nil`,
			`SetMulticastLoopback(false): nil`,
			`MulticastLoopback: false nil`,
			`B: n=8 data="loop off" from=A:4001/iplen=4 cm=nil err=nil`,
			`A (own host): timeout`,
		},
		want6: []string{
			`A JoinGroup: nil`,
			`B JoinGroup: nil`,
			`MulticastLoopback: true nil`,
			`A (own host): n=7 data="loop on" from=A:4001/iplen=16 cm=nil err=nil`,
			`B: n=7 data="loop on" from=A:4001/iplen=16 cm=nil err=nil`,
			`SetMulticastLoopback(false): nil`,
			`MulticastLoopback: false nil`,
			`B: n=8 data="loop off" from=A:4001/iplen=16 cm=nil err=nil`,
			`A (own host): timeout`,
		},
	},
	{
		name: "ttl-control-messages",
		run: func(e *mcEnv) {
			l := e.receiver(e.a, 5001)
			e.op("A JoinGroup", l.JoinGroup(e.a.ifi, e.f.g1))
			tx := e.sender(e.b, 4001)
			ttl, err := tx.MulticastHops()
			e.rec("MulticastTTL: %d %s", ttl, e.err(err))
			e.op("SetControlMessage(TTL|Dst|Interface)", l.SetControlMessage(mcHops|mcDst|mcIface, true))
			e.send(tx, e.f.g1, 5001, "ttl 1")
			e.recv("A", l, mcSafety)
			e.op("SetMulticastTTL(5)", tx.SetMulticastHops(5))
			e.send(tx, e.f.g1, 5001, "ttl 5")
			e.recv("A", l, mcSafety)
			e.op("SetControlMessage(Dst|Interface, false)", l.SetControlMessage(mcDst|mcIface, false))
			e.send(tx, e.f.g1, 5001, "ttl only")
			e.recv("A", l, mcSafety)
			e.op("SetControlMessage(TTL, false)", l.SetControlMessage(mcHops, false))
			e.send(tx, e.f.g1, 5001, "none")
			e.recv("A", l, mcSafety)
			e.op("SetMulticastTTL(256)", tx.SetMulticastHops(256))
			e.op("SetMulticastTTL(-1)", tx.SetMulticastHops(-1))
			ttl, err = tx.MulticastHops()
			e.rec("MulticastTTL: %d %s", ttl, e.err(err))
		},
		want: []string{
			`A JoinGroup: nil`,
			`MulticastTTL: 1 nil`,
			`SetControlMessage(TTL|Dst|Interface): nil`,
			`A: n=5 data="ttl 1" from=B:4001/iplen=4 cm={ttl=1 src=B dst=G1 ifindex=A.if} err=nil`,
			`SetMulticastTTL(5): nil`,
			`A: n=5 data="ttl 5" from=B:4001/iplen=4 cm={ttl=5 src=B dst=G1 ifindex=A.if} err=nil`,
			`SetControlMessage(Dst|Interface, false): nil`,
			`A: n=8 data="ttl only" from=B:4001/iplen=4 cm={ttl=5 src=B dst=nil ifindex=0} err=nil`,
			`SetControlMessage(TTL, false): nil`,
			`A: n=4 data="none" from=B:4001/iplen=4 cm=nil err=nil`,
			`SetMulticastTTL(256): SyscallError{setsockopt EINVAL} "setsockopt: invalid argument"`,
			`SetMulticastTTL(-1): nil`,
			`MulticastTTL: 1 nil`,
		},
		want6: []string{
			`A JoinGroup: nil`,
			`MulticastHopLimit: 1 nil`,
			`SetControlMessage(HopLimit|Dst|Interface): nil`,
			`A: n=5 data="ttl 1" from=B:4001/iplen=16 cm={hops=1 src=B dst=G1 ifindex=A.if} err=nil`,
			`SetMulticastHopLimit(5): nil`,
			`A: n=5 data="ttl 5" from=B:4001/iplen=16 cm={hops=5 src=B dst=G1 ifindex=A.if} err=nil`,
			`SetControlMessage(Dst|Interface, false): nil`,
			`A: n=8 data="ttl only" from=B:4001/iplen=16 cm={hops=5 src=B dst=nil ifindex=0} err=nil`,
			`SetControlMessage(HopLimit, false): nil`,
			`A: n=4 data="none" from=B:4001/iplen=16 cm=nil err=nil`,
			`SetMulticastHopLimit(256): SyscallError{setsockopt EINVAL} "setsockopt: invalid argument"`,
			`SetMulticastHopLimit(-1): nil`,
			`MulticastHopLimit: 1 nil`,
		},
	},
	{
		name: "two-listeners-one-port",
		run: func(e *mcEnv) {
			g := mcGroupPort(e.f.g1, 5353)
			l1 := e.open(e.a.listenGroup(g))
			l2 := e.open(e.a.listenGroup(g))
			e.rec("LocalAddr: %s %s", e.addr(l1.LocalAddr()), e.addr(l2.LocalAddr()))
			on, err := l1.MulticastLoopback()
			e.rec("ListenMulticastUDP loopback: %v %s", on, e.err(err))
			tx := e.sender(e.b, 4001)
			e.send(tx, e.f.g1, 5353, "both")
			e.recv("A l1", l1, mcSafety)
			e.recv("A l2", l2, mcSafety)
			// A listener that leaves still gets the group's datagrams
			// while its neighbour keeps the membership (IP_MULTICAST_ALL).
			e.op("l2 LeaveGroup", l2.LeaveGroup(e.a.ifi, e.f.g1))
			e.send(tx, e.f.g1, 5353, "after l2 left")
			e.recv("A l1", l1, mcSafety)
			e.recv("A l2", l2, mcSafety)
			// A socket on another port that joined nothing gets it too.
			other := e.receiver(e.a, 5002)
			e.send(tx, e.f.g1, 5002, "other port")
			e.recv("A other port", other, mcSafety)
			e.none("A l1", l1)
		},
		want: []string{
			`LocalAddr: any:5353/iplen=4 any:5353/iplen=4`,
			`ListenMulticastUDP loopback: false nil`,
			`A l1: n=4 data="both" from=B:4001/iplen=4 cm=nil err=nil`,
			`A l2: n=4 data="both" from=B:4001/iplen=4 cm=nil err=nil`,
			`l2 LeaveGroup: nil`,
			`A l1: n=13 data="after l2 left" from=B:4001/iplen=4 cm=nil err=nil`,
			`A l2: n=13 data="after l2 left" from=B:4001/iplen=4 cm=nil err=nil`,
			`A other port: n=10 data="other port" from=B:4001/iplen=4 cm=nil err=nil`,
			`A l1: timeout`,
		},
		want6: []string{
			`LocalAddr: any:5353/iplen=16 any:5353/iplen=16`,
			`ListenMulticastUDP loopback: false nil`,
			`A l1: n=4 data="both" from=B:4001/iplen=16 cm=nil err=nil`,
			`A l2: n=4 data="both" from=B:4001/iplen=16 cm=nil err=nil`,
			`l2 LeaveGroup: nil`,
			`A l1: n=13 data="after l2 left" from=B:4001/iplen=16 cm=nil err=nil`,
			`A l2: n=13 data="after l2 left" from=B:4001/iplen=16 cm=nil err=nil`,
			`A other port: n=10 data="other port" from=B:4001/iplen=16 cm=nil err=nil`,
			`A l1: timeout`,
		},
	},
	{
		name:      "batch-and-oob",
		linuxOnly: "control messages are encoded as x/net does on each system (none on js, wasip1 and Windows); the table records Linux's bytes",
		run: func(e *mcEnv) {
			l := e.receiver(e.a, 5001)
			e.op("A JoinGroup", l.JoinGroup(e.a.ifi, e.f.g1))
			e.op("SetControlMessage(TTL|Dst)", l.SetControlMessage(mcHops|mcDst, true))
			tx := e.sender(e.b, 4001)
			wm := []mcMessage{
				{Buffers: [][]byte{[]byte("a")}, Addr: mcGroupPort(e.f.g1, 5001)},
				{Buffers: [][]byte{[]byte("b"), []byte("b")}, Addr: mcGroupPort(e.f.g1, 5001), OOB: e.f.ifIndexOOB(e.b.ifi.Index)},
				{Buffers: [][]byte{[]byte("0123456789abc")}, Addr: mcGroupPort(e.f.g1, 5001)},
			}
			n, err := tx.WriteBatch(wm, 0)
			e.rec("WriteBatch: n=%d err=%s N=%d,%d,%d", n, e.err(err), wm[0].N, wm[1].N, wm[2].N)
			e.settle()
			ms := []mcMessage{
				{Buffers: [][]byte{make([]byte, 10)}, OOB: e.f.newOOB(mcHops | mcDst)},
				{Buffers: [][]byte{make([]byte, 1), make([]byte, 2)}},
				{Buffers: [][]byte{make([]byte, 10)}, OOB: e.f.newOOB(mcHops)},
				{Buffers: [][]byte{make([]byte, 10)}},
			}
			l.SetReadDeadline(time.Now().Add(mcSafety))
			n, err = l.ReadBatch(ms, 0)
			e.rec("ReadBatch: n=%d err=%s", n, e.err(err))
			for i, m := range ms[:max(n, 0)] {
				cm, perr := e.f.parseOOB(m.OOB[:m.NN])
				// The cmsghdr layout depends on the word size: a full OOB
				// is recorded as such, not as a byte count.
				nn := fmt.Sprint(m.NN)
				if m.NN > 0 && m.NN == len(m.OOB) {
					nn = "len(OOB)"
				}
				e.rec("  %d: N=%d data=%q NN=%s flags=%s from=%s cm=%s parse=%s", i, m.N, slices.Concat(m.Buffers...)[:m.N], nn,
					flagNames(m.Flags), e.addr(m.Addr), e.cm(cm), e.err(perr))
			}
			l.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			n, err = l.ReadBatch(ms, 0)
			e.rec("ReadBatch empty: n=%d err=%s", n, e.err(err))
			n, err = tx.WriteBatch([]mcMessage{{Buffers: [][]byte{[]byte("x")}}}, 0)
			e.rec("WriteBatch without address: n=%d err=%s", n, e.err(err))
		},
		want: []string{
			`A JoinGroup: nil`,
			`SetControlMessage(TTL|Dst): nil`,
			`WriteBatch: n=3 err=nil N=1,2,13`,
			`ReadBatch: n=3 err=nil`,
			`  0: N=1 data="a" NN=len(OOB) flags=0 from=B:4001/iplen=4 cm={ttl=1 src=<nil> dst=G1 ifindex=A.if} parse=nil`,
			`  1: N=2 data="bb" NN=0 flags=MSG_CTRUNC from=B:4001/iplen=4 cm={ttl=0 src=<nil> dst=nil ifindex=0} parse=nil`,
			`  2: N=10 data="0123456789" NN=len(OOB) flags=MSG_TRUNC|MSG_CTRUNC from=B:4001/iplen=4 cm={ttl=0 src=<nil> dst=nil ifindex=0} parse=nil`,
			`ReadBatch empty: n=-1 err=OpError{read udp src=any:5001/iplen=4 addr=nil err=OpError{raw-read udp4 src=any:5001/iplen=4 addr=nil err=ErrDeadlineExceeded}} "read udp any:5001: raw-read udp4 any:5001: i/o timeout"`,
			`WriteBatch without address: n=-1 err=OpError{write udp src=B:4001/iplen=4 addr=nil err=SyscallError{sendmmsg EDESTADDRREQ}} "write udp B:4001: sendmmsg: destination address required"`,
		},
		want6: []string{
			`A JoinGroup: nil`,
			`SetControlMessage(HopLimit|Dst): nil`,
			`WriteBatch: n=3 err=nil N=1,2,13`,
			`ReadBatch: n=3 err=nil`,
			`  0: N=1 data="a" NN=len(OOB) flags=0 from=B:4001/iplen=16 cm={hops=1 src=<nil> dst=G1 ifindex=A.if} parse=nil`,
			`  1: N=2 data="bb" NN=0 flags=MSG_CTRUNC from=B:4001/iplen=16 cm={hops=0 src=<nil> dst=nil ifindex=0} parse=nil`,
			`  2: N=10 data="0123456789" NN=len(OOB) flags=MSG_TRUNC|MSG_CTRUNC from=B:4001/iplen=16 cm={hops=0 src=<nil> dst=nil ifindex=0} parse=nil`,
			`ReadBatch empty: n=-1 err=OpError{read udp src=any:5001/iplen=16 addr=nil err=OpError{raw-read udp6 src=any:5001/iplen=16 addr=nil err=ErrDeadlineExceeded}} "read udp any:5001: raw-read udp6 any:5001: i/o timeout"`,
			`WriteBatch without address: n=-1 err=OpError{write udp src=B:4001/iplen=16 addr=nil err=SyscallError{sendmmsg EDESTADDRREQ}} "write udp B:4001: sendmmsg: destination address required"`,
		},
	},
	{
		name: "errors-and-close",
		run: func(e *mcEnv) {
			l := e.receiver(e.a, 5001)
			e.op("JoinGroup", l.JoinGroup(e.a.ifi, e.f.g1))
			e.op("JoinGroup again", l.JoinGroup(e.a.ifi, e.f.g1))
			e.op("JoinGroup(unicast)", l.JoinGroup(e.a.ifi, &net.UDPAddr{IP: e.b.addr.AsSlice()}))
			e.op("JoinGroup(bad interface)", l.JoinGroup(&net.Interface{Index: 999}, e.f.g2))
			e.op("JoinGroup(IPv6)", l.JoinGroup(e.a.ifi, e.f.otherGroup))
			e.op("LeaveGroup(G2)", l.LeaveGroup(e.a.ifi, e.f.g2))
			e.op("LeaveSourceSpecificGroup(G2, B)", l.LeaveSourceSpecificGroup(e.a.ifi, e.f.g2, &net.UDPAddr{IP: e.b.addr.AsSlice()}))
			e.op("SetMulticastInterface(bad)", l.SetMulticastInterface(&net.Interface{Index: 999}))
			e.op("SetTTL(0)", l.SetHops(0))
			_, err := l.WriteTo([]byte("x"), nil, nil)
			e.rec("WriteTo(nil): %s", e.err(err))
			_, err = l.WriteTo([]byte("x"), &mcCM{ifindex: 999}, mcGroupPort(e.f.g1, 5001))
			e.rec("WriteTo(bad IfIndex): %s", e.err(err))
			l.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			_, _, _, err = l.ReadFrom(make([]byte, 10))
			e.rec("ReadFrom timeout: %s", e.err(err))
			e.op("Close", l.Close())
			e.op("JoinGroup after close", l.JoinGroup(e.a.ifi, e.f.g2))
			_, err = l.MulticastHops()
			e.rec("MulticastTTL after close: %s", e.err(err))
			_, _, _, err = l.ReadFrom(make([]byte, 10))
			e.rec("ReadFrom after close: %s", e.err(err))
			_, err = l.WriteTo([]byte("x"), nil, mcGroupPort(e.f.g1, 5001))
			e.rec("WriteTo after close: %s", e.err(err))
			e.op("Close again", l.Close())
		},
		want: []string{
			`JoinGroup: nil`,
			`JoinGroup again: SyscallError{setsockopt EADDRINUSE} "setsockopt: address already in use"`,
			`JoinGroup(unicast): SyscallError{setsockopt EINVAL} "setsockopt: invalid argument"`,
			`JoinGroup(bad interface): SyscallError{setsockopt ENODEV} "setsockopt: no such device"`,
			`JoinGroup(IPv6): *errors.errorString "missing address"`,
			`LeaveGroup(G2): SyscallError{setsockopt EADDRNOTAVAIL} "setsockopt: cannot assign requested address"`,
			`LeaveSourceSpecificGroup(G2, B): SyscallError{setsockopt EINVAL} "setsockopt: invalid argument"`,
			`SetMulticastInterface(bad): SyscallError{setsockopt EADDRNOTAVAIL} "setsockopt: cannot assign requested address"`,
			`SetTTL(0): SyscallError{setsockopt EINVAL} "setsockopt: invalid argument"`,
			`WriteTo(nil): OpError{write udp src=any:5001/iplen=4 addr=nil err=SyscallError{sendmsg EDESTADDRREQ}} "write udp any:5001: sendmsg: destination address required"`,
			`WriteTo(bad IfIndex): OpError{write udp src=any:5001/iplen=4 addr=G1:5001/iplen=4 err=SyscallError{sendmsg ENODEV}} "write udp any:5001->G1:5001: sendmsg: no such device"`,
			`ReadFrom timeout: OpError{read udp src=any:5001/iplen=4 addr=nil err=OpError{raw-read udp4 src=any:5001/iplen=4 addr=nil err=ErrDeadlineExceeded}} "read udp any:5001: raw-read udp4 any:5001: i/o timeout"`,
			`Close: nil`,
			`JoinGroup after close: OpError{raw-control udp4 src=nil addr=any:5001/iplen=4 err=ErrClosed} "raw-control udp4 any:5001: use of closed network connection"`,
			`MulticastTTL after close: OpError{raw-control udp4 src=nil addr=any:5001/iplen=4 err=ErrClosed} "raw-control udp4 any:5001: use of closed network connection"`,
			`ReadFrom after close: OpError{read udp src=any:5001/iplen=4 addr=nil err=OpError{raw-read udp4 src=any:5001/iplen=4 addr=nil err=ErrClosed}} "read udp any:5001: raw-read udp4 any:5001: use of closed network connection"`,
			`WriteTo after close: OpError{write udp src=any:5001/iplen=4 addr=G1:5001/iplen=4 err=OpError{raw-write udp4 src=any:5001/iplen=4 addr=nil err=ErrClosed}} "write udp any:5001->G1:5001: raw-write udp4 any:5001: use of closed network connection"`,
			`Close again: OpError{close udp4 src=any:5001/iplen=4 addr=nil err=ErrClosed} "close udp4 any:5001: use of closed network connection"`,
		},
		want6: []string{
			`JoinGroup: nil`,
			`JoinGroup again: SyscallError{setsockopt EADDRINUSE} "setsockopt: address already in use"`,
			`JoinGroup(unicast): SyscallError{setsockopt EINVAL} "setsockopt: invalid argument"`,
			`JoinGroup(bad interface): SyscallError{setsockopt ENODEV} "setsockopt: no such device"`,
			`JoinGroup(IPv4): *errors.errorString "missing address"`,
			`LeaveGroup(G2): SyscallError{setsockopt EADDRNOTAVAIL} "setsockopt: cannot assign requested address"`,
			`LeaveSourceSpecificGroup(G2, B): SyscallError{setsockopt EINVAL} "setsockopt: invalid argument"`,
			`SetMulticastInterface(bad): SyscallError{setsockopt ENODEV} "setsockopt: no such device"`,
			`SetHopLimit(0): nil`,
			`WriteTo(nil): OpError{write udp src=any:5001/iplen=16 addr=nil err=SyscallError{sendmsg EDESTADDRREQ}} "write udp any:5001: sendmsg: destination address required"`,
			`WriteTo(bad IfIndex): OpError{write udp src=any:5001/iplen=16 addr=G1:5001/iplen=16 err=SyscallError{sendmsg ENODEV}} "write udp any:5001->G1:5001: sendmsg: no such device"`,
			`ReadFrom timeout: OpError{read udp src=any:5001/iplen=16 addr=nil err=OpError{raw-read udp6 src=any:5001/iplen=16 addr=nil err=ErrDeadlineExceeded}} "read udp any:5001: raw-read udp6 any:5001: i/o timeout"`,
			`Close: nil`,
			`JoinGroup after close: OpError{raw-control udp6 src=nil addr=any:5001/iplen=16 err=ErrClosed} "raw-control udp6 any:5001: use of closed network connection"`,
			`MulticastHopLimit after close: OpError{raw-control udp6 src=nil addr=any:5001/iplen=16 err=ErrClosed} "raw-control udp6 any:5001: use of closed network connection"`,
			`ReadFrom after close: OpError{read udp src=any:5001/iplen=16 addr=nil err=OpError{raw-read udp6 src=any:5001/iplen=16 addr=nil err=ErrClosed}} "read udp any:5001: raw-read udp6 any:5001: use of closed network connection"`,
			`WriteTo after close: OpError{write udp src=any:5001/iplen=16 addr=G1:5001/iplen=16 err=OpError{raw-write udp6 src=any:5001/iplen=16 addr=nil err=ErrClosed}} "write udp any:5001->G1:5001: raw-write udp6 any:5001: use of closed network connection"`,
			`Close again: OpError{close udp6 src=any:5001/iplen=16 addr=nil err=ErrClosed} "close udp6 any:5001: use of closed network connection"`,
		},
	},
}

// TestMulticastCompat runs the multicast table against the kernel (root:
// two namespaces and a veth pair) and tapnet (three stacks on a hub), once
// over IPv4 groups (IGMP, x/net/ipv4) and once over IPv6 groups (MLD,
// x/net/ipv6). Each subject is checked against the family's table, which
// was written from the kernel's behaviour; a difference must be a want
// entry of the subject.
func TestMulticastCompat(t *testing.T) {
	skipUnlessLinux(t)
	for _, f := range []*mcFamily{igmpFamily, mldFamily} {
		for _, s := range []mcSubject{kernelMcSubject(f), tapnetMcSubject(f)} {
			t.Run(s.name+f.suffix, func(t *testing.T) {
				for _, sc := range mcScenarios {
					t.Run(sc.name, func(t *testing.T) { runMcScenario(t, f, s, sc) })
				}
			})
		}
	}
}

func runMcScenario(t *testing.T, f *mcFamily, s mcSubject, sc mcScenario) {
	if sc.linuxOnly != "" && runtime.GOOS != "linux" {
		t.Skip(sc.linuxOnly)
	}
	hs := s.hosts(t)
	e := &mcEnv{t: t, f: f, a: hs[0], b: hs[1], c: hs[2], settleTime: 50 * time.Millisecond}
	sc.run(e)
	want := sc.want
	if f.v6 {
		want = sc.want6
	}
	if w, ok := s.want[sc.name]; ok {
		want = w
	}
	if *printObs {
		var b strings.Builder
		for _, l := range e.obs {
			fmt.Fprintf(&b, "\t\t\t`%s`,\n", l)
		}
		t.Logf("observation:\n%s", b.String())
	}
	if !slices.Equal(e.obs, want) {
		t.Errorf("observation differs from the table:\n%s", diff(want, e.obs))
	}
}
