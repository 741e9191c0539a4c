package gonet

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/tapnet/tapnet/internal/netns"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

// These tests run over a TAP and over a TUN (a point-to-point IP link with
// no ARP), each as a subtest named after the mode.

// forEachMode runs test once per device mode.
func forEachMode(t *testing.T, test func(t *testing.T, mode tap.Mode)) {
	for _, mode := range []tap.Mode{tap.ModeTAP, tap.ModeTUN} {
		t.Run(mode.String(), func(t *testing.T) { test(t, mode) })
	}
}

// tapStack puts a tapnet stack at 192.0.2.2/24 on a TAP or TUN whose kernel
// side, 192.0.2.1/24, lives in a fresh network namespace.
func tapStack(t *testing.T, mode tap.Mode) (*netns.NS, *stack.Stack) {
	netns.RequireRoot(t)
	ns := netns.New(t)
	dev := netns.NewTAP(t, ns, "192.0.2.1/24", tap.Options{Mode: mode})
	s := stack.New(stack.Options{})
	t.Cleanup(func() { s.Close() })
	if _, err := s.AddNIC(dev, stack.NICOptions{Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")}}); err != nil {
		t.Fatal(err)
	}
	return ns, s
}

// kernelDial opens a kernel UDP socket inside ns connected to raddr.
func kernelDial(t *testing.T, ns *netns.NS, raddr string) *net.UDPConn {
	var c *net.UDPConn
	err := ns.Do(func() (err error) {
		c, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(raddr)))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestTAPKernelClientEcho(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode tap.Mode) {
		ns, s := tapStack(t, mode)
		serveEcho(t, s, 7)
		c := kernelDial(t, ns, "192.0.2.2:7")
		r := rand.New(rand.NewSource(1))
		// Small datagrams, then ones the kernel fragments at MTU 1500 and
		// tapnet must reassemble (and fragment again for the reply).
		for _, size := range []int{1, 64, 1472, 8000, 65507} {
			msg := make([]byte, size)
			r.Read(msg)
			if _, err := c.Write(msg); err != nil {
				t.Fatalf("write %d: %v", size, err)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			got := make([]byte, 70000)
			n, err := c.Read(got)
			if err != nil {
				t.Fatalf("read %d: %v", size, err)
			}
			if !bytes.Equal(got[:n], msg) {
				t.Fatalf("size %d: echo differs (%d bytes back)", size, n)
			}
		}
		if s.Stats().IP.Reassembled.Load() < 2 {
			t.Fatalf("reassembled %d datagrams, want at least 2", s.Stats().IP.Reassembled.Load())
		}
	})
}

func TestTAPPing(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode tap.Mode) {
		ns, s := tapStack(t, mode)
		out := ns.Exec(t, "ping", "-c", "3", "-i", "0.2", "-W", "2", "192.0.2.2")
		if !strings.Contains(out, "3 received") {
			t.Fatalf("ping output:\n%s", out)
		}
		if got := s.Stats().ICMP.EchoReplies.Load(); got != 3 {
			t.Fatalf("echo replies sent: %d, want 3", got)
		}
	})
}

// TestTAPPingLarge pings with more data than the MTU holds: the kernel
// fragments the request and tapnet must fragment the reply.
func TestTAPPingLarge(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode tap.Mode) {
		ns, s := tapStack(t, mode)
		for _, size := range []string{"2000", "8000"} {
			out := ns.Exec(t, "ping", "-c", "2", "-i", "0.2", "-W", "2", "-s", size, "192.0.2.2")
			if !strings.Contains(out, "2 received") {
				t.Fatalf("ping -s %s output:\n%s", size, out)
			}
		}
		if got := s.Stats().ICMP.EchoReplies.Load(); got != 4 {
			t.Fatalf("echo replies sent: %d, want 4", got)
		}
	})
}

func TestTAPKernelSeesPortUnreachable(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode tap.Mode) {
		ns, s := tapStack(t, mode)
		c := kernelDial(t, ns, "192.0.2.2:9")
		c.Write([]byte("anyone?"))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := c.Read(make([]byte, 16))
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("kernel read: %v, want ECONNREFUSED", err)
		}
		if s.Stats().UDP.NoPort.Load() != 1 || s.Stats().ICMP.ErrorsSent.Load() != 1 {
			t.Fatalf("stats: %v", s.Stats().Snapshot())
		}
	})
}

func TestTAPTapnetToKernel(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode tap.Mode) {
		ns, s := tapStack(t, mode)
		var k *net.UDPConn
		if err := ns.Do(func() (err error) {
			k, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5300})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer k.Close()
		c, err := DialUDP(s, "udp", nil, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5300})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// On a TAP the first write waits in the ARP queue until the kernel
		// answers; a TUN has no neighbours to resolve.
		if _, err := c.Write([]byte("hello kernel")); err != nil {
			t.Fatal(err)
		}
		k.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 64)
		n, from, err := k.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		if string(buf[:n]) != "hello kernel" || from.Addr() != netip.MustParseAddr("192.0.2.2") {
			t.Fatalf("kernel got %q from %v", buf[:n], from)
		}
		if _, err := k.WriteToUDPAddrPort([]byte("hello tapnet"), from); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err = c.Read(buf)
		if err != nil || string(buf[:n]) != "hello tapnet" {
			t.Fatalf("tapnet read %q, %v", buf[:n], err)
		}
		// And the kernel closing its socket shows up as ECONNREFUSED here.
		k.Close()
		c.Write([]byte("still there?"))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(buf); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("read after kernel close: %v, want ECONNREFUSED", err)
		}
	})
}

// echoQUIC runs a quic-go echo server on one conn and a client on another,
// echoing 4 streams of size bytes.
func echoQUIC(t *testing.T, srvConn, clConn net.PacketConn, srvAddr net.Addr, size int) {
	srvTLS, clTLS := testTLS(t)
	conf := &quic.Config{MaxIdleTimeout: 10 * time.Second}
	srvTr, clTr := &quic.Transport{Conn: srvConn}, &quic.Transport{Conn: clConn}
	defer srvTr.Close()
	defer clTr.Close()
	ln, err := srvTr.Listen(srvTLS, conf)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() {
		for {
			conn, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			go func() {
				for {
					st, err := conn.AcceptStream(ctx)
					if err != nil {
						return
					}
					go func() { io.Copy(st, st); st.Close() }()
				}
			}()
		}
	}()
	conn, err := clTr.Dial(ctx, srvAddr, clTLS, conf)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := echoStream(ctx, t, conn, i, size); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

// TestTAPQUIC runs quic-go between tapnet and the kernel over the TAP, in
// both directions: server on tapnet with a kernel client, then the reverse.
func TestTAPQUIC(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode tap.Mode) {
		ns, s := tapStack(t, mode)
		listenKernel := func() *net.UDPConn {
			var k *net.UDPConn
			if err := ns.Do(func() (err error) {
				k, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1)})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return k
		}
		t.Run("tapnet-server", func(t *testing.T) {
			srv, err := ListenUDP(s, "udp", &net.UDPAddr{Port: 4433})
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if t.Failed() {
					t.Logf("stats: %v", s.Stats().Snapshot())
				}
			}()
			echoQUIC(t, srv, listenKernel(), &net.UDPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 4433}, 1<<20)
		})
		t.Run("kernel-server", func(t *testing.T) {
			cl, err := ListenUDP(s, "udp", nil)
			if err != nil {
				t.Fatal(err)
			}
			k := listenKernel()
			echoQUIC(t, k, cl, k.LocalAddr(), 1<<20)
		})
	})
}
