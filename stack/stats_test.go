package stack_test

import (
	"net/netip"
	"reflect"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/tapnet/tapnet/arp"
	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/igmp"
	"github.com/tapnet/tapnet/internal/fakeclock"
	"github.com/tapnet/tapnet/ipv4"
	"github.com/tapnet/tapnet/stack"
)

// TestSnapshotHasEveryCounter sets every atomic counter reachable in Stats,
// exported or not and nested at any depth, to a value of its own: Snapshot
// must report each of them once.
func TestSnapshotHasEveryCounter(t *testing.T) {
	var st stack.Stats
	n := uint64(0)
	var walk func(path string, v reflect.Value)
	walk = func(path string, v reflect.Value) {
		for i := 0; i < v.NumField(); i++ {
			f, fv := v.Type().Field(i), v.Field(i)
			switch {
			case f.Type == reflect.TypeFor[atomic.Uint64]():
				n++
				(*atomic.Uint64)(unsafe.Pointer(fv.UnsafeAddr())).Store(n)
			case f.Type.Kind() == reflect.Struct:
				walk(path+f.Name+".", fv)
			default:
				t.Errorf("%s%s is a %v: Snapshot reads only atomic.Uint64 counters in nested structs", path, f.Name, f.Type)
			}
		}
	}
	walk("", reflect.ValueOf(&st).Elem())
	snap := st.Snapshot()
	seen := make(map[uint64]string)
	for k, v := range snap {
		if other, dup := seen[v]; dup || v == 0 || v > n {
			t.Errorf("%s = %d (also %q)", k, v, other)
		}
		seen[v] = k
	}
	if len(snap) != int(n) || len(seen) != int(n) {
		t.Errorf("Snapshot has %d counters, %d distinct; Stats has %d", len(snap), len(seen), n)
	}
	for _, k := range []string{"Link.RxFrames", "ARP.Received", "ARP.Evicted", "IP.Received", "Reassembly.Timeouts", "Reassembly.InFlight", "Reassembly.MemoryUsed",
		"ICMP.Received", "IGMP.Received", "UDP.Received"} {
		if _, ok := snap[k]; !ok {
			t.Errorf("Snapshot lacks %s", k)
		}
	}
}

// statsEnv is a relEnv whose ARP cache and reassembler run on a clock the
// test drives.
type statsEnv struct {
	*relEnv
	clk *fakeclock.Clock
}

// pingFrom returns an echo request from on-link host i, whose answer needs
// i's MAC resolved.
func pingFrom(i int) []byte {
	return relEther(relOurMAC, relMAC(i), ethernet.TypeIPv4, relIPv4(relIP{ttl: 64, proto: 1, src: relHost(i), dst: relOurIP,
		payload: relICMP(8, 0, uint32(i), []byte("ping"))}))
}

// igmpQuery returns a group-and-source-specific IGMPv3 query from the peer.
func igmpQuery(group netip.Addr, sources []netip.Addr) []byte {
	q := ipv4.IGMPv3Query{MaxRespCode: 10, Group: group, Sources: sources}
	return igmpFrame(group, q.Len(), q.Put)
}

func igmpFrame(dst netip.Addr, n int, put func([]byte)) []byte {
	msg := make([]byte, n)
	put(msg)
	return relEther(ethernet.MulticastIPv4(dst.As4()), relPeerMAC, ethernet.TypeIPv4, relIPv4(relIP{tos: 0xc0, ttl: 1, proto: 2,
		src: relPeerIP, dst: dst, opts: []byte{0x94, 0x04, 0, 0}, payload: msg}))
}

// joinBlocking joins relGroup excluding source 192.0.2.7.
func (e *statsEnv) joinBlocking(t *testing.T) {
	ep := e.listen(netip.Addr{}, 5000)
	if err := ep.JoinGroup(e.nic, relGroup); err != nil {
		t.Fatal(err)
	}
	if err := ep.BlockSource(e.nic, relGroup, relHost(7)); err != nil {
		t.Fatal(err)
	}
}

// TestSnapshotCountsEveryDrop provokes one drop of each kind the ARP
// cache, the reassembler and IGMP count, and finds it in Snapshot.
func TestSnapshotCountsEveryDrop(t *testing.T) {
	frag := func(src netip.Addr, id uint16, offset int, mf bool, payload []byte) []byte {
		return relFrag(src, relOurIP, 17, id, offset, mf, payload, relOurMAC)
	}
	bytes := func(b byte, n int) []byte {
		p := make([]byte, n)
		for i := range p {
			p[i] = b
		}
		return p
	}
	cases := []struct {
		counter string
		opts    stack.Options
		provoke func(t *testing.T, e *statsEnv)
	}{
		{"ARP.Malformed", stack.Options{}, func(t *testing.T, e *statsEnv) {
			e.link.inject(relARPMut(func(p []byte) []byte { p[7] = 3; return p }))
		}},
		{"ARP.NotForUs", stack.Options{}, func(t *testing.T, e *statsEnv) {
			e.link.inject(relARP(1, relPeerMAC, relPeerIP, ethernet.MAC{}, relHost(50), ethernet.Broadcast))
		}},
		{"ARP.MartianSource", stack.Options{}, func(t *testing.T, e *statsEnv) {
			e.link.inject(relARP(1, ethernet.MAC{0x01, 0, 0x5e, 0, 0, 1}, relHost(60), ethernet.MAC{}, relOurIP, ethernet.Broadcast))
		}},
		{"ARP.Conflicts", stack.Options{}, func(t *testing.T, e *statsEnv) {
			e.link.inject(relARP(2, relMAC(9), relOurIP, relOurMAC, relPeerIP, relOurMAC))
		}},
		{"ARP.UnsolicitedSeen", stack.Options{}, func(t *testing.T, e *statsEnv) {
			e.link.inject(relARP(2, relMAC(9), relHost(9), relOurMAC, relOurIP, relOurMAC))
		}},
		{"ARP.LockTimeIgnored", stack.Options{}, func(t *testing.T, e *statsEnv) {
			e.link.inject(relARP(2, relMAC(9), relPeerIP, relOurMAC, relOurIP, relOurMAC))
		}},
		{"ARP.PendingDropped", stack.Options{ARP: arp.Config{MaxPending: 1}}, func(t *testing.T, e *statsEnv) {
			e.link.inject(pingFrom(9))
			e.link.inject(pingFrom(9)) // its answer pushes out the first one's
		}},
		{"ARP.CacheFullDrops", stack.Options{ARP: arp.Config{MaxEntries: 2}}, func(t *testing.T, e *statsEnv) {
			e.link.inject(pingFrom(9))  // the one resolution allowed
			e.link.inject(pingFrom(10)) // too young to evict
		}},
		{"ARP.Evicted", stack.Options{ARP: arp.Config{MaxEntries: 2}}, func(t *testing.T, e *statsEnv) {
			e.link.inject(pingFrom(9))
			e.clk.Advance(6 * time.Second) // past GCMinAge: 9 may make way
			e.link.inject(pingFrom(10))
		}},
		{"ARP.Collected", stack.Options{ARP: arp.Config{MaxEntries: 8}}, func(t *testing.T, e *statsEnv) {
			e.clk.Advance(2 * time.Minute) // the peer idle past StaleTime
			e.link.inject(pingFrom(9))
		}},
		{"ARP.Failed", stack.Options{ARP: arp.Config{Retries: 1, RetransInterval: time.Millisecond}}, func(t *testing.T, e *statsEnv) {
			e.link.inject(pingFrom(9))
			deadline := time.Now().Add(10 * time.Second)
			for e.s.Stats().ARP.Failed.Load() == 0 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		}},
		{"Reassembly.Duplicates", stack.Options{}, func(t *testing.T, e *statsEnv) {
			e.link.inject(frag(relPeerIP, 1, 0, true, bytes('a', 16)))
			e.link.inject(frag(relPeerIP, 1, 0, true, bytes('a', 16)))
		}},
		{"Reassembly.Overlaps", stack.Options{}, func(t *testing.T, e *statsEnv) {
			e.link.inject(frag(relPeerIP, 1, 0, true, bytes('a', 16)))
			e.link.inject(frag(relPeerIP, 1, 8, true, bytes('b', 16)))
		}},
		{"Reassembly.Tombstoned", stack.Options{}, func(t *testing.T, e *statsEnv) {
			e.link.inject(frag(relPeerIP, 1, 0, true, bytes('a', 16)))
			e.link.inject(frag(relPeerIP, 1, 8, true, bytes('b', 16)))
			e.link.inject(frag(relPeerIP, 1, 32, true, bytes('c', 8)))
		}},
		{"Reassembly.LengthConflicts", stack.Options{}, func(t *testing.T, e *statsEnv) {
			e.link.inject(frag(relPeerIP, 1, 16, false, bytes('a', 8)))
			e.link.inject(frag(relPeerIP, 1, 24, false, bytes('a', 8)))
		}},
		{"Reassembly.Oversize", stack.Options{}, func(t *testing.T, e *statsEnv) {
			// Within 65535 bytes of payload, as IP checks, but not with
			// its header.
			e.link.inject(frag(relPeerIP, 1, 65528, false, bytes('a', 7)))
		}},
		{"Reassembly.BadFragment", stack.Options{}, func(t *testing.T, e *statsEnv) {
			e.link.inject(frag(relPeerIP, 1, 0, true, bytes('a', 5)))
		}},
		{"Reassembly.Timeouts", stack.Options{}, func(t *testing.T, e *statsEnv) {
			e.link.inject(frag(relPeerIP, 1, 8, true, bytes('a', 8)))
			e.clk.Advance(time.Minute)
			stack.ExpireReassembly(e.s)
		}},
		{"Reassembly.MemoryEvictions", stack.Options{Reassembly: stack.ReassemblyOptions{HighThresh: 1}}, func(t *testing.T, e *statsEnv) {
			e.link.inject(frag(relPeerIP, 1, 8, true, bytes('a', 8)))
			e.link.inject(frag(relPeerIP, 2, 8, true, bytes('a', 8)))
		}},
		{"Reassembly.SourceLimit", stack.Options{Reassembly: stack.ReassemblyOptions{MaxPerSource: 1}}, func(t *testing.T, e *statsEnv) {
			e.link.inject(frag(relPeerIP, 1, 8, true, bytes('a', 8)))
			e.link.inject(frag(relPeerIP, 2, 8, true, bytes('a', 8)))
		}},
		{"Reassembly.DatagramLimit", stack.Options{Reassembly: stack.ReassemblyOptions{MaxDatagrams: 1}}, func(t *testing.T, e *statsEnv) {
			e.link.inject(frag(relPeerIP, 1, 8, true, bytes('a', 8)))
			e.link.inject(frag(relHost(9), 1, 8, true, bytes('a', 8)))
		}},
		{"IGMP.Malformed", stack.Options{}, func(t *testing.T, e *statsEnv) {
			e.link.inject(igmpFrame(ipv4.AllHostsGroup, 3, func(b []byte) { copy(b, []byte{0x11, 1, 0}) }))
		}},
		{"IGMP.BadChecksum", stack.Options{}, func(t *testing.T, e *statsEnv) {
			e.link.inject(igmpFrame(ipv4.AllHostsGroup, ipv4.IGMPLen, func(b []byte) {
				ipv4.PutIGMP(b, ipv4.IGMPMembershipQuery, 10, netip.IPv4Unspecified())
				b[2] ^= 0xff
			}))
		}},
		{"IGMP.QuerySourcesIgnored", stack.Options{}, func(t *testing.T, e *statsEnv) {
			e.joinBlocking(t)
			e.link.inject(igmpQuery(relGroup, []netip.Addr{relHost(7)})) // a source we block
		}},
		{"IGMP.QuerySourcesDropped", stack.Options{}, func(t *testing.T, e *statsEnv) {
			e.joinBlocking(t)
			srcs := make([]netip.Addr, igmp.MaxQuerySourcesPerGroup+1)
			for i := range srcs {
				srcs[i] = netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)})
			}
			e.link.inject(igmpQuery(relGroup, srcs))
		}},
	}
	for _, c := range cases {
		t.Run(c.counter, func(t *testing.T) {
			clk := fakeclock.New()
			c.opts.ARP.Now = clk.Now
			c.opts.Reassembly.Now = clk.Now
			e := &statsEnv{newRelEnv(t, c.opts), clk}
			before := e.s.Stats().Snapshot()
			c.provoke(t, e)
			d := relDelta(before, e.s.Stats().Snapshot())
			if d[c.counter] == 0 {
				t.Errorf("%s did not move; counters moved: %s", c.counter, relFormat(d))
			}
		})
	}
}
