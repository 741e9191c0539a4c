package gonet_test

// Reliability: floods through the in-memory pipe, closing conns and stacks
// under blocked or concurrent calls, and a TAP removed from under a stack.

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapnet/tapnet/arp"
	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/gonet"
	"github.com/tapnet/tapnet/internal/leakcheck"
	"github.com/tapnet/tapnet/ipv4"
	"github.com/tapnet/tapnet/link"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
	"github.com/tapnet/tapnet/udp"
)

var (
	relStackIP = netip.MustParseAddr("192.0.2.1")
	relPeerIP  = netip.MustParseAddr("192.0.2.2")
	relPeerMAC = ethernet.MAC{0x02, 0, 0, 0, 0, 0x02}
)

// relStack is a stack at 192.0.2.1/24 on one end of a pipe whose other end
// the test drives directly: the peer, 192.0.2.2, is simulated by writing
// frames into it. Frames the stack sends are counted and dropped.
func relStack(t *testing.T, opts stack.Options) (*stack.Stack, *tap.PipeEnd) {
	t.Helper()
	ours, peer := tap.Pipe(tap.PipeOptions{MACs: [2]ethernet.MAC{{0x02, 0, 0, 0, 0, 0x01}, relPeerMAC}})
	s := stack.New(opts)
	t.Cleanup(func() { s.Close(); peer.Close() })
	if _, err := s.AddNIC(ours, stack.NICOptions{Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}); err != nil {
		t.Fatal(err)
	}
	go func() { // the peer reads and forgets what the stack sends
		frames := []link.Frame{{Buf: make([]byte, 2048)}}
		for {
			if _, err := peer.ReadFrames(frames); err != nil {
				return
			}
		}
	}()
	return s, peer
}

// relUDPFrame builds a frame from the peer to dst:dport on the stack.
func relUDPFrame(dstMAC ethernet.MAC, dst netip.Addr, dport uint16, payload []byte) []byte {
	n := ethernet.HeaderLen + ipv4.HeaderLen + udp.HeaderLen + len(payload)
	f := make([]byte, n)
	ethernet.PutHeader(f, dstMAC, relPeerMAC, ethernet.TypeIPv4)
	ip := f[ethernet.HeaderLen:]
	ipv4.Put(ip, ipv4.Fields{TotalLen: len(ip), ID: 1, TTL: 64, Protocol: udp.ProtocolNumber, Src: relPeerIP, Dst: dst})
	u := ip[ipv4.HeaderLen:]
	copy(u[udp.HeaderLen:], payload)
	udp.PutHeader(u, 5000, dport, relPeerIP, dst)
	return f
}

func relSend(t *testing.T, peer *tap.PipeEnd, frame []byte) {
	t.Helper()
	if _, err := peer.WriteFrames([]link.Frame{{Buf: frame, Len: len(frame)}}); err != nil {
		t.Fatalf("pipe write: %v", err)
	}
}

func relHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestFloodThroughPipe sends a burst of 100k datagrams through the pipe to
// a conn that does not read: its queue stays within the receive buffer,
// the excess is dropped and counted, neither memory nor goroutines grow,
// and the conn delivers what it kept and works afterwards.
func TestFloodThroughPipe(t *testing.T) {
	leakcheck.Check(t)
	s, peer := relStack(t, stack.Options{})
	c, err := gonet.ListenUDP(s, "udp", &net.UDPAddr{Port: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const total = 100_000
	payload := bytes.Repeat([]byte{0x3c}, 200)
	frame := relUDPFrame(s.NICs()[1].MAC(), relStackIP, 7, payload)

	goroutines := leakcheck.Count()
	heap := relHeap()
	st := s.Stats()
	rx0 := st.Link.RxFrames.Load()
	for i := 0; i < total; i++ {
		relSend(t, peer, frame)
	}
	deadline := time.Now().Add(60 * time.Second)
	for st.Link.RxFrames.Load()-rx0 < total {
		if time.Now().After(deadline) {
			t.Fatalf("stack processed %d of %d frames in 60s", st.Link.RxFrames.Load()-rx0, total)
		}
		time.Sleep(5 * time.Millisecond)
	}
	heapAfter := relHeap()
	delivered, dropped := st.UDP.Delivered.Load(), st.UDP.BufferErrors.Load()
	if delivered+dropped != total || gonet.EndpointOf(c).Drops() != dropped {
		t.Fatalf("delivered %d + dropped %d != %d (endpoint drops %d)", delivered, dropped, total, gonet.EndpointOf(c).Drops())
	}
	// Each datagram is charged at least its length; like Linux, the last
	// one admitted may overshoot the limit.
	limit := gonet.EndpointOf(c).ReceiveBufferSize()
	if delivered < 2 || int(delivered-1)*len(payload) > limit {
		t.Errorf("queued %d datagrams of %d bytes in a %d-byte receive buffer", delivered, len(payload), limit)
	}
	grown := int64(heapAfter) - int64(heap)
	g := leakcheck.Count()
	t.Logf("100k frames through the pipe: %d queued, %d dropped; heap %+d bytes; goroutines %d -> %d", delivered, dropped, grown, goroutines, g)
	if grown > int64(4*limit)+256<<10 {
		t.Errorf("heap grew by %d bytes for a %d-byte receive buffer", grown, limit)
	}
	if g > goroutines {
		t.Errorf("goroutines grew from %d to %d", goroutines, g)
	}
	buf := make([]byte, 1500)
	for i := uint64(0); i < delivered; i++ {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil || !bytes.Equal(buf[:n], payload) || from.Addr().Unmap() != relPeerIP || from.Port() != 5000 {
			t.Fatalf("read %d: %v, %d bytes from %v", i, err, n, from)
		}
	}
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, _, err := c.ReadFromUDPAddrPort(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the queue: %v, want a timeout", err)
	}
	relSend(t, peer, relUDPFrame(s.NICs()[1].MAC(), relStackIP, 7, []byte("after")))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _, err := c.ReadFromUDPAddrPort(buf); err != nil || string(buf[:n]) != "after" {
		t.Fatalf("after the flood: %q, %v", buf[:n], err)
	}
}

// relReadMethods are the blocking read calls of a conn.
var relReadMethods = []struct {
	name string
	read func(c *gonet.UDPConn) error
}{
	{"Read", func(c *gonet.UDPConn) error { _, err := c.Read(make([]byte, 10)); return err }},
	{"ReadFrom", func(c *gonet.UDPConn) error { _, _, err := c.ReadFrom(make([]byte, 10)); return err }},
	{"ReadFromUDP", func(c *gonet.UDPConn) error { _, _, err := c.ReadFromUDP(make([]byte, 10)); return err }},
	{"ReadFromUDPAddrPort", func(c *gonet.UDPConn) error { _, _, err := c.ReadFromUDPAddrPort(make([]byte, 10)); return err }},
	{"ReadMsgUDP", func(c *gonet.UDPConn) error { _, _, _, _, err := c.ReadMsgUDP(make([]byte, 10), nil); return err }},
	{"ReadMsgUDPAddrPort", func(c *gonet.UDPConn) error {
		_, _, _, _, err := c.ReadMsgUDPAddrPort(make([]byte, 10), nil)
		return err
	}},
}

// relBlocked runs read in a goroutine and returns its error channel, after
// giving it time to block.
func relBlocked(c *gonet.UDPConn, read func(*gonet.UDPConn) error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- read(c) }()
	time.Sleep(10 * time.Millisecond)
	return ch
}

func relWait(t *testing.T, ch <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(5 * time.Second):
		t.Fatalf("%s still blocked 5s after Close", what)
		return nil
	}
}

// relCheckClosed checks that err is what net returns for a read on a
// closed conn.
func relCheckClosed(t *testing.T, err error, op string) {
	t.Helper()
	var oe *net.OpError
	if !errors.Is(err, net.ErrClosed) || !errors.As(err, &oe) || oe.Op != op || oe.Net != "udp" {
		t.Errorf("got %v (%T), want a %q *net.OpError wrapping net.ErrClosed", err, err, op)
	}
}

// TestCloseUnblocksRead closes a conn under each blocked read method.
func TestCloseUnblocksRead(t *testing.T) {
	leakcheck.Check(t)
	s, _ := relStack(t, stack.Options{})
	for _, m := range relReadMethods {
		for _, dialed := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/dialed=%v", m.name, dialed), func(t *testing.T) {
				var c *gonet.UDPConn
				var err error
				if dialed {
					c, err = gonet.DialUDP(s, "udp", nil, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 9})
				} else {
					c, err = gonet.ListenUDP(s, "udp", nil)
				}
				if err != nil {
					t.Fatal(err)
				}
				ch := relBlocked(c, m.read)
				if err := c.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				relCheckClosed(t, relWait(t, ch, m.name), "read")
				relCheckClosed(t, m.read(c), "read")
				if _, err := c.WriteToUDPAddrPort([]byte("x"), netip.MustParseAddrPort("192.0.2.2:9")); !errors.Is(err, net.ErrClosed) && !dialed {
					t.Errorf("write after Close: %v", err)
				}
				if err := c.Close(); !errors.Is(err, net.ErrClosed) {
					t.Errorf("second Close: %v, want net.ErrClosed", err)
				}
				if err := c.SetReadDeadline(time.Now()); !errors.Is(err, net.ErrClosed) {
					t.Errorf("SetReadDeadline after Close: %v", err)
				}
			})
		}
	}
}

// TestCloseDuringResolution closes conns while their datagrams wait for an
// ARP answer that never comes: a blocked reader wakes with net.ErrClosed,
// and the failing resolution later finds nobody to tell. Closing the stack
// in the same state releases everything too.
func TestCloseDuringResolution(t *testing.T) {
	leakcheck.Check(t)
	s, _ := relStack(t, stack.Options{ARP: arp.Config{RetransInterval: 200 * time.Millisecond, Retries: 2}})
	c, err := gonet.DialUDP(s, "udp", nil, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 77), Port: 9})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("waits for ARP")); err != nil {
		t.Fatalf("write to an unresolved neighbour: %v", err)
	}
	ch := relBlocked(c, relReadMethods[0].read)
	start := time.Now()
	c.Close()
	relCheckClosed(t, relWait(t, ch, "Read"), "read")
	t.Logf("blocked read returned %v after Close", time.Since(start))
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().ARP.Failed.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if s.Stats().ARP.Failed.Load() != 1 {
		t.Fatalf("resolution never failed: %d", s.Stats().ARP.Failed.Load())
	}

	// The same with the stack closing instead.
	c2, err := gonet.DialUDP(s, "udp", nil, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 78), Port: 9})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.Write([]byte("waits too"))
	ch = relBlocked(c2, relReadMethods[0].read)
	s.Close()
	relCheckClosed(t, relWait(t, ch, "Read"), "read")
	if _, err := c2.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write after the stack closed: %v, want net.ErrClosed", err)
	}
	if n := s.NICs()[1].ARP().Len(); n != 0 {
		t.Errorf("%d ARP entries after the stack closed", n)
	}
}

// relPair is two stacks over a pipe: a at 192.0.2.1, b at 192.0.2.2.
func relPair(t *testing.T) (a, b *stack.Stack) {
	la, lb := tap.Pipe(tap.PipeOptions{})
	a, b = stack.New(stack.Options{}), stack.New(stack.Options{})
	t.Cleanup(func() { a.Close(); b.Close() })
	if _, err := a.AddNIC(la, stack.NICOptions{Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AddNIC(lb, stack.NICOptions{Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")}}); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// relExpected reports whether err is an outcome a call racing with
// deadline changes and Close may have: none, a timeout or a closed conn.
func relExpected(err error) bool {
	return err == nil || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed)
}

// TestConcurrentConnOps hammers one conn with reads, writes, deadline and
// buffer changes from several goroutines, then closes it in the middle:
// every call returns, with nothing but success, a timeout or net.ErrClosed,
// and the race detector stays quiet.
func TestConcurrentConnOps(t *testing.T) {
	leakcheck.Check(t)
	a, b := relPair(t)
	echo, err := gonet.ListenUDP(a, "udp", &net.UDPAddr{Port: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := echo.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			echo.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	srv := netip.MustParseAddrPort("192.0.2.1:7")
	var echoed atomic.Int64
	for round := 0; round < 4; round++ {
		c, err := gonet.ListenUDP(b, "udp", nil)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var unexpected []string
		report := func(what string, err error) bool {
			if relExpected(err) {
				return errors.Is(err, net.ErrClosed)
			}
			mu.Lock()
			unexpected = append(unexpected, fmt.Sprintf("%s: %v", what, err))
			mu.Unlock()
			return true
		}
		// Each goroutine runs until the conn closes (bounded in count).
		const iters = 1_000_000
		run := func(name string, f func(i int) error) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < iters; i++ {
					if report(name, f(i)) {
						return
					}
				}
			}()
		}
		buf1, buf2 := make([]byte, 2048), make([]byte, 2048)
		run("ReadFrom", func(int) error {
			_, _, err := c.ReadFromUDPAddrPort(buf1)
			if err == nil {
				echoed.Add(1)
			}
			return err
		})
		run("ReadMsgUDP", func(int) error { _, _, _, _, err := c.ReadMsgUDP(buf2, nil); return err })
		run("WriteTo", func(i int) error {
			_, err := c.WriteToUDPAddrPort([]byte{byte(i)}, srv)
			return err
		})
		run("WriteToUDP", func(i int) error {
			_, err := c.WriteToUDP([]byte{byte(i), 1}, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 7})
			return err
		})
		run("deadlines", func(i int) error {
			d := time.Duration(rand.IntN(3)) * time.Millisecond
			switch i % 4 {
			case 0:
				return c.SetReadDeadline(time.Now().Add(d))
			case 1:
				return c.SetWriteDeadline(time.Now().Add(d))
			case 2:
				return c.SetDeadline(time.Time{})
			default:
				return c.SetReadDeadline(time.Now().Add(-time.Second))
			}
		})
		run("options", func(i int) error {
			_ = c.LocalAddr()
			if i%2 == 0 {
				return c.SetReadBuffer(4096 + i)
			}
			return c.SetWriteBuffer(4096 + i)
		})
		time.Sleep(time.Duration(5+10*round) * time.Millisecond)
		// Two closers race: exactly one wins.
		errs := make(chan error, 2)
		for i := 0; i < 2; i++ {
			go func() { errs <- c.Close() }()
		}
		e1, e2 := <-errs, <-errs
		if (e1 == nil) == (e2 == nil) || !errors.Is(errors.Join(e1, e2), net.ErrClosed) {
			t.Errorf("round %d: concurrent Close returned %v and %v, want one nil and one net.ErrClosed", round, e1, e2)
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: calls still running 10s after Close", round)
		}
		for _, u := range unexpected {
			t.Errorf("round %d: %s", round, u)
		}
	}
	t.Logf("%d echoes read while racing", echoed.Load())
	// The stacks still work. The echo server may still be working through
	// a full receive queue, which drops what arrives meanwhile: retry.
	c, err := gonet.DialUDP(b, "udp", nil, net.UDPAddrFromAddrPort(srv))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 10)
	for try := 0; ; try++ {
		if _, err := c.Write([]byte("after")); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := c.Read(buf)
		if err == nil && string(buf[:n]) == "after" {
			break
		}
		if try == 50 {
			t.Fatalf("no echo after the races: %q, %v", buf[:n], err)
		}
	}
}
