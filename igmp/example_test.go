package igmp_test

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/tapnet/tapnet/igmp"
	"github.com/tapnet/tapnet/ipv4"
)

// A host on a hand-moved clock: joins, a query and a leave, and the
// reports they cause. A real interface wraps each message in an IPv4
// header with ipv4.PutRouterAlertHeader and sends it to dst.
func Example() {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	names := map[uint8]string{1: "IS_IN", 2: "IS_EX", 3: "TO_IN", 4: "TO_EX", 5: "ALLOW", 6: "BLOCK"}
	h := igmp.New(igmp.Config{Now: func() time.Time { return now }}, 1500, igmp.Hooks{
		Send: func(dst netip.Addr, msg []byte) {
			m, err := ipv4.ParseIGMP(msg)
			if err != nil {
				panic(err)
			}
			var recs []string
			for r := range m.Records() {
				var srcs []string
				for i := range r.NumSources() {
					srcs = append(srcs, r.Source(i).String())
				}
				recs = append(recs, fmt.Sprintf("%s(%v){%s}", names[r.Type()], r.Group(), strings.Join(srcs, ",")))
			}
			fmt.Printf("report to %v: %s\n", dst, strings.Join(recs, " "))
		},
	}, nil)
	defer h.Close()
	// Fire sends what is due, then the clock moves to the next deadline.
	runFor := func(d time.Duration) {
		end := now.Add(d)
		for next := h.Deadline(); !next.IsZero() && !next.After(end); next = h.Deadline() {
			now = next
			h.Fire()
		}
		now = end
	}

	group := netip.MustParseAddr("239.1.2.3")
	source := netip.MustParseAddr("192.0.2.7")
	// A socket joins the group for every source but one: the change is
	// reported at once and repeated within a second (Robustness 2).
	joined := igmp.Filter{Mode: igmp.Exclude, Sources: []netip.Addr{source}}
	h.ChangeMembership(group, igmp.Filter{}, joined)
	runFor(time.Second)
	fmt.Println("accepts 192.0.2.7:", h.Accepts(group, source))

	// A router asks what everyone wants, allowing 2 s for the answer.
	q := ipv4.IGMPv3Query{MaxRespCode: 20}
	query := make([]byte, q.Len())
	q.Put(query)
	if err := h.Receive(query); err != nil {
		panic(err)
	}
	runFor(2 * time.Second)

	// The socket leaves.
	h.ChangeMembership(group, joined, igmp.Filter{})
	runFor(time.Second)
	fmt.Println("groups:", len(h.Groups()), "reports:", h.Stats().ReportsSent.Load())
	// Output:
	// report to 224.0.0.22: TO_EX(239.1.2.3){192.0.2.7}
	// report to 224.0.0.22: TO_EX(239.1.2.3){192.0.2.7}
	// accepts 192.0.2.7: false
	// report to 224.0.0.22: IS_EX(239.1.2.3){192.0.2.7}
	// report to 224.0.0.22: TO_IN(239.1.2.3){}
	// report to 224.0.0.22: TO_IN(239.1.2.3){}
	// groups: 0 reports: 5
}

// Wiring a host to a real clock: Schedule resets one timer that calls
// Fire, as package stack does for each NIC.
func ExampleHooks() {
	var (
		timer *time.Timer // guarded by the host's lock: Schedule is called under it
		h     *igmp.Host
	)
	h = igmp.New(igmp.Config{}, 1500, igmp.Hooks{
		Send: func(dst netip.Addr, msg []byte) {
			// Copy msg behind ipv4.PutRouterAlertHeader's 24 bytes and a
			// link header, and write the frame to the link.
		},
		Schedule: func(d time.Duration) {
			switch {
			case d < 0:
				if timer != nil {
					timer.Stop()
				}
			case timer == nil:
				timer = time.AfterFunc(d, h.Fire)
			default:
				timer.Reset(d)
			}
		},
	}, nil)
	defer h.Close() // stops the timer and waits for a Fire in progress
	h.ChangeMembership(netip.MustParseAddr("239.1.2.3"), igmp.Filter{}, igmp.Filter{Mode: igmp.Exclude})
}
