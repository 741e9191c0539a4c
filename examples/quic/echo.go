package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
)

// Application error codes sent in CONNECTION_CLOSE and stream resets.
const (
	codeNoError   quic.ApplicationErrorCode = 0 // done, or server shutting down
	codeBusy      quic.ApplicationErrorCode = 1 // too many connections
	codeFailed    quic.ApplicationErrorCode = 2 // the client saw a wrong echo
	codeCancelled quic.ApplicationErrorCode = 3 // the client's context ended

	codeStreamAborted quic.StreamErrorCode = 1
)

// maxConns bounds the connections Serve handles at once; each costs a few
// goroutines and flow-control buffers of up to tens of MiB.
const maxConns = 64

// quicConfig is shared by both sides: datagrams must be enabled on both
// for either to use them.
func quicConfig() *quic.Config {
	return &quic.Config{EnableDatagrams: true}
}

// Serve runs a QUIC echo server on pc until ctx is done or pc is closed, in
// both of which cases it returns nil. It echoes every stream until the
// peer closes its sending side, then closes its own, and echoes QUIC
// datagrams (RFC 9221). On the way out it closes every connection with a
// CONNECTION_CLOSE and waits for all its goroutines. Serve does not close
// pc, and uses only the net.PacketConn interface, so pc may be a kernel
// socket or a userspace stack's.
func Serve(ctx context.Context, pc net.PacketConn) error {
	tlsConf, err := ServerTLSConfig()
	if err != nil {
		return err
	}
	tr := &quic.Transport{Conn: pc}
	defer tr.Close()
	ln, err := tr.Listen(tlsConf, quicConfig())
	if err != nil {
		return err
	}
	defer ln.Close()

	var wg sync.WaitGroup
	defer wg.Wait() // runs before ln.Close and tr.Close
	slots := make(chan struct{}, maxConns)
	for {
		conn, err := ln.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil || pcClosed(err) {
				return nil
			}
			return err
		}
		select {
		case slots <- struct{}{}:
			wg.Go(func() {
				defer func() { <-slots }()
				serveConn(ctx, conn)
			})
		default:
			conn.CloseWithError(codeBusy, "server busy")
		}
	}
}

// pcClosed tells whether an Accept error means that the PacketConn was
// closed. quic-go reports every end of its transport as net.ErrClosed,
// wrapping the read error that caused it; only that cause tells a closed
// socket from a failed one.
func pcClosed(err error) bool {
	var multi interface{ Unwrap() []error }
	if errors.As(err, &multi) {
		for _, cause := range multi.Unwrap() {
			if cause != nil && cause != net.ErrClosed {
				return errors.Is(cause, net.ErrClosed)
			}
		}
	}
	return errors.Is(err, net.ErrClosed)
}

// serveConn echoes one connection's streams and datagrams until the
// connection ends or ctx is done.
func serveConn(ctx context.Context, conn *quic.Conn) {
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			str, err := conn.AcceptStream(conn.Context())
			if err != nil {
				return // the connection is gone
			}
			wg.Go(func() { echoStream(str) })
		}
	})
	if conn.ConnectionState().SupportsDatagrams.Remote {
		wg.Go(func() {
			for {
				b, err := conn.ReceiveDatagram(conn.Context())
				if err != nil {
					return
				}
				// Datagrams are unreliable by design: an echo that does not
				// fit or is dropped is the client's to retry.
				_ = conn.SendDatagram(b)
			}
		})
	}
	select {
	case <-ctx.Done():
		// Tell the peer, rather than letting it time out; this also ends
		// the loops above.
		conn.CloseWithError(codeNoError, "server shutting down")
	case <-conn.Context().Done():
	}
	wg.Wait()
}

// echoStream copies a stream back to its sender; the peer's FIN ends the
// copy and is answered by ours.
func echoStream(str *quic.Stream) {
	if _, err := io.Copy(str, str); err != nil {
		// Reset by the peer, or the connection died: abandon the stream.
		str.CancelRead(codeStreamAborted)
		str.CancelWrite(codeStreamAborted)
		return
	}
	str.Close()
}

// Result describes one Echo run.
type Result struct {
	Handshake time.Duration // from the first packet to the completed handshake
	Streams   int
	Bytes     int64         // payload sent, and received back verified
	Duration  time.Duration // from opening the streams to the last verified byte
	// Throughput is Bytes/Duration in bytes per second. Each byte crossed
	// the network twice (there and back) in that time.
	Throughput float64
}

func (r Result) String() string {
	return fmt.Sprintf("handshake %v, %d streams, %d bytes echoed and verified in %v, %.1f MiB/s (%.1f Mbit/s each way)",
		r.Handshake.Round(time.Microsecond), r.Streams, r.Bytes, r.Duration.Round(time.Millisecond),
		r.Throughput/(1<<20), r.Throughput*8/1e6)
}

// dial connects to an echo server over pc. The returned Transport must be
// closed after the connection.
func dial(ctx context.Context, pc net.PacketConn, server net.Addr) (*quic.Transport, *quic.Conn, time.Duration, error) {
	tr := &quic.Transport{Conn: pc}
	start := time.Now()
	conn, err := tr.Dial(ctx, server, ClientTLSConfig(), quicConfig())
	if err != nil {
		tr.Close()
		return nil, nil, 0, fmt.Errorf("dial %s: %w", server, err)
	}
	return tr, conn, time.Since(start), nil
}

// Echo connects to the echo server at server over pc, sends bytesPerStream
// pseudo-random bytes on each of streams concurrent streams, and checks
// that exactly those bytes come back. pc is not closed and may be reused.
func Echo(ctx context.Context, pc net.PacketConn, server net.Addr, streams, bytesPerStream int) (Result, error) {
	if streams < 1 || bytesPerStream < 0 {
		return Result{}, fmt.Errorf("echo: invalid %d streams of %d bytes", streams, bytesPerStream)
	}
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		return Result{}, err
	}
	tr, conn, handshake, err := dial(ctx, pc, server)
	if err != nil {
		return Result{}, err
	}
	defer tr.Close()

	// Stream I/O takes no context; closing the connection unblocks it.
	// The first failure does the same for the other streams.
	var (
		once     sync.Once
		firstErr error
	)
	fail := func(err error, code quic.ApplicationErrorCode, msg string) {
		once.Do(func() {
			firstErr = err
			go conn.CloseWithError(code, msg)
		})
	}
	stop := context.AfterFunc(ctx, func() { fail(ctx.Err(), codeCancelled, "cancelled") })
	defer stop()

	start := time.Now()
	var wg sync.WaitGroup
	for i := range streams {
		wg.Go(func() {
			s := seed
			binary.LittleEndian.PutUint64(s[:], binary.LittleEndian.Uint64(s[:])+uint64(i))
			if err := echoOnce(ctx, conn, s, bytesPerStream); err != nil {
				fail(fmt.Errorf("stream %d: %w", i, err), codeFailed, "echo failed")
			}
		})
	}
	wg.Wait()
	res := Result{
		Handshake: handshake,
		Streams:   streams,
		Bytes:     int64(streams) * int64(bytesPerStream),
		Duration:  time.Since(start),
	}
	res.Throughput = float64(res.Bytes) / res.Duration.Seconds()
	once.Do(func() {}) // no failure from here on
	if firstErr != nil {
		<-conn.Context().Done()
		return Result{}, firstErr
	}
	conn.CloseWithError(codeNoError, "done")
	return res, nil
}

// echoOnce runs one stream: it writes n bytes of the ChaCha8 stream for
// seed and concurrently reads the echo, comparing it with the same
// stream regenerated, so neither side holds the data in memory.
func echoOnce(ctx context.Context, conn *quic.Conn, seed [32]byte, n int) error {
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return err
	}
	writeErr := make(chan error, 1)
	go func() {
		err := writePattern(str, seed, n)
		if err != nil {
			str.CancelRead(codeStreamAborted) // unblocks the reader
		}
		writeErr <- err
	}()
	if err := verifyPattern(str, seed, n); err != nil {
		str.CancelWrite(codeStreamAborted) // unblocks the writer
		<-writeErr
		return err
	}
	if err := <-writeErr; err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

const chunkSize = 32 << 10

func writePattern(str *quic.Stream, seed [32]byte, n int) error {
	gen := rand.NewChaCha8(seed)
	buf := make([]byte, chunkSize)
	for n > 0 {
		k := min(n, len(buf))
		gen.Read(buf[:k])
		if _, err := str.Write(buf[:k]); err != nil {
			return err
		}
		n -= k
	}
	return str.Close() // FIN: the server finishes its echo
}

func verifyPattern(str *quic.Stream, seed [32]byte, n int) error {
	gen := rand.NewChaCha8(seed)
	buf := make([]byte, chunkSize)
	want := make([]byte, chunkSize)
	got := 0
	for {
		k, err := str.Read(buf)
		if k > 0 {
			if got+k > n {
				return fmt.Errorf("echo longer than the %d bytes sent", n)
			}
			gen.Read(want[:k])
			if !bytes.Equal(buf[:k], want[:k]) {
				return fmt.Errorf("echo differs in bytes %d..%d", got, got+k)
			}
			got += k
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read after %d of %d bytes: %w", got, n, err)
		}
	}
	if got != n {
		return fmt.Errorf("echo ended after %d of %d bytes", got, n)
	}
	return nil
}

// SendMessage sends msg on one stream to the echo server at server and
// returns what came back.
func SendMessage(ctx context.Context, pc net.PacketConn, server net.Addr, msg string) (string, error) {
	tr, conn, _, err := dial(ctx, pc, server)
	if err != nil {
		return "", err
	}
	defer tr.Close()
	stop := context.AfterFunc(ctx, func() { conn.CloseWithError(codeCancelled, "cancelled") })
	defer stop()

	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return "", err
	}
	// The message is small enough for the flow-control window, so writing
	// it all before reading cannot deadlock.
	if _, err := io.WriteString(str, msg); err != nil {
		return "", err
	}
	if err := str.Close(); err != nil {
		return "", err
	}
	// Read one byte more than sent, to notice a longer reply.
	reply, err := io.ReadAll(io.LimitReader(str, int64(len(msg))+1))
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", err
	}
	conn.CloseWithError(codeNoError, "done")
	return string(reply), nil
}

// EchoDatagram sends msg as a QUIC datagram to the echo server at server
// and returns the first datagram that comes back. Datagrams may be lost, so
// it resends every retry until a reply arrives or ctx is done.
func EchoDatagram(ctx context.Context, pc net.PacketConn, server net.Addr, msg []byte, retry time.Duration) ([]byte, error) {
	tr, conn, _, err := dial(ctx, pc, server)
	if err != nil {
		return nil, err
	}
	defer tr.Close()
	defer conn.CloseWithError(codeNoError, "done")
	if !conn.ConnectionState().SupportsDatagrams.Remote {
		return nil, errors.New("server does not support QUIC datagrams")
	}

	replies := make(chan []byte, 1)
	recvCtx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		for range replies { // wait for the receiver to finish
		}
	}()
	go func() {
		b, err := conn.ReceiveDatagram(recvCtx)
		if err == nil {
			replies <- b
		}
		close(replies)
	}()
	tick := time.NewTicker(retry)
	defer tick.Stop()
	for {
		if err := conn.SendDatagram(msg); err != nil {
			return nil, err
		}
		select {
		case b, ok := <-replies:
			if !ok {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				return nil, context.Cause(conn.Context())
			}
			return b, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
}
