package mld_test

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/tapnet/tapnet/ipv6"
	"github.com/tapnet/tapnet/mld"
)

// A host on a hand-moved clock: a join, a query from the router and a
// leave, and the reports they cause. A real interface completes each
// message's checksum over the source it picks, puts it behind an IPv6
// header (hop limit 1) and ipv6.PutRouterAlertHopByHop, and sends it to
// dst.
func Example() {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	self := netip.MustParseAddr("fe80::2") // the interface's link-local address
	names := map[uint8]string{1: "IS_IN", 2: "IS_EX", 3: "TO_IN", 4: "TO_EX", 5: "ALLOW", 6: "BLOCK"}
	h := mld.New(mld.Config{Now: func() time.Time { return now }}, 1500, mld.Hooks{
		Send: func(dst netip.Addr, msg []byte) {
			ipv6.PutChecksum(msg, self, dst)
			m, err := ipv6.ParseMLD(msg)
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

	group := netip.MustParseAddr("ff3e::db8:1")
	source := netip.MustParseAddr("2001:db8::7")
	// A socket asks for one source of a source-specific group: the change
	// is reported at once and repeated within a second (Robustness 2).
	joined := mld.Filter{Mode: mld.Include, Sources: []netip.Addr{source}}
	h.ChangeMembership(group, mld.Filter{}, joined)
	runFor(time.Second)
	fmt.Println("accepts 2001:db8::7:", h.Accepts(group, source))

	// The router asks what everyone wants, allowing 2 s for the answer.
	q := ipv6.MLDv2Query{MaxRespCode: 2000}
	query := make([]byte, q.Len())
	q.Put(query)
	if err := h.Receive(query, netip.MustParseAddr("fe80::1")); err != nil {
		panic(err)
	}
	runFor(2 * time.Second)

	// The socket leaves.
	h.ChangeMembership(group, joined, mld.Filter{})
	runFor(time.Second)
	fmt.Println("groups:", len(h.Groups()), "reports:", h.Stats().ReportsSent.Load())
	// Output:
	// report to ff02::16: ALLOW(ff3e::db8:1){2001:db8::7}
	// report to ff02::16: ALLOW(ff3e::db8:1){2001:db8::7}
	// accepts 2001:db8::7: true
	// report to ff02::16: IS_IN(ff3e::db8:1){2001:db8::7}
	// report to ff02::16: BLOCK(ff3e::db8:1){2001:db8::7}
	// report to ff02::16: BLOCK(ff3e::db8:1){2001:db8::7}
	// groups: 0 reports: 5
}
