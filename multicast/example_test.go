package multicast_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/tapnet/tapnet/igmp"
	"github.com/tapnet/tapnet/mld"
	"github.com/tapnet/tapnet/multicast"
)

// Source filters as a socket holds them after joining a group: any-source
// (EXCLUDE with a block list) or source-specific (INCLUDE with an allow
// list). The zero Filter means "not a member".
func ExampleFilter() {
	good := netip.MustParseAddr("192.0.2.10")
	bad := netip.MustParseAddr("192.0.2.66")

	anySource := multicast.Filter{Mode: multicast.Exclude, Sources: []netip.Addr{bad}}
	ssm := multicast.Filter{Mode: multicast.Include, Sources: []netip.Addr{good}}
	var none multicast.Filter

	for _, f := range []multicast.Filter{anySource, ssm, none} {
		fmt.Println("member:", f.Member(), "from good:", f.Allows(good), "from bad:", f.Allows(bad))
	}
	// Output:
	// member: true from good: true from bad: false
	// member: true from good: true from bad: false
	// member: false from good: false from bad: false
}

// One Hooks type connects an IGMP host and an MLD host to an interface:
// Send gets each report with its destination, Schedule says when Fire
// is due. Here a manual clock stands in for the timer Schedule would
// reset.
func ExampleHooks() {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	hooks := multicast.Hooks{
		Send: func(dst netip.Addr, msg []byte) {
			fmt.Printf("report to %v (%d bytes)\n", dst, len(msg))
		},
		Schedule: func(d time.Duration) {}, // a real interface resets a time.Timer to d
	}
	v4 := igmp.New(igmp.Config{Now: clock}, 1500, hooks, nil)
	defer v4.Close()
	v6 := mld.New(mld.Config{Now: clock}, 1500, hooks, nil)
	defer v6.Close()

	join := multicast.Filter{Mode: multicast.Exclude} // every source
	v4.ChangeMembership(netip.MustParseAddr("239.1.2.3"), multicast.Filter{}, join)
	v6.ChangeMembership(netip.MustParseAddr("ff0e::1:2"), multicast.Filter{}, join)

	// The first report of a change is due at once; its repetition later.
	for _, h := range []interface {
		Deadline() time.Time
		Fire()
	}{v4, v6} {
		if !h.Deadline().After(now) {
			h.Fire()
		}
	}
	// Output:
	// report to 224.0.0.22 (16 bytes)
	// report to ff02::16 (28 bytes)
}
