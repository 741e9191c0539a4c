package igmp_test

import (
	"testing"

	"github.com/tapnet/tapnet/igmp"
	"github.com/tapnet/tapnet/ipv4"
	"github.com/tapnet/tapnet/multicast"
)

// TestFilterIsShared: igmp's filter is multicast's (so sockets keep one
// type for both families), and its modes are IGMPv3's record types.
func TestFilterIsShared(t *testing.T) {
	var f igmp.Filter = multicast.Filter{Mode: multicast.Exclude}
	if f.Mode != igmp.Exclude {
		t.Fatalf("mode %d, want igmp.Exclude", f.Mode)
	}
	if igmp.Include != ipv4.ModeIsInclude || igmp.Exclude != ipv4.ModeIsExclude {
		t.Fatalf("Include, Exclude = %d, %d; want %d, %d", igmp.Include, igmp.Exclude, ipv4.ModeIsInclude, ipv4.ModeIsExclude)
	}
}
