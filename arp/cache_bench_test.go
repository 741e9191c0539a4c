package arp

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/tapnet/tapnet/ethernet"
)

// benchHooks answer nothing and keep nothing: the benchmark plays the peers.
var benchHooks = Hooks{
	SendRequest: func(netip.Addr, ethernet.MAC) {},
	Resolved: func(_ netip.Addr, _ ethernet.MAC, pkts []Pending) {
		for _, p := range pkts {
			p.Release()
		}
	},
	Failed: func(_ netip.Addr, pkts []Pending) {
		for _, p := range pkts {
			p.Release()
		}
	},
}

func benchIP(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

// BenchmarkResolve sends to peers in turn, each answering at once when it
// is not cached: with every peer cached an operation is a lookup; with more
// peers than MaxEntries each one is a miss that evicts an entry, a request
// and the reply that completes the new entry.
func BenchmarkResolve(b *testing.B) {
	for _, max := range []int{1024, 16384} {
		for _, peers := range []int{1, 100, 1000, 10000} {
			b.Run(fmt.Sprintf("max=%d/peers=%d", max, peers), func(b *testing.B) {
				benchmarkResolve(b, max, peers)
			})
		}
	}
}

// BenchmarkResolveEvict sends to twice as many peers as the cache holds,
// so every operation evicts: its cost must not grow with MaxEntries.
func BenchmarkResolveEvict(b *testing.B) {
	for _, max := range []int{128, 1024, 16384} {
		b.Run(fmt.Sprintf("max=%d/peers=%d", max, 2*max), func(b *testing.B) {
			benchmarkResolve(b, max, 2*max)
		})
	}
}

func benchmarkResolve(b *testing.B, max, peers int) {
	c := New(Config{MaxEntries: max, RetransInterval: time.Hour}, benchHooks, nil)
	defer c.Close()
	ips := make([]netip.Addr, peers)
	for i := range ips {
		ips[i] = benchIP(i)
	}
	send := func(i int) {
		ip := ips[i%peers]
		if _, ok := c.Resolve(ip, nil); !ok {
			c.Learn(ip, ethernet.MAC{0x02, 0, 0, byte(i >> 16), byte(i >> 8), byte(i)}, unicastReply)
		}
	}
	for i := 0; i < peers; i++ {
		send(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		send(i)
	}
}

// benchPkt is a pending packet that costs nothing to release.
type benchPkt struct{ n int }

func (p *benchPkt) Len() int { return p.n }
func (p *benchPkt) Release() {}

// BenchmarkResolveHit is the send path to a cached neighbour: the packet
// passes through the Pending interface and stays the caller's, so it must
// not allocate.
func BenchmarkResolveHit(b *testing.B) {
	c := New(Config{RetransInterval: time.Hour}, benchHooks, nil)
	defer c.Close()
	ip := benchIP(1)
	c.Resolve(ip, nil)
	c.Learn(ip, ethernet.MAC{0x02, 0, 0, 0, 0, 1}, unicastReply)
	pkt := &benchPkt{n: 100}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, ok := c.Resolve(ip, pkt); !ok {
			b.Fatal("miss")
		}
	}
}
