package mld_test

import (
	"testing"

	"github.com/tapnet/tapnet/ipv6"
	"github.com/tapnet/tapnet/mld"
	"github.com/tapnet/tapnet/multicast"
)

// TestFilterIsShared: mld's filter is multicast's (so sockets keep one
// type for both families), and its modes are MLDv2's record types.
func TestFilterIsShared(t *testing.T) {
	var f mld.Filter = multicast.Filter{Mode: multicast.Exclude}
	if f.Mode != mld.Exclude {
		t.Fatalf("mode %d, want mld.Exclude", f.Mode)
	}
	if mld.Include != ipv6.ModeIsInclude || mld.Exclude != ipv6.ModeIsExclude {
		t.Fatalf("Include, Exclude = %d, %d; want %d, %d", mld.Include, mld.Exclude, ipv6.ModeIsInclude, ipv6.ModeIsExclude)
	}
}
