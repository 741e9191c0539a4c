package stack_test

import (
	"net/netip"
	"testing"

	"github.com/tapnet/tapnet/ipv6"
	"github.com/tapnet/tapnet/stack"
)

// newSrcEnv6 is a stack on a relLink whose NIC has only its link-local
// IPv6 address (no DAD, router advertisements accepted) and a default
// route through the peer, for source selection tests to add addresses to.
func newSrcEnv6(t *testing.T) *relEnv {
	t.Helper()
	e := &relEnv{t: t, s: stack.New(stack.Options{}), link: newRelLink(relOurMAC, 1500)}
	t.Cleanup(func() { e.s.Close() })
	nic, err := e.s.AddNIC(e.link, stack.NICOptions{IPv6: stack.IPv6Options{DADTransmits: -1, AcceptRA: true}})
	if err != nil {
		t.Fatal(err)
	}
	e.nic = nic
	if err := e.s.AddRoute(stack.RouteEntry{Dst: netip.MustParsePrefix("::/0"), Gateway: relPeerLL, NIC: nic.ID()}); err != nil {
		t.Fatal(err)
	}
	return e
}

// slaacPrefix has the peer advertise an autonomous /64 prefix with the
// lifetimes given (seconds) and returns the address the NIC forms in it.
func (e *relEnv) slaacPrefix(prefix string, valid, preferred uint32) netip.Addr {
	p := netip.MustParsePrefix(prefix)
	o := make([]byte, 32)
	ipv6.PutPrefixInfoOption(o, ipv6.PrefixInfo{Prefix: p, OnLink: true, Autonomous: true, ValidLifetime: valid, PreferredLifetime: preferred})
	e.link.inject(rel6RA(0, o))
	return ipv6.AddrFromPrefix(p, ipv6.EUI64(relOurMAC))
}

// TestIPv6SourceSelection checks RFC 6724 §5's rules through FindRoute,
// one case per rule, each built so that the rule under test decides
// against what the later rules (or the order the addresses were added in)
// would pick.
func TestIPv6SourceSelection(t *testing.T) {
	addr := netip.MustParseAddr
	add := func(e *relEnv, prefixes ...string) {
		for _, p := range prefixes {
			if err := e.nic.AddAddress(netip.MustParsePrefix(p)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range []struct {
		name  string
		setup func(e *relEnv) (want netip.Addr)
		dst   string
	}{
		{
			// The SLAAC address shares 64 bits with the destination, the
			// static one 45 (rule 8), but its preferred lifetime is 0.
			name: "rule 3: avoid deprecated",
			dst:  "2001:db8:5::9",
			setup: func(e *relEnv) netip.Addr {
				e.slaacPrefix("2001:db8:5::/64", 3600, 0)
				add(e, "2001:db8:1::1/64")
				return addr("2001:db8:1::1")
			},
		},
		{
			// The same with a preferred lifetime: rule 8 picks the SLAAC
			// address, so the case above was decided by rule 3.
			name: "rule 3 control: preferred SLAAC address",
			dst:  "2001:db8:5::9",
			setup: func(e *relEnv) netip.Addr {
				a := e.slaacPrefix("2001:db8:5::/64", 3600, 1800)
				add(e, "2001:db8:1::1/64")
				return a
			},
		},
		{
			// A router says preferred lifetime 0 for a prefix whose address
			// the NIC already has (RFC 4862 §5.5.3 e): it is deprecated now.
			name: "rule 3: deprecated by a later advertisement",
			dst:  "2001:db8:5::9",
			setup: func(e *relEnv) netip.Addr {
				e.slaacPrefix("2001:db8:5::/64", 3600, 1800)
				add(e, "2001:db8:1::1/64")
				e.slaacPrefix("2001:db8:5::/64", 3600, 0)
				return addr("2001:db8:1::1")
			},
		},
		{
			// 2001:0:db8::1 is Teredo (label 5) and shares 20 bits with
			// the destination (label 1); 3fff::1 (label 1) shares 3.
			name: "rule 6: matching label",
			dst:  "2001:db8::9",
			setup: func(e *relEnv) netip.Addr {
				add(e, "2001:0:db8::1/64", "3fff::1/64")
				return addr("3fff::1")
			},
		},
		{
			// 62 common bits against 46; the other was added first.
			name: "rule 8: longest matching prefix",
			dst:  "2001:db8:1:2::9",
			setup: func(e *relEnv) netip.Addr {
				add(e, "2001:db8:2::1/64", "2001:db8:1::1/64")
				return addr("2001:db8:1::1")
			},
		},
		{
			// Rule 8 counts common bits only up to the source's prefix
			// length (RFC 6724 §2.2, as Linux): the /48 address matches 48
			// bits, the /64 one 64, though the /48 one shares more.
			name: "rule 8: up to the source's prefix length",
			dst:  "2001:db8:1::9",
			setup: func(e *relEnv) netip.Addr {
				add(e, "2001:db8:1::a/48", "2001:db8:1:0:8000::b/64")
				return addr("2001:db8:1:0:8000::b")
			},
		},
		{
			// ::2 and ::3 are secondaries of ::1; removing ::1 promotes ::2,
			// which becomes the newest address: the primary still wins
			// over the older secondary ::3.
			name: "primary before secondary",
			dst:  "2001:db8:1::9",
			setup: func(e *relEnv) netip.Addr {
				add(e, "2001:db8:1::1/64", "2001:db8:1::2/64", "2001:db8:1::3/64")
				if err := e.nic.RemoveAddress(netip.MustParsePrefix("2001:db8:1::1/64")); err != nil {
					t.Fatal(err)
				}
				return addr("2001:db8:1::2")
			},
		},
		{
			// Two primaries, 40 common bits each: the older one.
			name: "older before newer",
			dst:  "2001:db8:ff::9",
			setup: func(e *relEnv) netip.Addr {
				add(e, "2001:db8:3::1/64", "2001:db8:2::1/64")
				return addr("2001:db8:3::1")
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newSrcEnv6(t)
			want := c.setup(e)
			if !e.s.IsLocalAddress(want) {
				t.Fatalf("%v is not an address of the stack: %v", want, e.nic.Addresses())
			}
			r, err := e.s.FindRoute(0, netip.Addr{}, addr(c.dst))
			if err != nil {
				t.Fatal(err)
			}
			if r.LocalAddr != want {
				t.Errorf("source for %s: %v, want %v (addresses %v)", c.dst, r.LocalAddr, want, e.nic.Addresses())
			}
		})
	}
}
