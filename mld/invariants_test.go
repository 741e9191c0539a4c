package mld

import (
	"net/netip"
	"testing"
	"time"

	"github.com/tapnet/tapnet/internal/fakeclock"
	"github.com/tapnet/tapnet/internal/mcast"
	"github.com/tapnet/tapnet/ipv6"
)

// checkInvariants fails when the host's bookkeeping disagrees with its
// groups: the running count of query sources, the caps, idle groups kept.
func checkInvariants(t *testing.T, h *Host) {
	t.Helper()
	if err := h.core.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}

// TestBoundsAreTheCores: the documented bounds are the ones the shared
// core enforces.
func TestBoundsAreTheCores(t *testing.T) {
	if MinQueryResponse != mcast.MinQueryResponse || MaxQuerySourcesPerGroup != mcast.MaxQuerySourcesPerGroup ||
		MaxQuerySourcesPerHost != mcast.MaxQuerySourcesPerHost {
		t.Fatal("mld's bounds differ from internal/mcast's")
	}
}

// TestCoreQuery: how queries read in the core's terms — the Maximum
// Response Code in milliseconds, exponential from 32768 in MLDv2 (RFC
// 3810 5.1.3) and capped plain milliseconds when an MLDv1 host reads it
// (Linux); QRV and QQIC; versions shifted by one.
func TestCoreQuery(t *testing.T) {
	group := netip.MustParseAddr("ff0e::db8:1")
	src := netip.MustParseAddr("2001:db8::7")
	v1 := func(code uint16, addr netip.Addr) ipv6.MLD {
		b := make([]byte, ipv6.MLDv1Len)
		ipv6.PutMLDv1(b, ipv6.ICMPMLDQuery, code, addr)
		return ipv6.MLD(b)
	}
	v2 := func(q ipv6.MLDv2Query) ipv6.MLD {
		b := make([]byte, q.Len())
		q.Put(b)
		return ipv6.MLD(b)
	}
	ms := time.Millisecond
	for _, c := range []struct {
		name string
		msg  ipv6.MLD
		want mcast.Query
		ok   bool
	}{
		{"v1 general", v1(1000, netip.IPv6Unspecified()), mcast.Query{Version: mcast.V2, Group: netip.IPv6Unspecified(), MaxResp: time.Second}, true},
		{"v1 0xffff is plain", v1(0xffff, group), mcast.Query{Version: mcast.V2, Group: group, MaxResp: 65535 * ms}, true},
		{"v1 unicast group", v1(1000, src), mcast.Query{}, false},
		{"v2 literal", v2(ipv6.MLDv2Query{MaxRespCode: 10000, Group: group, QRV: 3, QQIC: 125}),
			mcast.Query{Version: mcast.V3, Group: group, MaxResp: 10 * time.Second, CompatMaxResp: 10 * time.Second, QRV: 3, QueryInterval: 125 * time.Second, Sources: []byte{}}, true},
		{"v2 exponential", v2(ipv6.MLDv2Query{MaxRespCode: 0x9000, Group: group, QQIC: 0x90}),
			mcast.Query{Version: mcast.V3, Group: group, MaxResp: 65536 * ms, CompatMaxResp: 32767 * ms, QueryInterval: 256 * time.Second, Sources: []byte{}}, true},
	} {
		got, ok := coreQuery(c.msg)
		if ok != c.ok || ok && (got.Version != c.want.Version || got.Group != c.want.Group || got.MaxResp != c.want.MaxResp ||
			got.CompatMaxResp != c.want.CompatMaxResp || got.QRV != c.want.QRV || got.QueryInterval != c.want.QueryInterval || len(got.Sources) != 0) {
			t.Errorf("%s: %+v %v, want %+v %v", c.name, got, ok, c.want, c.ok)
		}
	}
	q, _ := coreQuery(v2(ipv6.MLDv2Query{Group: group, Sources: []netip.Addr{src, group}}))
	if a := src.As16(); len(q.Sources) != 32 || [16]byte(q.Sources) != a {
		t.Errorf("sources %x", q.Sources)
	}
}

// FuzzHost drives a host with a byte program: memberships change, MLD
// messages arrive (whatever bytes the fuzzer makes, and well-formed
// queries), time passes and timers fire. No input may panic or break the
// bookkeeping, and nothing is sent larger than the MTU or unparseable.
func FuzzHost(f *testing.F) {
	// An MLDv1 general query, an MLDv2 one, an MLDv1 report.
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7}, []byte{130, 0, 0, 0, 0x03, 0xe8, 0, 0, 15: 0, 23: 0})
	f.Add([]byte{1, 9, 2, 8, 3, 7, 4, 6, 5}, []byte{130, 0, 0, 0, 0x80, 0x00, 0, 0, 27: 0})
	f.Add([]byte{2, 2, 2, 6, 6, 6, 3, 3, 7}, []byte{131, 0, 0, 0, 0, 0, 0, 0, 0xff, 0x0e, 22: 0xdb, 23: 0x08})
	f.Add([]byte{4, 12, 0x84, 0x85, 6, 7}, []byte{143, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0xff, 0x0e, 27: 1})
	f.Fuzz(func(t *testing.T, prog, msg []byte) {
		clk := fakeclock.New()
		const mtu = 1280
		self := netip.MustParseAddr("fe80::2")
		h := New(Config{Now: clk.Now}, mtu, Hooks{Send: func(dst netip.Addr, m []byte) {
			if len(m) > mtu-ipv6.HeaderLen-ipv6.RouterAlertHopByHopLen {
				t.Fatalf("%d-byte message for MTU %d", len(m), mtu)
			}
			ipv6.PutChecksum(m, self, dst)
			icmp, err := ipv6.ParseICMP(m, self, dst)
			if err == nil {
				_, err = ipv6.ParseMLD(icmp)
			}
			if err != nil {
				t.Fatalf("sent a bad message: %v", err)
			}
		}}, nil)
		defer h.Close()
		groups := []netip.Addr{netip.MustParseAddr("ff0e::db8"), netip.MustParseAddr("ff3e::db8:2"), ipv6.AllNodes, netip.MustParseAddr("ff01::db8")}
		srcs := []netip.Addr{netip.MustParseAddr("2001:db8::7"), netip.MustParseAddr("2001:db8::8"), netip.MustParseAddr("2001:db8::9")}
		peers := []netip.Addr{netip.MustParseAddr("fe80::1"), netip.IPv6Unspecified(), srcs[0]}
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
				_ = h.Receive(msg, peers[int(op>>3)%len(peers)])
			case 5:
				q := ipv6.MLDv2Query{MaxRespCode: uint16(op) << 4, Group: groups[g], QRV: int(op & 7), Sources: srcs[:i%4]}
				if op&0x80 != 0 {
					q.Group = netip.Addr{}
				}
				b := make([]byte, q.Len())
				q.Put(b)
				_ = h.Receive(b, peers[0])
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
		// An MLDv2 query may ask for an answer up to 2.3 hours away (Maximum
		// Response Code 0xffff), so time jumps from deadline to deadline.
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
