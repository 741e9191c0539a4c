package neigh_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/neigh"
)

// frame is a packet a link holds back until its next hop is resolved.
type frame []byte

func (f frame) Len() int { return len(f) }
func (f frame) Release() {}

// The neighbour unreachability detection states an IPv6 link's table goes
// through: a solicitation resolves the neighbour, an unsolicited
// advertisement with a new address makes it stale, sending through it
// starts Delay, and an upper-layer confirmation makes it reachable again.
func ExampleTable() {
	peer := netip.MustParseAddr("2001:db8::2")
	first := ethernet.MAC{0x02, 0, 0, 0, 0, 0x02}
	moved := ethernet.MAC{0x02, 0, 0, 0, 0, 0x22}

	table := neigh.New(neigh.Config{
		// Timers far off, so that only the packets below move the entry.
		RetransTime:         time.Hour,
		DelayFirstProbeTime: time.Hour,
		ReachableTime:       time.Hour,
	}, neigh.Hooks{
		Solicit: func(addr netip.Addr, dst ethernet.MAC) {
			fmt.Println("solicit", addr, "multicast:", dst == ethernet.MAC{})
		},
		Resolved: func(addr netip.Addr, mac ethernet.MAC, pkts []neigh.Pending) {
			fmt.Println("resolved", addr, "at", mac, "sending", len(pkts), "queued packet(s)")
		},
	}, nil)
	defer table.Close()
	state := func() neigh.State {
		e, _ := table.Lookup(peer)
		return e.State
	}

	table.Resolve(peer, frame("first"))
	table.Resolve(peer, frame("second"))
	fmt.Println(state())

	// A solicited neighbor advertisement with a target link-layer address.
	table.Update(peer, neigh.Update{MAC: first, Solicited: true, Override: true})
	fmt.Println(state())

	// An unsolicited advertisement without the Override flag naming
	// another address: the entry is no longer trusted, but still used.
	table.Update(peer, neigh.Update{MAC: moved})
	fmt.Println(state())

	mac, _ := table.Resolve(peer, nil)
	fmt.Println(state(), "still sending to", mac)

	table.Confirm(peer) // say a reply came back over a connection
	fmt.Println(state())
	// Output:
	// solicit 2001:db8::2 multicast: true
	// incomplete
	// resolved 2001:db8::2 at 02:00:00:00:00:02 sending 2 queued packet(s)
	// reachable
	// stale
	// delay still sending to 02:00:00:00:00:02
	// reachable
}

// Entries lists the table as `ip neigh` would.
func ExampleTable_Entries() {
	table := neigh.New(neigh.Config{RetransTime: time.Hour}, neigh.Hooks{}, nil)
	defer table.Close()
	a := netip.MustParseAddr("198.51.100.1")
	b := netip.MustParseAddr("198.51.100.2")
	table.Resolve(a, nil)
	table.Resolve(b, nil)
	table.Update(a, neigh.Update{MAC: ethernet.MAC{0x02, 0, 0, 0, 0, 1}, Solicited: true, Override: true})

	for _, e := range table.Entries(nil) {
		fmt.Println(e.Addr, e.MAC, e.State)
	}
	fmt.Println("solicitations:", table.Stats().Requests.Load())
	// Output:
	// 198.51.100.1 02:00:00:00:00:01 reachable
	// 198.51.100.2 00:00:00:00:00:00 incomplete
	// solicitations: 2
}
