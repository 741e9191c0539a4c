package igmp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/tapnet/tapnet/internal/fakeclock"
	"github.com/tapnet/tapnet/internal/mcast"
	"github.com/tapnet/tapnet/ipv4"
)

// checkInvariants fails when the host's bookkeeping disagrees with its
// groups: the running count of query sources, the caps, and sources kept
// that the answer would not list.
func checkInvariants(t *testing.T, h *Host) {
	t.Helper()
	if err := h.core.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}

// FuzzHost drives a host with a byte program: memberships change, IGMP
// messages arrive (whatever bytes the fuzzer makes, and well-formed
// queries), time passes and timers fire. No input may panic or break the
// bookkeeping, and nothing is sent larger than the MTU.
func FuzzHost(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7}, []byte{0x11, 0x64, 0xee, 0x9b, 0, 0, 0, 0})
	f.Add([]byte{1, 9, 2, 8, 3, 7, 4, 6, 5}, []byte{0x11, 0, 0xee, 0xff, 0, 0, 0, 0})
	f.Add([]byte{2, 2, 2, 6, 6, 6, 3, 3, 7}, []byte{0x16, 0, 0x09, 0xfe, 0xef, 1, 2, 3})
	f.Fuzz(func(t *testing.T, prog, msg []byte) {
		clk := fakeclock.New()
		const mtu = 200
		h := New(Config{Now: clk.Now}, mtu, Hooks{Send: func(dst netip.Addr, m []byte) {
			if len(m) > mtu-ipv4.RouterAlertHeaderLen {
				t.Fatalf("%d-byte message for MTU %d", len(m), mtu)
			}
			if _, err := ipv4.ParseIGMP(m); err != nil {
				t.Fatalf("sent a bad message: %v", err)
			}
		}}, nil)
		defer h.Close()
		groups := []netip.Addr{netip.MustParseAddr("239.1.2.3"), netip.MustParseAddr("239.1.2.4"), ipv4.AllHostsGroup}
		srcs := []netip.Addr{netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("192.0.2.8"), netip.MustParseAddr("192.0.2.9")}
		// One socket per group, whose filter the program rewrites.
		filters := make([]Filter, len(groups))
		for i, op := range prog {
			g, s := int(op>>3)%len(groups), srcs[int(op>>5)%len(srcs)]
			var next Filter
			switch op & 7 {
			case 0:
				next = Filter{Mode: Exclude}
			case 1:
				next = Filter{Mode: Exclude, Sources: []netip.Addr{s}}
			case 2:
				next = Filter{Mode: Include, Sources: []netip.Addr{s}}
			case 3:
				next = Filter{} // leave
			case 4:
				_ = h.Receive(msg)
			case 5:
				q := ipv4.IGMPv3Query{MaxRespCode: op, Group: groups[g], QRV: int(op & 7), Sources: srcs[:i%4]}
				if op&0x80 != 0 {
					q.Group = netip.Addr{}
				}
				b := make([]byte, q.Len())
				q.Put(b)
				_ = h.Receive(b)
			case 6:
				clk.Advance(time.Duration(op) * 50 * time.Millisecond)
				h.Fire()
			case 7:
				if d := h.Deadline(); !d.IsZero() {
					clk.Advance(d.Sub(clk.Now()))
					h.Fire()
				}
			}
			if op&7 <= 3 {
				h.ChangeMembership(groups[g], filters[g], next)
				filters[g] = next
			}
			checkInvariants(t, h)
		}
		// Every socket leaves; with enough time nothing stays pending.
		// A query may ask for an answer up to 53 minutes away, so time jumps
		// from deadline to deadline.
		for g := range groups {
			h.ChangeMembership(groups[g], filters[g], Filter{})
		}
		for range 100 {
			d := h.Deadline()
			if d.IsZero() {
				break
			}
			clk.Advance(max(d.Sub(clk.Now()), time.Millisecond))
			h.Fire()
		}
		checkInvariants(t, h)
		if !h.Deadline().IsZero() || len(h.Groups()) != 0 {
			t.Fatalf("after leaving everything: deadline %v, groups %v", h.Deadline(), h.Groups())
		}
	})
}

// TestBoundsAreTheCores: the documented bounds are the ones the shared
// core enforces.
func TestBoundsAreTheCores(t *testing.T) {
	if MinQueryResponse != mcast.MinQueryResponse || MaxQuerySourcesPerGroup != mcast.MaxQuerySourcesPerGroup ||
		MaxQuerySourcesPerHost != mcast.MaxQuerySourcesPerHost {
		t.Fatal("igmp's bounds differ from internal/mcast's")
	}
}
