package stack

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
)

// testEP is a TransportEndpoint that only has an identity.
type testEP struct{ name string }

func (*testEP) HandlePacket(p Packet) Delivery                { p.Payload.Release(); return Delivered }
func (*testEP) HandleError(ControlError)                      {}
func (*testEP) AcceptMulticast(_, _ netip.Addr, _ NICID) bool { return true }
func (*testEP) StackClosed()                                  {}
func (e *testEP) String() string                              { return e.name }

var (
	dmA     = netip.MustParseAddr("192.0.2.1")
	dmB     = netip.MustParseAddr("192.0.2.9")
	dmGroup = netip.MustParseAddr("239.1.2.3")
	dmPeer1 = netip.MustParseAddr("198.51.100.1")
	dmPeer2 = netip.MustParseAddr("198.51.100.2")
	dmA6    = netip.MustParseAddr("2001:db8::1")
	dmGrp6  = netip.MustParseAddr("ff0e::1:3")
	dmPeer6 = netip.MustParseAddr("2001:db8:1::1")
	dmAny4  = netip.IPv4Unspecified()
	dmAny6  = netip.IPv6Unspecified()
)

// refBinding is a binding of the reference model.
type refBinding struct {
	b        binding
	seq      int
	bindAddr bool       // bound to an address, kept on disconnect
	wildcard netip.Addr // the address it was bound to, restored on disconnect
}

// refDemux is the specification the demux must match: a plain list of
// every binding, scanned for each question.
type refDemux struct {
	list []*refBinding
	seq  int
}

func (r *refDemux) conflicts(id TransportID, reuse bool) bool {
	for _, x := range r.list {
		if x.b.id.LocalPort != id.LocalPort || x.b.reuse && reuse {
			continue
		}
		if refOverlaps(x.b.id.LocalAddr, id.LocalAddr) {
			return true
		}
	}
	return false
}

// refAccepts reports whether a binding to local address la takes
// datagrams to a, spelled out case by case.
func refAccepts(la, a netip.Addr) bool {
	switch {
	case !la.IsValid():
		return true
	case la == netip.IPv4Unspecified():
		return a.Is4()
	case la == netip.IPv6Unspecified():
		return a.Is6()
	}
	return la == a
}

// refOverlaps reports whether two local addresses share a datagram
// destination: one the model probes, or another of each family.
func refOverlaps(a, b netip.Addr) bool {
	for _, d := range []netip.Addr{dmA, dmB, dmGroup, dmA6, dmGrp6, netip.MustParseAddr("192.0.2.200"), netip.MustParseAddr("2001:db8::200")} {
		if refAccepts(a, d) && refAccepts(b, d) {
			return true
		}
	}
	return false
}

// lookup is Linux's order: among the bindings accepting the datagram, those
// on the destination address before those on any address, then the
// highest score, then the earliest bound.
func (r *refDemux) lookup(local, remote netip.AddrPort, nic NICID) TransportEndpoint {
	var top *refBinding
	topRank := -1
	for _, x := range r.list {
		if x.b.id.LocalPort != local.Port() {
			continue
		}
		rank := x.b.score(local, remote, nic)
		if !refAccepts(x.b.id.LocalAddr, local.Addr()) {
			rank = -1
		}
		if rank >= 0 && isSpecific(x.b.id.LocalAddr) {
			rank += 100
		}
		if rank > topRank || rank == topRank && rank >= 0 && x.seq < top.seq {
			top, topRank = x, rank
		}
	}
	if top == nil {
		return nil
	}
	return top.b.ep
}

func (r *refDemux) lookupAll(local, remote netip.AddrPort, nic NICID) []TransportEndpoint {
	var out []TransportEndpoint
	for _, x := range r.list {
		if x.b.id.LocalPort == local.Port() && x.b.score(local, remote, nic) >= 0 {
			out = append(out, x.b.ep)
		}
	}
	return out
}

func (r *refDemux) find(ep TransportEndpoint) int {
	return slices.IndexFunc(r.list, func(x *refBinding) bool { return x.b.ep == ep })
}

func epNames(eps []TransportEndpoint) []string {
	out := make([]string, len(eps))
	for i, ep := range eps {
		out[i] = fmt.Sprint(ep)
	}
	slices.Sort(out)
	return out
}

// TestDemuxMatchesReference drives the demux and the reference model with
// the same random binds, connects, disconnects and closes, on ports busy
// enough to switch between the scanned list and the index, and checks that
// bind errors, unicast lookups and multicast/broadcast lookups agree.
func TestDemuxMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	locals := []netip.Addr{{}, dmAny4, dmAny6, dmA, dmB, dmGroup, dmA6, dmGrp6}
	peers := []netip.Addr{dmPeer1, dmPeer2, dmPeer6}
	ports := []uint16{7, 9000}
	var d demux
	var ref refDemux
	var live []*testEP
	probe := func(step int) {
		for _, port := range ports {
			for _, la := range []netip.Addr{dmA, dmB, dmGroup, dmA6, dmGrp6} {
				for _, pa := range peers {
					if pa.Is4() != la.Is4() {
						continue
					}
					for rp := uint16(1); rp <= 2; rp++ {
						for nic := NICID(1); nic <= 2; nic++ {
							local, remote := netip.AddrPortFrom(la, port), netip.AddrPortFrom(pa, rp)
							got, want := d.lookup(17, local, remote, nic), ref.lookup(local, remote, nic)
							if got != want {
								t.Fatalf("step %d: lookup %v from %v on NIC %d = %v, want %v", step, local, remote, nic, got, want)
							}
							all := epNames(d.lookupAll(nil, 17, local, remote, nic))
							wantAll := epNames(ref.lookupAll(local, remote, nic))
							if !slices.Equal(all, wantAll) {
								t.Fatalf("step %d: lookupAll %v from %v on NIC %d = %v, want %v", step, local, remote, nic, all, wantAll)
							}
						}
					}
				}
			}
		}
	}
	for step := range 1500 {
		switch op := rng.IntN(10); {
		case op < 5 || len(live) == 0: // bind
			id := TransportID{LocalAddr: locals[rng.IntN(len(locals))], LocalPort: ports[rng.IntN(len(ports))]}
			reuse, nic := rng.IntN(4) != 0, NICID(rng.IntN(3))
			ep := &testEP{name: fmt.Sprintf("ep%d", step)}
			_, err := d.register(17, id, ep, reuse, nic)
			if want := ref.conflicts(id, reuse); want != (err != nil) {
				t.Fatalf("step %d: bind %+v reuse=%v: err %v, want conflict=%v", step, id, reuse, err, want)
			}
			if err == nil {
				ref.seq++
				ref.list = append(ref.list, &refBinding{b: binding{id: id, ep: ep, reuse: reuse, nic: nic}, seq: ref.seq, bindAddr: isSpecific(id.LocalAddr), wildcard: id.LocalAddr})
				live = append(live, ep)
			}
		case op < 8: // connect, or disconnect half the time, as udp does
			ep := live[rng.IntN(len(live))]
			x := ref.list[ref.find(ep)]
			id := x.b.id
			if rng.IntN(2) == 0 {
				// Connect narrows a wildcard to an address of the
				// peer's family, as a route's source would be.
				pa := peers[rng.IntN(len(peers))]
				if la := id.LocalAddr; la.IsValid() && la.Is4() != pa.Is4() {
					pa = map[bool]netip.Addr{true: dmPeer1, false: dmPeer6}[la.Is4()]
				}
				if !isSpecific(id.LocalAddr) {
					id.LocalAddr = map[bool]netip.Addr{true: []netip.Addr{dmA, dmB}[rng.IntN(2)], false: dmA6}[pa.Is4()]
				}
				id.RemoteAddr, id.RemotePort = pa, uint16(1+rng.IntN(2))
			} else {
				id.RemoteAddr, id.RemotePort = netip.Addr{}, 0
				if !x.bindAddr {
					id.LocalAddr = x.wildcard
				}
			}
			d.replace(17, x.b.id, id, ep)
			x.b.id = id
		default: // close
			i := rng.IntN(len(live))
			ep := live[i]
			j := ref.find(ep)
			d.unregister(17, ref.list[j].b.id, ep)
			ref.list = slices.Delete(ref.list, j, j+1)
			live = slices.Delete(live, i, i+1)
		}
		probe(step)
	}
	for _, port := range ports {
		if pe, g := d.readPort(17, port); g != nil {
			indexed := pe != nil && pe.idx != nil
			g.mu.RUnlock()
			if indexed {
				return
			}
		}
	}
	t.Fatal("no port ended up indexed: the index was not exercised")
}

// TestDemuxSpecificAddressBeatsDeviceWildcard: as in Linux, a socket on the
// datagram's destination address wins over one on any address bound to the
// arrival device, though both score the same, whichever was bound first.
func TestDemuxSpecificAddressBeatsDeviceWildcard(t *testing.T) {
	for _, wildFirst := range []bool{true, false} {
		var d demux
		wild, spec := &testEP{name: "wild+nic"}, &testEP{name: "A"}
		bind := func(ep *testEP) {
			id, nic := TransportID{LocalPort: 53}, NICID(2)
			if ep == spec {
				id.LocalAddr, nic = dmA, 0
			}
			if _, err := d.register(17, id, ep, true, nic); err != nil {
				t.Fatal(err)
			}
		}
		if wildFirst {
			bind(wild)
			bind(spec)
		} else {
			bind(spec)
			bind(wild)
		}
		if got := d.lookup(17, netip.AddrPortFrom(dmA, 53), netip.AddrPortFrom(dmPeer1, 1), 2); got != spec {
			t.Errorf("wildcard bound first=%v: got %v, want %v", wildFirst, got, spec)
		}
	}
}

// fillEphemeral binds every ephemeral port to any address without reuse.
func fillEphemeral(t *testing.T, d *demux) []TransportID {
	t.Helper()
	var ids []TransportID
	for i := range EphemeralMax - EphemeralMin + 1 {
		id, err := d.register(17, TransportID{}, &testEP{name: fmt.Sprint(i)}, false, 0)
		if err != nil {
			t.Fatalf("port %d of the range: %v", i, err)
		}
		ids = append(ids, id)
	}
	return ids
}

// TestEphemeralExhaustion: with every ephemeral port taken a port 0 bind
// fails with bind's EADDRINUSE; the port freed next is the one found.
func TestEphemeralExhaustion(t *testing.T) {
	var d demux
	ids := fillEphemeral(t, &d)
	seen := make(map[uint16]bool)
	for _, id := range ids {
		if id.LocalPort < EphemeralMin || id.LocalPort > EphemeralMax || seen[id.LocalPort] {
			t.Fatalf("port %d given out of range or twice", id.LocalPort)
		}
		seen[id.LocalPort] = true
	}
	for _, id := range []TransportID{{}, {LocalAddr: dmA}} {
		for _, reuse := range []bool{false, true} {
			if _, err := d.register(17, id, &testEP{}, reuse, 0); !errors.Is(err, syscall.EADDRINUSE) {
				t.Errorf("bind %v:0 reuse=%v with the range full: %v, want EADDRINUSE", id.LocalAddr, reuse, err)
			}
		}
	}
	freed := ids[len(ids)/2]
	// The endpoint does not matter to unregister beyond identity; find it.
	pe, g := d.readPort(17, freed.LocalPort)
	ep := pe.list.ep
	g.mu.RUnlock()
	d.unregister(17, freed, ep)
	got, err := d.register(17, TransportID{}, &testEP{}, false, 0)
	if err != nil || got.LocalPort != freed.LocalPort {
		t.Fatalf("after freeing port %d: got %d, %v", freed.LocalPort, got.LocalPort, err)
	}
}

// TestEphemeralSharesWhenNoPortIsFree: with every port taken by sockets
// that allow it, a port 0 bind shares one, as Linux's would: on another
// address, or with reuse on both sides.
func TestEphemeralSharesWhenNoPortIsFree(t *testing.T) {
	var d demux
	for i := range EphemeralMax - EphemeralMin + 1 {
		if _, err := d.register(17, TransportID{LocalAddr: dmA}, &testEP{name: fmt.Sprint(i)}, true, 0); err != nil {
			t.Fatal(err)
		}
	}
	if id, err := d.register(17, TransportID{LocalAddr: dmB}, &testEP{}, false, 0); err != nil || id.LocalPort == 0 {
		t.Errorf("bind B:0 with A holding every port: %v, %v", id, err)
	}
	if id, err := d.register(17, TransportID{LocalAddr: dmA}, &testEP{}, true, 0); err != nil || id.LocalPort == 0 {
		t.Errorf("bind A:0 with reuse on both sides: %v, %v", id, err)
	}
	if _, err := d.register(17, TransportID{LocalAddr: dmA}, &testEP{}, false, 0); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("bind A:0 without reuse: %v, want EADDRINUSE", err)
	}
	if _, err := d.register(17, TransportID{}, &testEP{}, false, 0); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("bind any:0 without reuse: %v, want EADDRINUSE", err)
	}
}

// TestDemuxConcurrent binds, connects and closes from several goroutines
// while datagrams are looked up and the demux finally closes: every
// binding made is either refused or handed back by closeAll, and the race
// detector sees the receive path's reads.
func TestDemuxConcurrent(t *testing.T) {
	var d demux
	var mu sync.Mutex
	bound := make(map[TransportEndpoint]bool)
	var wg, started sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			signalled := false
			defer func() {
				if !signalled {
					started.Done()
				}
			}()
			for i := range 2000 {
				if i == 100 {
					started.Done()
					signalled = true
				}
				ep := &testEP{name: fmt.Sprintf("w%d-%d", w, i)}
				id := TransportID{}
				if i%2 == 0 {
					id.LocalPort = 9000
				}
				id, err := d.register(17, id, ep, true, 0)
				if errors.Is(err, ErrStackClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				conn := id
				conn.LocalAddr, conn.RemoteAddr, conn.RemotePort = dmA, dmPeer1, uint16(i+1)
				d.replace(17, id, conn, ep)
				if i%3 == 0 {
					d.unregister(17, conn, ep)
					continue
				}
				mu.Lock()
				bound[ep] = true
				mu.Unlock()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			d.lookup(17, netip.AddrPortFrom(dmA, 9000), netip.AddrPortFrom(dmPeer1, uint16(i%2000+1)), 1)
			d.lookupAll(nil, 17, netip.AddrPortFrom(dmA, 9000), netip.AddrPortFrom(dmPeer1, 1), 1)
			runtime.Gosched() // js/wasm has no preemption
		}
	}()
	started.Wait() // close while the writers are busy
	closed := d.closeAll()
	close(stop)
	wg.Wait()
	got := make(map[TransportEndpoint]bool)
	for _, ep := range closed {
		got[ep] = true
	}
	for ep := range bound {
		if !got[ep] {
			t.Errorf("%v was bound but not handed back by closeAll", ep)
		}
	}
	if _, err := d.register(17, TransportID{LocalPort: 1}, &testEP{}, false, 0); !errors.Is(err, ErrStackClosed) {
		t.Errorf("bind after closeAll: %v", err)
	}
}

// BenchmarkDemuxLookup looks up random peers among n connected bindings
// sharing a port (so mostly cache misses once n is large).
func BenchmarkDemuxLookup(b *testing.B) {
	for _, n := range []int{1, 100, 10_000, 50_000} {
		b.Run(fmt.Sprintf("bindings=%d", n), func(b *testing.B) {
			var d demux
			for i := range n {
				id := TransportID{LocalAddr: dmA, LocalPort: 9000, RemoteAddr: dmPeer1, RemotePort: uint16(1024 + i)}
				if _, err := d.register(17, id, &testEP{}, true, 0); err != nil {
					b.Fatal(err)
				}
			}
			local := netip.AddrPortFrom(dmA, 9000)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if d.lookup(17, local, netip.AddrPortFrom(dmPeer1, uint16(1024+i*7919%n)), 1) == nil {
					b.Fatal("no endpoint")
				}
			}
		})
	}
}

// TestDemuxPortRecordReuse checks the binding record a port keeps inline:
// whichever binding holds it, removing that binding frees the record
// without keeping the endpoint alive, and the next bind reuses it with a
// later seniority than the bindings still there.
func TestDemuxPortRecordReuse(t *testing.T) {
	var d demux
	a, b, c := &testEP{"a"}, &testEP{"b"}, &testEP{"c"}
	id := TransportID{LocalPort: 7}
	for _, ep := range []*testEP{a, b} {
		if _, err := d.register(17, id, ep, true, 0); err != nil {
			t.Fatal(err)
		}
	}
	pe := d.tables[17].Load().groups[0].Load().ports[7]
	if pe.first.ep != a {
		t.Fatalf("inline record holds %v, want the first binding", pe.first.ep)
	}
	d.unregister(17, id, a)
	if pe.first.ep != nil || pe.firstUsed {
		t.Fatalf("record of a removed binding still holds %v", pe.first.ep)
	}
	local, remote := netip.AddrPortFrom(dmA, 7), netip.AddrPortFrom(dmPeer1, 1)
	if got := d.lookup(17, local, remote, 1); got != b {
		t.Fatalf("lookup after removing a = %v, want b", got)
	}
	if _, err := d.register(17, id, c, true, 0); err != nil {
		t.Fatal(err)
	}
	if pe.first.ep != c {
		t.Fatalf("inline record holds %v, want c reusing it", pe.first.ep)
	}
	if got := d.lookup(17, local, remote, 1); got != b {
		t.Fatalf("lookup = %v, want b, bound before c", got)
	}
	if got := epNames(d.lookupAll(nil, 17, local, remote, 1)); !slices.Equal(got, []string{"b", "c"}) && !slices.Equal(got, []string{"c", "b"}) {
		t.Fatalf("lookupAll = %v, want b and c", got)
	}
}

// TestDemuxFamilyConflicts is Linux's bind table for the two families,
// recorded with net on Linux: a dual-stack wildcard ("udp" on ":0", the
// invalid address here) clashes with any IPv4 or IPv6 binding on the
// port; an IPV6_V6ONLY wildcard ("udp6", ::) and the IPv4 wildcard share
// it, and so do :: and an IPv4 address.
func TestDemuxFamilyConflicts(t *testing.T) {
	dual := netip.Addr{}
	for _, tc := range []struct {
		first, second netip.Addr
		conflict      bool
	}{
		{dual, dmAny4, true},
		{dual, dmA, true},
		{dual, dmA6, true},
		{dual, dual, true},
		{dmAny6, dmAny4, false},
		{dmAny6, dual, true},
		{dmAny6, dmA, false},
		{dmAny6, dmA6, true},
		{dmAny4, dual, true},
		{dmAny4, dmAny6, false},
		{dmAny4, dmA6, false},
		{dmA, dual, true},
		{dmA, dmAny6, false},
		{dmA6, dual, true},
		{dmA6, dmAny4, false},
		{dmA6, dmAny6, true},
	} {
		// Once on a quiet port (scanned list), once on a busy one (index).
		for _, busy := range []bool{false, true} {
			var d demux
			if _, err := d.register(17, TransportID{LocalAddr: tc.first, LocalPort: 53}, &testEP{}, false, 0); err != nil {
				t.Fatalf("busy=%v: first bind %v: %v", busy, tc.first, err)
			}
			if busy {
				g := d.table(17, false).group(53, false)
				g.mu.Lock()
				g.ports[53%portsPerGroup].index()
				g.mu.Unlock()
			}
			_, err := d.register(17, TransportID{LocalAddr: tc.second, LocalPort: 53}, &testEP{}, false, 0)
			if got := errors.Is(err, syscall.EADDRINUSE); got != tc.conflict {
				t.Errorf("busy=%v: bind %v after %v: %v, want conflict %v", busy, tc.second, tc.first, err, tc.conflict)
			}
		}
	}
}

// TestDemuxFamilyDelivery: a dual-stack wildcard takes both families, each
// family wildcard only its own, and with SO_REUSEADDR an IPv4 wildcard is
// preferred to a dual-stack one for IPv4, as Linux prefers AF_INET.
func TestDemuxFamilyDelivery(t *testing.T) {
	var d demux
	dual, v4, v6 := &testEP{name: "dual"}, &testEP{name: "v4"}, &testEP{name: "v6"}
	for _, b := range []struct {
		ep *testEP
		a  netip.Addr
	}{{dual, netip.Addr{}}, {v4, dmAny4}, {v6, dmAny6}} {
		if _, err := d.register(17, TransportID{LocalAddr: b.a, LocalPort: 53}, b.ep, true, 0); err != nil {
			t.Fatal(err)
		}
	}
	if got := d.lookup(17, netip.AddrPortFrom(dmA, 53), netip.AddrPortFrom(dmPeer1, 1), 1); got != v4 {
		t.Errorf("IPv4 datagram went to %v, want v4", got)
	}
	if got := d.lookup(17, netip.AddrPortFrom(dmA6, 53), netip.AddrPortFrom(dmPeer6, 1), 1); got != dual {
		t.Errorf("IPv6 datagram went to %v, want dual (bound first)", got)
	}
	if got, want := epNames(d.lookupAll(nil, 17, netip.AddrPortFrom(dmGrp6, 53), netip.AddrPortFrom(dmPeer6, 1), 1)), []string{"dual", "v6"}; !slices.Equal(got, want) {
		t.Errorf("IPv6 multicast reached %v, want %v", got, want)
	}
	if got, want := epNames(d.lookupAll(nil, 17, netip.AddrPortFrom(dmGroup, 53), netip.AddrPortFrom(dmPeer1, 1), 1)), []string{"dual", "v4"}; !slices.Equal(got, want) {
		t.Errorf("IPv4 multicast reached %v, want %v", got, want)
	}
}
