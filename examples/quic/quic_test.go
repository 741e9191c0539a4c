package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/tapnet/tapnet/examples/internal/exampletest"
)

// newTestPair returns the server's socket and a client socket: tapnet by
// default, the kernel's under TestOnKernel.
func newTestPair(t *testing.T) (server, client net.PacketConn) {
	t.Helper()
	return exampletest.Pair(t)
}

// TestOnKernel runs the main tests again on kernel sockets: nothing in the
// example is tapnet-specific.
func TestOnKernel(t *testing.T) {
	exampletest.OnKernelToo(t, map[string]func(*testing.T){
		"Echo": TestEcho, "Datagram": TestDatagram,
		"GracefulClose": TestGracefulClose, "ServeStopsOnClose": TestServeStopsOnClose,
	})
}

// startServer runs Serve on a fresh pair and returns the client socket and
// the server's address.
func startServer(t *testing.T) (client net.PacketConn, addr net.Addr) {
	t.Helper()
	return exampletest.Serve(t, 10*time.Second, Serve)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestEcho(t *testing.T) {
	client, addr := startServer(t)
	const streams, size = 4, 1 << 20
	res, err := Echo(testContext(t), client, addr, streams, size)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res)
	if res.Streams != streams || res.Bytes != streams*size || res.Handshake <= 0 || res.Duration <= 0 || res.Throughput <= 0 {
		t.Errorf("result %+v", res)
	}

	// The client socket is left usable: a second run on it works, and so
	// do streams without data.
	if _, err := Echo(testContext(t), client, addr, 3, 0); err != nil {
		t.Fatalf("second Echo on the same socket: %v", err)
	}
}

func TestSendMessage(t *testing.T) {
	client, addr := startServer(t)
	for _, msg := range []string{"hello", "", strings.Repeat("long message ", 10000)} {
		reply, err := SendMessage(testContext(t), client, addr, msg)
		if err != nil {
			t.Fatal(err)
		}
		if reply != msg {
			t.Errorf("sent %d bytes, echo has %d", len(msg), len(reply))
		}
	}
}

func TestDatagram(t *testing.T) {
	client, addr := startServer(t)
	msg := []byte("a datagram, not a stream")
	reply, err := EchoDatagram(testContext(t), client, addr, msg, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if string(reply) != string(msg) {
		t.Errorf("echo %q, want %q", reply, msg)
	}
}

// TestEchoDetectsCorruption runs Echo against a server that flips one
// byte: the verification must notice.
func TestEchoDetectsCorruption(t *testing.T) {
	server, client := newTestPair(t)
	tlsConf, err := ServerTLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: server}
	defer tr.Close()
	ln, err := tr.Listen(tlsConf, quicConfig())
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		conn, err := ln.Accept(context.Background())
		if err != nil {
			return
		}
		str, err := conn.AcceptStream(context.Background())
		if err != nil {
			return
		}
		b, err := io.ReadAll(str)
		if err != nil {
			return
		}
		b[len(b)/2] ^= 1
		str.Write(b)
		str.Close()
	}()
	_, err = Echo(testContext(t), client, server.LocalAddr(), 1, 1000)
	if err == nil || !strings.Contains(err.Error(), "differs") {
		t.Fatalf("Echo against a corrupting server: %v", err)
	}
}

func TestEchoCancel(t *testing.T) {
	client, addr := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Echo(ctx, client, addr, 4, 1<<30)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Echo: %v, want the context's error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Echo took %v to notice the context", d)
	}
}

// waitGoroutines waits for the goroutine count to fall to at most n.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestGracefulClose(t *testing.T) {
	// The baseline includes whatever the sockets themselves run.
	server, client := newTestPair(t)
	before := runtime.NumGoroutine()
	func() {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- Serve(ctx, server) }()

		// A client with an open connection and a half-done stream.
		tr, conn, _, err := dial(testContext(t), client, server.LocalAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		str, err := conn.OpenStreamSync(testContext(t))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := str.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(str, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("echo %q, %v", buf, err)
		}

		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return after cancel")
		}

		// The server said goodbye rather than vanishing.
		select {
		case <-conn.Context().Done():
		case <-time.After(5 * time.Second):
			t.Fatal("client connection still open after the server stopped")
		}
		var appErr *quic.ApplicationError
		if err := context.Cause(conn.Context()); !errors.As(err, &appErr) || !appErr.Remote || appErr.ErrorCode != codeNoError {
			t.Errorf("client connection ended with %v, want the server's CONNECTION_CLOSE", err)
		}
	}()
	waitGoroutines(t, before)
}

func TestServeStopsOnClose(t *testing.T) {
	server, client := newTestPair(t)
	before := runtime.NumGoroutine()
	func() {
		done := make(chan error, 1)
		go func() { done <- Serve(context.Background(), server) }()
		// Serve is up and serving before the close.
		if _, err := SendMessage(testContext(t), client, server.LocalAddr(), "x"); err != nil {
			t.Fatal(err)
		}
		server.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return after the socket was closed")
		}
	}()
	waitGoroutines(t, before)
}

// plainConn hides everything but net.PacketConn, as a userspace stack's
// socket would: quic-go then takes its portable path (no batched reads,
// GSO, ECN or DF).
type plainConn struct{ net.PacketConn }

func TestEchoPlainPacketConn(t *testing.T) {
	// quic-go warns once per process through the log package that it
	// cannot size the socket buffers; show it as test output.
	var logged bytes.Buffer
	orig := log.Writer()
	log.SetOutput(&logged)
	defer func() {
		log.SetOutput(orig)
		if logged.Len() > 0 {
			t.Logf("quic-go logged: %s", logged.Bytes())
		}
	}()

	server, client := newTestPair(t)
	server, client = plainConn{server}, plainConn{client}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, server) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	res, err := Echo(testContext(t), client, server.LocalAddr(), 4, 256<<10)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res)
}
