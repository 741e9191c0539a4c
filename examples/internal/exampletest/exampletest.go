// Package exampletest holds what the examples' tests share: a pair of
// sockets on tapnet (two stacks over an in-memory pipe) or on the kernel,
// and a runner for a serve loop that must keep running until the test ends
// and then stop cleanly.
package exampletest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/tapnet/tapnet/examples/internal/netsetup"
)

// OnKernel makes Pair hand out kernel sockets instead of tapnet ones, to
// show that an example's code runs unchanged on both.
var OnKernel bool

// Pair returns the server's socket and a client socket that can reach it:
// tapnet sockets on two stacks joined by an in-memory pipe, or kernel UDP
// sockets on loopback when OnKernel is set. Cleanup closes everything.
func Pair(t *testing.T) (server, client net.PacketConn) {
	t.Helper()
	if OnKernel {
		return kernelSocket(t), kernelSocket(t)
	}
	srv, cl, cleanup, err := (&netsetup.Flags{Addr: "192.0.2.2/24"}).PipeConns(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cleanup)
	return srv, cl
}

func kernelSocket(t *testing.T) net.PacketConn {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Serve runs serve on a fresh Pair and returns the client socket and the
// server's address. serve must still be running when the test ends, and
// return nil within stop once its context is cancelled.
func Serve(t *testing.T, stop time.Duration, serve func(context.Context, net.PacketConn) error) (client net.PacketConn, addr net.Addr) {
	t.Helper()
	server, client := Pair(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, server) }()
	t.Cleanup(func() {
		select {
		case err := <-done:
			t.Errorf("serve returned early: %v", err)
			return
		default:
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(stop):
			t.Error("serve did not return after cancel")
		}
	})
	return client, server.LocalAddr()
}

// OnKernelToo runs tests again, as subtests, on kernel sockets (the
// caller's other tests run them on tapnet).
func OnKernelToo(t *testing.T, tests map[string]func(*testing.T)) {
	OnKernel = true
	defer func() { OnKernel = false }()
	for name, f := range tests {
		t.Run(name, f)
	}
}
