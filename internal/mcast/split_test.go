package mcast

import (
	"net/netip"
	"testing"
)

// TestSplitRecords: INCLUDE-type and source-change records are split at
// maxSrcs sources without losing any; EXCLUDE-type ones are cut short.
// (The host behaviour is tested through packages igmp and mld.)
func TestSplitRecords(t *testing.T) {
	srcs := make([]netip.Addr, 7)
	for i := range srcs {
		srcs[i] = netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)})
	}
	g := netip.MustParseAddr("239.1.2.3")
	for _, c := range []struct {
		typ  uint8
		want []int // source counts of the pieces
	}{
		{ModeIsInclude, []int{3, 3, 1}},
		{AllowNewSources, []int{3, 3, 1}},
		{BlockOldSources, []int{3, 3, 1}},
		{ChangeToIncludeMode, []int{3, 3, 1}},
		{ModeIsExclude, []int{3}},
		{ChangeToExcludeMode, []int{3}},
	} {
		got := splitRecords([]Record{{Type: c.typ, Group: g, Sources: srcs}}, 3)
		var counts []int
		next := 0
		for _, r := range got {
			counts = append(counts, len(r.Sources))
			for _, s := range r.Sources {
				if s != srcs[next] || r.Type != c.typ || r.Group != g {
					t.Fatalf("type %d: piece %+v out of order", c.typ, r)
				}
				next++
			}
		}
		if len(counts) != len(c.want) {
			t.Fatalf("type %d: pieces of %v sources, want %v", c.typ, counts, c.want)
		}
		for i := range counts {
			if counts[i] != c.want[i] {
				t.Fatalf("type %d: pieces of %v sources, want %v", c.typ, counts, c.want)
			}
		}
	}
}
