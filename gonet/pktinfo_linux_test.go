package gonet

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/tapnet/tapnet/internal/netns"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

// The kernel and tapnet agree on primary and secondary addresses: the
// order `ip address` lists them in, the source a connected socket binds,
// and the promotion of a secondary when the primary goes
// (promote_secondaries=1).
func TestKernelSecondaryAddresses(t *testing.T) {
	ns := netns.New(t)
	ns.IP(t, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
	ns.IP(t, "link", "set", "v0", "up")
	ns.IP(t, "link", "set", "v1", "up")
	ns.Exec(t, "sysctl", "-qw", "net.ipv4.conf.v0.promote_secondaries=1")

	s := stack.New(stack.Options{})
	t.Cleanup(func() { s.Close() })
	la, _ := tap.Pipe(tap.PipeOptions{})
	nic, err := s.AddNIC(la, stack.NICOptions{IPv6: stack.IPv6Options{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	add := func(p string) {
		ns.IP(t, "addr", "add", p, "dev", "v0")
		if err := nic.AddAddress(netip.MustParsePrefix(p)); err != nil {
			t.Fatal(err)
		}
	}
	compare := func(when string) {
		t.Helper()
		var kernelAddrs []string
		for _, f := range strings.Fields(ns.IP(t, "-o", "-4", "addr", "show", "dev", "v0")) {
			if _, err := netip.ParsePrefix(f); err == nil {
				kernelAddrs = append(kernelAddrs, f)
			}
		}
		var ours []string
		for _, p := range nic.Addresses() {
			ours = append(ours, p.String())
		}
		if !slices.Equal(ours, kernelAddrs) {
			t.Errorf("%s: Addresses() = %v, kernel lists %v", when, ours, kernelAddrs)
		}
		raddr := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 9), Port: 53}
		var kernelSrc net.Addr
		err := ns.Do(func() error {
			c, err := net.DialUDP("udp4", nil, raddr)
			if err != nil {
				return err
			}
			kernelSrc = c.LocalAddr()
			return c.Close()
		})
		if err != nil {
			t.Fatal(err)
		}
		c, err := DialUDP(s, "udp4", nil, raddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		k, o := kernelSrc.(*net.UDPAddr).IP, c.LocalAddr().(*net.UDPAddr).IP
		if !k.Equal(o) {
			t.Errorf("%s: DialUDP to %v binds %v, the kernel %v", when, raddr, o, k)
		}
	}
	add("192.0.2.2/24")
	add("192.0.2.4/24")
	add("198.51.100.1/24")
	compare("with a secondary")
	ns.IP(t, "addr", "del", "192.0.2.2/24", "dev", "v0")
	if err := nic.RemoveAddress(netip.MustParsePrefix("192.0.2.2/24")); err != nil {
		t.Fatal(err)
	}
	compare("after removing the primary")
}
