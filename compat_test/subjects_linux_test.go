//go:build linux

package compat

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/tapnet/tapnet/internal/netns"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

// tapnetTAPSubject is tapnet on a real TAP, its peer the kernel in a
// network namespace made for each scenario.
func tapnetTAPSubject(f family) Subject {
	var a *stack.Stack
	var ns *netns.NS
	inNS := func(fn func() error) error { return ns.Do(fn) }
	addrA, pa := hostAddrs(f, false)
	addrB, pb := hostAddrs(f, true)
	return Subject{
		Name:     "tapnet-tap" + f.name,
		Network:  f.network,
		Wildcard: f.dual,
		AddrA:    addrA, AddrB: addrB,
		AltA: altAddr(f, addrA, pa), AltB: altAddr(f, addrB, pb),
		Setup: func(t *testing.T) {
			netns.RequireRoot(t)
			ns = netns.New(t)
			dev := netns.NewTAP(t, ns, pb[0], tap.Options{})
			for _, p := range pb[1:] {
				// A new namespace may start with IPv6 off.
				ns.Exec(t, "sysctl", "-qw", "net.ipv6.conf."+dev.Name()+".disable_ipv6=0")
				ns.IP(t, "addr", "add", p, "dev", dev.Name(), "nodad")
			}
			a = newStack(t, dev, pa...)
		},
		ListenA: gonetListen(&a), DialA: gonetDial(&a),
		ListenB: func(network string, laddr *net.UDPAddr) (c UDPConn, err error) {
			err = inNS(func() error {
				k, err := net.ListenUDP(network, laddr)
				if err == nil {
					c = k
				}
				return err
			})
			return c, err
		},
		DialB: func(network string, laddr, raddr *net.UDPAddr) (c UDPConn, err error) {
			err = inNS(func() error {
				k, err := net.DialUDP(network, laddr, raddr)
				if err == nil {
					c = k
				}
				return err
			})
			return c, err
		},
		Settle: 50 * time.Millisecond,
	}
}

// kernelMcSubject is the kernel in two network namespaces joined by a veth
// pair: A (192.0.2.2) in one, B (192.0.2.1) and C (192.0.2.3) sharing the
// other.
func kernelMcSubject() mcSubject {
	return mcSubject{name: "kernel", hosts: func(t *testing.T) [3]*mcHost {
		netns.RequireRoot(t)
		nsA, nsB := netns.New(t), netns.New(t)
		va, vb := netns.UniqueIfName("mca"), netns.UniqueIfName("mcb")
		nsA.IP(t, "link", "add", va, "type", "veth", "peer", "name", vb, "netns", nsB.Name())
		nsA.IP(t, "addr", "add", "192.0.2.2/24", "dev", va)
		nsA.IP(t, "link", "set", va, "up")
		nsB.IP(t, "addr", "add", "192.0.2.1/24", "dev", vb)
		nsB.IP(t, "addr", "add", "192.0.2.3/24", "dev", vb)
		nsB.IP(t, "link", "set", vb, "up")
		host := func(name, addr string, ns *netns.NS, ifname string) *mcHost {
			h := &mcHost{name: name, addr: netip.MustParseAddr(addr)}
			if err := ns.Do(func() (err error) { h.ifi, err = net.InterfaceByName(ifname); return err }); err != nil {
				t.Fatal(err)
			}
			h.listen = func(ip netip.Addr, port int) (c MulticastConn, err error) {
				err = ns.Do(func() error {
					pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip.AsSlice(), Port: port})
					if err == nil {
						c = ipv4.NewPacketConn(pc)
					}
					return err
				})
				return c, err
			}
			h.listenGroup = func(g *net.UDPAddr) (c MulticastConn, err error) {
				err = ns.Do(func() error {
					uc, err := net.ListenMulticastUDP("udp4", h.ifi, g)
					if err == nil {
						c = ipv4.NewPacketConn(uc)
					}
					return err
				})
				return c, err
			}
			return h
		}
		return [3]*mcHost{host("A", "192.0.2.2", nsA, va), host("B", "192.0.2.1", nsB, vb), host("C", "192.0.2.3", nsB, vb)}
	}}
}
