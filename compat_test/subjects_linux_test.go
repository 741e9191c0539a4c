//go:build linux

package compat

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

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
		Diag: func(t *testing.T) string {
			return "A (tapnet): " + stackDiag(a) + "\nB (kernel):\n" +
				ns.IP(t, "-s", "link", "show") + ns.IP(t, "addr", "show") + ns.IP(t, "neigh", "show") + ns.IP(t, "-6", "maddr", "show")
		},
	}
}

// kernelMcSubject is the kernel in two network namespaces joined by a veth
// pair: A (192.0.2.2 or 2001:db8::2) in one, B (.1, ::1) and C (.3, ::3)
// sharing the other. IPv6 runs without DAD, so that addresses are usable
// at once.
func kernelMcSubject(f *mcFamily) mcSubject {
	addrs := [3]string{"192.0.2.2/24", "192.0.2.1/24", "192.0.2.3/24"}
	newNS, network := netns.New, "udp4"
	if f.v6 {
		addrs = [3]string{"2001:db8::2/64", "2001:db8::1/64", "2001:db8::3/64"}
		newNS, network = netns.NewIPv6, "udp6"
	}
	return mcSubject{name: "kernel", hosts: func(t *testing.T) [3]*mcHost {
		netns.RequireRoot(t)
		nsA, nsB := newNS(t), newNS(t)
		va, vb := netns.UniqueIfName("mca"), netns.UniqueIfName("mcb")
		nsA.IP(t, "link", "add", va, "type", "veth", "peer", "name", vb, "netns", nsB.Name())
		nsA.IP(t, "addr", "add", addrs[0], "dev", va, "nodad")
		nsA.IP(t, "link", "set", va, "up")
		nsB.IP(t, "addr", "add", addrs[1], "dev", vb, "nodad")
		nsB.IP(t, "addr", "add", addrs[2], "dev", vb, "nodad")
		nsB.IP(t, "link", "set", vb, "up")
		nsA.AwaitUp(t, va)
		nsB.AwaitUp(t, vb)
		if f.v6 {
			awaitMulticastRoute(t, nsA, va)
			awaitMulticastRoute(t, nsB, vb)
		}
		host := func(name, addr string, ns *netns.NS, ifname string) *mcHost {
			h := &mcHost{name: name, addr: netip.MustParsePrefix(addr).Addr()}
			if err := ns.Do(func() (err error) { h.ifi, err = net.InterfaceByName(ifname); return err }); err != nil {
				t.Fatal(err)
			}
			wrap := func(c *net.UDPConn) mcConn {
				if f.v6 {
					return mc6{ipv6.NewPacketConn(c)}
				}
				return mc4{ipv4.NewPacketConn(c)}
			}
			h.listen = func(ip netip.Addr, port int) (c mcConn, err error) {
				err = ns.Do(func() error {
					uc, err := net.ListenUDP(network, &net.UDPAddr{IP: ip.AsSlice(), Port: port})
					if err == nil {
						c = wrap(uc)
					}
					return err
				})
				return c, err
			}
			h.listenGroup = func(g *net.UDPAddr) (c mcConn, err error) {
				err = ns.Do(func() error {
					uc, err := net.ListenMulticastUDP(network, h.ifi, g)
					if err == nil {
						c = wrap(uc)
					}
					return err
				})
				return c, err
			}
			return h
		}
		return [3]*mcHost{host("A", addrs[0], nsA, va), host("B", addrs[1], nsB, vb), host("C", addrs[2], nsB, vb)}
	}}
}

// awaitMulticastRoute waits until IPv6 is up on ifname: the kernel adds
// the ff00::/8 route once the link has its carrier, and until then sends to
// a group fail with ENETUNREACH however IPV6_MULTICAST_IF is set.
func awaitMulticastRoute(t *testing.T, ns *netns.NS, ifname string) {
	t.Helper()
	for range 300 {
		if strings.Contains(ns.IP(t, "-6", "route", "show", "table", "local", "dev", ifname), "ff00::/8") {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no IPv6 multicast route on %s after 3s", ifname)
}
