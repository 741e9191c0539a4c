package multicast_test

import (
	"net/netip"
	"testing"

	"github.com/tapnet/tapnet/multicast"
)

func TestFilterMemberAndAllows(t *testing.T) {
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::2")
	for _, c := range []struct {
		f              multicast.Filter
		member         bool
		allowA, allowB bool
	}{
		{multicast.Filter{}, false, false, false},
		{multicast.Filter{Mode: multicast.Include, Sources: []netip.Addr{a}}, true, true, false},
		{multicast.Filter{Mode: multicast.Exclude}, true, true, true},
		{multicast.Filter{Mode: multicast.Exclude, Sources: []netip.Addr{b}}, true, true, false},
	} {
		if got := c.f.Member(); got != c.member {
			t.Errorf("%+v.Member() = %v, want %v", c.f, got, c.member)
		}
		if got := c.f.Allows(a); got != c.allowA {
			t.Errorf("%+v.Allows(%v) = %v, want %v", c.f, a, got, c.allowA)
		}
		if got := c.f.Allows(b); got != c.allowB {
			t.Errorf("%+v.Allows(%v) = %v, want %v", c.f, b, got, c.allowB)
		}
	}
}
