package gonet

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

// benchPair returns a server conn on one stack and a client conn on the
// other, already past ARP resolution.
func benchPair(b *testing.B) (srv, cl *UDPConn, srvAddr netip.AddrPort) {
	return benchPairOn(b, tap.PipeOptions{})
}

// benchPairOn is benchPair over a pipe made with opts.
func benchPairOn(b *testing.B, opts tap.PipeOptions) (srv, cl *UDPConn, srvAddr netip.AddrPort) {
	sa, sb := pair(b, opts)
	srv, err := ListenUDP(sa, "udp", &net.UDPAddr{Port: 7})
	if err != nil {
		b.Fatal(err)
	}
	cl, err = ListenUDP(sb, "udp", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close(); cl.Close() })
	srvAddr = netip.MustParseAddrPort("192.0.2.2:7")
	// Warm up ARP in both directions.
	buf := make([]byte, 64)
	cl.WriteToUDPAddrPort(buf, srvAddr)
	_, from, _ := srv.ReadFromUDPAddrPort(buf)
	srv.WriteToUDPAddrPort(buf, from)
	cl.ReadFromUDPAddrPort(buf)
	return srv, cl, srvAddr
}

// BenchmarkEchoAddrPort measures one round trip through both stacks with
// the allocation-free AddrPort methods.
func BenchmarkEchoAddrPort(b *testing.B) { benchEcho(b, tap.PipeOptions{}) }

// BenchmarkEchoAddrPortIPLink is BenchmarkEchoAddrPort over an IP link (a
// TUN's layer): no Ethernet header, no ARP lookup.
func BenchmarkEchoAddrPortIPLink(b *testing.B) { benchEcho(b, ipPipe) }

func benchEcho(b *testing.B, opts tap.PipeOptions) {
	for _, size := range []int{64, 1400} {
		b.Run(sizeName(size), func(b *testing.B) {
			srv, cl, addr := benchPairOn(b, opts)
			done := make(chan struct{})
			go func() {
				defer close(done)
				buf := make([]byte, 2048)
				for {
					n, from, err := srv.ReadFromUDPAddrPort(buf)
					if err != nil {
						return
					}
					srv.WriteToUDPAddrPort(buf[:n], from)
				}
			}()
			msg := make([]byte, size)
			buf := make([]byte, 2048)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := cl.WriteToUDPAddrPort(msg, addr); err != nil {
					b.Fatal(err)
				}
				if _, _, err := cl.ReadFromUDPAddrPort(buf); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			srv.Close()
			<-done
		})
	}
}

// BenchmarkReadWrite measures a dialed conn's Read and Write.
func BenchmarkReadWrite(b *testing.B) {
	sa, sb := pair(b, tap.PipeOptions{})
	srv, err := DialUDP(sa, "udp", &net.UDPAddr{Port: 7}, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 9})
	if err != nil {
		b.Fatal(err)
	}
	cl, err := DialUDP(sb, "udp", &net.UDPAddr{Port: 9}, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 7})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	defer cl.Close()
	msg, buf := make([]byte, 64), make([]byte, 2048)
	cl.Write(msg)
	srv.Read(buf)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := cl.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := srv.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadFrom shows the one allocation ReadFrom keeps: the returned
// *net.UDPAddr.
func BenchmarkReadFrom(b *testing.B) {
	srv, cl, addr := benchPair(b)
	msg, buf := make([]byte, 64), make([]byte, 2048)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cl.WriteToUDPAddrPort(msg, addr)
		if _, _, err := srv.ReadFrom(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func sizeName(n int) string {
	if n >= 1000 {
		return "1400B"
	}
	return "64B"
}

// BenchmarkReadWithDeadline sets a read deadline before every read, as
// DNS servers do; the deadline's timer is reused.
func BenchmarkReadWithDeadline(b *testing.B) {
	srv, cl, addr := benchPair(b)
	msg, buf := make([]byte, 64), make([]byte, 2048)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cl.WriteToUDPAddrPort(msg, addr)
		srv.SetReadDeadline(time.Now().Add(time.Second))
		if _, _, err := srv.ReadFromUDPAddrPort(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIdleConnMemory reports the heap an idle bound socket costs
// (bytes/conn), for the "memory per idle endpoint".
func BenchmarkIdleConnMemory(b *testing.B) {
	s := stack.New(stack.Options{})
	defer s.Close()
	const n = 10000
	conns := make([]*UDPConn, 0, n)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < n; i++ {
		c, err := ListenUDP(s, "udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/conn")
	b.ReportMetric(0, "ns/op")
	for _, c := range conns {
		c.Close()
	}
}

// BenchmarkListenClose opens a conn on an ephemeral port and closes it,
// from one goroutine and from two at once. ns/op is wall time per
// open+close, so on two or more cores goroutines=2 should be at most
// goroutines=1: sockets on different ports share no lock.
func BenchmarkListenClose(b *testing.B) {
	for _, g := range []int{1, 2} {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) {
			s := stack.New(stack.Options{})
			b.Cleanup(func() { s.Close() })
			laddr := &net.UDPAddr{}
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for w := range g {
				n := b.N / g
				if w == 0 {
					n += b.N % g
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range n {
						c, err := ListenUDP(s, "udp", laddr)
						if err != nil {
							b.Error(err)
							return
						}
						c.Close()
					}
				}()
			}
			wg.Wait()
		})
	}
}

// BenchmarkWriteReadBatch measures a batch of 64 datagrams of 1400 bytes
// sent with WriteBatch (one link batch) and read with ReadBatch; an op is
// one batch.
func BenchmarkWriteReadBatch(b *testing.B) {
	srv, cl, addr := benchPair(b)
	srv.SetReadBuffer(8 << 20)
	const batch = 64
	out, in := make([]ipv4.Message, batch), make([]ipv4.Message, batch)
	to := net.UDPAddrFromAddrPort(addr)
	for i := range out {
		out[i] = ipv4.Message{Buffers: [][]byte{make([]byte, 1400)}, Addr: to}
		in[i] = ipv4.Message{Buffers: [][]byte{make([]byte, 2048)}}
	}
	wc, rc := NewPacketConn(cl), NewPacketConn(srv)
	b.SetBytes(batch * 1400)
	b.ReportAllocs()
	for b.Loop() {
		if n, err := wc.WriteBatch(out, 0); n != batch || err != nil {
			b.Fatalf("WriteBatch: %d, %v", n, err)
		}
		for got := 0; got < batch; {
			n, err := rc.ReadBatch(in[:batch-got], 0)
			if err != nil {
				b.Fatal(err)
			}
			got += n
		}
	}
}
