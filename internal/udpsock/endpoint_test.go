package udpsock

import (
	"errors"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/udp"
)

// loStack is a stack with only its loopback: enough to exercise the
// endpoint without links.
func loopStack(t *testing.T) *stack.Stack {
	s := stack.New(stack.Options{})
	t.Cleanup(func() { s.Close() })
	return s
}

var lo = netip.MustParseAddr("127.0.0.1")

func boundLo(t *testing.T, s *stack.Stack, port uint16) *Endpoint {
	e := New(s)
	if err := e.Bind(netip.AddrPortFrom(lo, port)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func mustRead(t *testing.T, e *Endpoint, buf []byte, peek bool) ReadInfo {
	t.Helper()
	cancel := make(chan struct{})
	timer := time.AfterFunc(2*time.Second, func() { close(cancel) })
	defer timer.Stop()
	info, err := e.Read(buf, peek, cancel)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return info
}

func TestStatesAndBind(t *testing.T) {
	s := loopStack(t)
	e := New(s)
	if e.State() != StateInitial || e.LocalAddr().Port() != 0 {
		t.Fatal("new endpoint must be initial and unbound")
	}
	if err := e.Bind(netip.AddrPortFrom(lo, 0)); err != nil {
		t.Fatal(err)
	}
	if p := e.LocalAddr().Port(); p < stack.EphemeralMin || p > stack.EphemeralMax {
		t.Fatalf("ephemeral port %d out of range", p)
	}
	if err := e.Bind(netip.AddrPortFrom(lo, 0)); err != syscall.EINVAL {
		t.Fatalf("second bind: %v, want EINVAL", err)
	}
	other := New(s)
	if err := other.Bind(e.LocalAddr()); err != syscall.EADDRINUSE {
		t.Fatalf("bind to a taken port: %v, want EADDRINUSE", err)
	}
	// The seed endpoint swallowed this error; it must come back.
	if err := other.Bind(netip.MustParseAddrPort("[2001:db8::1]:53")); err != syscall.EAFNOSUPPORT {
		t.Fatalf("IPv6 bind: %v, want EAFNOSUPPORT", err)
	}
	if err := other.Bind(netip.MustParseAddrPort("192.0.2.77:53")); err != syscall.EADDRNOTAVAIL {
		t.Fatalf("bind to a foreign address: %v, want EADDRNOTAVAIL", err)
	}
	// An IPv4-mapped address is the IPv4 address.
	if err := other.Bind(netip.MustParseAddrPort("[::ffff:127.0.0.1]:0")); err != nil {
		t.Fatalf("v4-mapped bind: %v", err)
	}
	if other.LocalAddr().Addr() != lo {
		t.Fatalf("v4-mapped bind gave %v", other.LocalAddr())
	}
	if err := e.Connect(other.LocalAddr()); err != nil || e.State() != StateConnected {
		t.Fatalf("connect: %v, state %v", err, e.State())
	}
	if err := e.Connect(netip.AddrPort{}); err != nil || e.State() != StateBound {
		t.Fatalf("disconnect: %v, state %v", err, e.State())
	}
	if _, ok := e.RemoteAddr(); ok {
		t.Fatal("disconnected endpoint still has a remote")
	}
	e.Close()
	other.Close()
	if e.Close() != ErrClosed {
		t.Fatal("second close must report ErrClosed")
	}
}

func TestPeekTruncateEmpty(t *testing.T) {
	s := loopStack(t)
	rx := boundLo(t, s, 5000)
	tx := boundLo(t, s, 5001)
	for _, msg := range []string{"hello world", ""} {
		if _, err := tx.Write([]byte(msg), rx.LocalAddr(), nil); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 5)
	info := mustRead(t, rx, buf, true)
	if info.N != 5 || info.Len != 11 || !info.Truncated || info.Src != tx.LocalAddr() {
		t.Fatalf("peek: %+v", info)
	}
	// Peeking left it queued: a full read gets the whole datagram.
	full := make([]byte, 64)
	info = mustRead(t, rx, full, false)
	if string(full[:info.N]) != "hello world" || info.Truncated {
		t.Fatalf("read after peek: %q %+v", full[:info.N], info)
	}
	info = mustRead(t, rx, full, false)
	if info.N != 0 || info.Len != 0 || info.Src != tx.LocalAddr() {
		t.Fatalf("empty datagram: %+v", info)
	}
}

func TestReceiveBufferBoundedInBytes(t *testing.T) {
	s := loopStack(t)
	rx := boundLo(t, s, 5000)
	tx := boundLo(t, s, 5001)
	rx.SetReceiveBufferSize(8192) // 16384 effective, like Linux
	msg := make([]byte, 1000)
	for i := 0; i < 100; i++ {
		tx.Write(msg, rx.LocalAddr(), nil)
	}
	queued := 0
	for {
		cancel := make(chan struct{})
		close(cancel)
		rx.rcvMu.Lock()
		used := rx.rcvUsed
		rx.rcvMu.Unlock()
		if used > 16384+2304 { // plus one datagram of 1000 bytes, charged 2304 as on Linux
			t.Fatalf("queue holds %d bytes, limit 16384", used)
		}
		if _, err := rx.Read(make([]byte, 2000), false, cancel); err != nil {
			break
		}
		queued++
	}
	if queued == 0 || queued == 100 || rx.Drops() != uint64(100-queued) {
		t.Fatalf("queued %d, drops %d", queued, rx.Drops())
	}
	if got := s.Stats().UDP.BufferErrors.Load(); got != rx.Drops() {
		t.Fatalf("stack counted %d buffer errors, endpoint %d", got, rx.Drops())
	}
}

func TestShutdown(t *testing.T) {
	s := loopStack(t)
	a := boundLo(t, s, 5000)
	b := boundLo(t, s, 5001)
	if err := a.Shutdown(true, false); err != syscall.ENOTCONN {
		t.Fatalf("shutdown unconnected: %v, want ENOTCONN", err)
	}
	a.Connect(b.LocalAddr())
	b.Connect(a.LocalAddr())
	b.Write([]byte("queued before shutdown"), netip.AddrPort{}, nil)
	if err := a.Shutdown(true, true); err != nil {
		t.Fatal(err)
	}
	info, err := a.Read(make([]byte, 64), false, nil)
	if err != nil || info.N != 0 {
		t.Fatalf("read after read shutdown: %+v %v", info, err)
	}
	if _, err := a.Write([]byte("x"), netip.AddrPort{}, nil); err != syscall.EPIPE {
		t.Fatalf("write after write shutdown: %v, want EPIPE", err)
	}
}

func TestConnectedFiltersAndErrors(t *testing.T) {
	s := loopStack(t)
	a := boundLo(t, s, 5000)
	peer := boundLo(t, s, 5001)
	stranger := boundLo(t, s, 5002)
	if err := a.Connect(peer.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	stranger.Write([]byte("not for you"), a.LocalAddr(), nil)
	peer.Write([]byte("for you"), a.LocalAddr(), nil)
	buf := make([]byte, 64)
	info := mustRead(t, a, buf, false)
	if string(buf[:info.N]) != "for you" {
		t.Fatalf("connected endpoint read %q", buf[:info.N])
	}
	if _, err := a.Write([]byte("x"), netip.AddrPort{}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := New(s).Write([]byte("x"), netip.AddrPort{}, nil); err != syscall.EDESTADDRREQ {
		t.Fatalf("write without destination: %v", err)
	}
	// A closed peer port: ICMP port unreachable turns into ECONNREFUSED,
	// once.
	peer.Close()
	a.Write([]byte("anyone?"), netip.AddrPort{}, nil)
	timeout := make(chan struct{})
	defer time.AfterFunc(2*time.Second, func() { close(timeout) }).Stop()
	if _, err := a.Read(buf, false, timeout); err != syscall.ECONNREFUSED {
		t.Fatalf("read: %v, want ECONNREFUSED", err)
	}
	cancel := make(chan struct{})
	close(cancel)
	if _, err := a.Read(buf, false, cancel); err != ErrTimeout {
		t.Fatalf("error must be reported once, got %v", err)
	}
	if _, err := a.Write(make([]byte, udp.MaxPayload+1), netip.AddrPort{}, nil); err != syscall.EMSGSIZE {
		t.Fatalf("oversize: %v", err)
	}
}

func TestCloseWakesReaders(t *testing.T) {
	s := loopStack(t)
	e := boundLo(t, s, 5000)
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() {
			_, err := e.Read(make([]byte, 10), false, nil)
			errs <- err
		}()
	}
	time.Sleep(20 * time.Millisecond)
	e.Close()
	for i := 0; i < 4; i++ {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrClosed) {
				t.Fatalf("reader %d: %v", i, err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("Close did not wake a blocked reader")
		}
	}
}

// TestWriteErrors checks each way a send is refused, in Linux's order, and
// that an unbound endpoint's concurrent first sends bind it once.
func TestWriteErrors(t *testing.T) {
	s := loopStack(t)
	rx := boundLo(t, s, 5000)
	e := New(s)
	t.Cleanup(func() { e.Close() })
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.Write([]byte("first"), rx.LocalAddr(), nil)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("first send: %v", err)
		}
	}
	port := e.LocalAddr().Port()
	if e.State() != StateBound || port == 0 {
		t.Fatalf("after first sends: state %v, port %d", e.State(), port)
	}
	for i := 0; i < 8; i++ {
		if info := mustRead(t, rx, make([]byte, 10), false); info.Src.Port() != port {
			t.Fatalf("datagram %d from port %d, endpoint bound to %d", i, info.Src.Port(), port)
		}
	}
	for _, c := range []struct {
		name string
		to   netip.AddrPort
		want error
	}{
		{"no destination", netip.AddrPort{}, syscall.EDESTADDRREQ},
		{"port 0", netip.AddrPortFrom(lo, 0), syscall.EINVAL},
		{"IPv6", netip.MustParseAddrPort("[2001:db8::1]:53"), syscall.EAFNOSUPPORT},
		{"no route", netip.MustParseAddrPort("198.51.100.1:53"), syscall.ENETUNREACH},
	} {
		if _, err := e.Write([]byte("x"), c.to, nil); err != c.want {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	e.Close()
	if _, err := e.Write([]byte("x"), rx.LocalAddr(), nil); err != ErrClosed {
		t.Errorf("after close: %v, want ErrClosed", err)
	}
	unbound := New(s)
	defer unbound.Close()
	if _, err := unbound.Write(make([]byte, udp.MaxPayload+1), rx.LocalAddr(), nil); err != syscall.EMSGSIZE || unbound.State() != StateInitial {
		t.Errorf("oversize from an unbound endpoint: %v, state %v; want EMSGSIZE before binding", err, unbound.State())
	}
}

// TestShutdownWakesEveryReader checks that a read shutdown releases every
// blocked reader, not just one, as Linux's shutdown(SHUT_RD) does.
func TestShutdownWakesEveryReader(t *testing.T) {
	s := loopStack(t)
	a := boundLo(t, s, 5000)
	if err := a.Connect(netip.AddrPortFrom(lo, 5001)); err != nil {
		t.Fatal(err)
	}
	const readers = 4
	type result struct {
		info ReadInfo
		err  error
	}
	results := make(chan result, readers)
	for range readers {
		go func() {
			info, err := a.Read(make([]byte, 10), false, nil)
			results <- result{info, err}
		}()
	}
	time.Sleep(20 * time.Millisecond) // let them block
	if err := a.Shutdown(true, false); err != nil {
		t.Fatal(err)
	}
	for i := range readers {
		select {
		case r := <-results:
			if r.err != nil || r.info.N != 0 {
				t.Fatalf("reader %d: %+v %v, want 0 bytes and no error", i, r.info, r.err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("shutdown woke %d of %d blocked readers", i, readers)
		}
	}
}

// TestErrorWakesReaderRacingToWait delivers a connected socket's error
// while its reader is between checking for one and waiting: the reader,
// whose wake-up channel is made just before it waits, must not miss it.
func TestErrorWakesReaderRacingToWait(t *testing.T) {
	s := loopStack(t)
	peer := netip.AddrPortFrom(lo, 5001)
	e := boundLo(t, s, 5000)
	if err := e.Connect(peer); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	testHookErrorChecked = func(*Endpoint) {
		once.Do(func() {
			e.HandleError(stack.ControlError{Errno: syscall.ECONNREFUSED, Hard: true, Remote: peer})
		})
	}
	defer func() { testHookErrorChecked = nil }()
	giveUp := make(chan struct{})
	defer time.AfterFunc(5*time.Second, func() { close(giveUp) }).Stop()
	if _, err := e.Read(make([]byte, 10), false, giveUp); err != syscall.ECONNREFUSED {
		t.Fatalf("read returned %v, want ECONNREFUSED", err)
	}
}
