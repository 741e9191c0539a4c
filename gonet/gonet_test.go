package gonet

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tapnet/tapnet/link"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

// pair returns two stacks joined by an in-memory pipe: a at 192.0.2.2/24
// and b at 192.0.2.1/24.
func pair(t testing.TB, opts tap.PipeOptions) (a, b *stack.Stack) {
	t.Helper()
	la, lb := tap.Pipe(opts)
	a, b = stack.New(stack.Options{}), stack.New(stack.Options{})
	t.Cleanup(func() { a.Close(); b.Close() })
	if _, err := a.AddNIC(la, stack.NICOptions{Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AddNIC(lb, stack.NICOptions{Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}); err != nil {
		t.Fatal(err)
	}
	return a, b
}

func TestEchoOverPipe(t *testing.T) {
	a, b := pair(t, tap.PipeOptions{})
	srv, err := ListenUDP(a, "udp", &net.UDPAddr{Port: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := srv.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			srv.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	cl, err := DialUDP(b, "udp", nil, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cl.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := 0; i < 100; i++ {
		msg := []byte{byte(i), 1, 2, 3}
		if _, err := cl.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 100)
		n, err := cl.Read(got)
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if !bytes.Equal(got[:n], msg) {
			t.Fatalf("got %x want %x", got[:n], msg)
		}
	}
	if la := cl.LocalAddr().(*net.UDPAddr); !la.IP.Equal(net.IPv4(192, 0, 2, 1)) || la.Port < 32768 || la.Port > 60999 {
		t.Fatalf("local addr %v", la)
	}
}

func TestConnRefused(t *testing.T) {
	_, b := pair(t, tap.PipeOptions{})
	cl, err := DialUDP(b, "udp", nil, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 9})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cl.Write([]byte("x"))
	cl.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err = cl.Read(make([]byte, 10))
	var se *os.SyscallError
	if !errors.As(err, &se) || se.Syscall != wantRefusedCall || se.Err != wantRefusedErrno || !errors.Is(err, wantRefusedErrno) {
		t.Fatalf("got %v, want %s: %v", err, wantRefusedCall, wantRefusedErrno)
	}
	cl.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, err = cl.Read(make([]byte, 10))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("second read: %v, want timeout (error reported once)", err)
	}
}

func TestUnresolvable(t *testing.T) {
	_, b := pair(t, tap.PipeOptions{})
	cl, err := DialUDP(b, "udp", nil, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 99), Port: 9})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	cl.SetReadDeadline(time.Now().Add(6 * time.Second))
	_, err = cl.Read(make([]byte, 10))
	if !errors.Is(err, osErrno(syscall.EHOSTUNREACH)) {
		t.Fatalf("got %v, want EHOSTUNREACH", err)
	}
}

// dropFirst is a link that loses the first n frames it is asked to send,
// as a lossy wire would, deterministically.
type dropFirst struct {
	*tap.PipeEnd
	left atomic.Int32
}

func (d *dropFirst) WriteFrames(frames []link.Frame) (int, error) {
	for i := range frames {
		if d.left.Add(-1) >= 0 {
			continue // lost on the wire
		}
		if _, err := d.PipeEnd.WriteFrames(frames[i : i+1]); err != nil {
			return i, err
		}
	}
	return len(frames), nil
}

func (d *dropFirst) TryWriteFrames(frames []link.Frame) int {
	n := 0
	for i := range frames {
		if d.left.Add(-1) >= 0 || d.PipeEnd.TryWriteFrames(frames[i:i+1]) == 1 {
			n++
		}
	}
	return n
}

// TestARPRetriesOverLoss loses the client's gratuitous ARP and its first
// two ARP requests: the third request, a second later, still resolves the
// server and the datagram queued meanwhile is delivered.
func TestARPRetriesOverLoss(t *testing.T) {
	la, lb := tap.Pipe(tap.PipeOptions{})
	a, b := stack.New(stack.Options{}), stack.New(stack.Options{})
	defer a.Close()
	defer b.Close()
	a.AddNIC(la, stack.NICOptions{Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")}, IPv6: stack.IPv6Options{Disabled: true}})
	lossy := &dropFirst{PipeEnd: lb}
	lossy.left.Store(3)
	b.AddNIC(lossy, stack.NICOptions{Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}, IPv6: stack.IPv6Options{Disabled: true}})
	// Let the server's gratuitous ARP arrive first: arriving while the
	// client resolves, it would resolve the entry itself (as on Linux).
	for i := 0; i < 5000 && b.Stats().ARP.Received.Load() == 0; i++ { // at most 5 s, for a loaded machine
		time.Sleep(time.Millisecond)
	}
	srv, _ := ListenUDP(a, "udp", &net.UDPAddr{Port: 7})
	defer srv.Close()
	cl, _ := DialUDP(b, "udp", nil, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 7})
	defer cl.Close()
	if _, err := cl.Write([]byte("patience")); err != nil {
		t.Fatal(err)
	}
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, _, err := srv.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "patience" {
		t.Fatalf("read %q, %v; client stats %v", buf[:n], err, b.Stats().Snapshot())
	}
	st := &b.Stats().ARP
	if st.Requests.Load() != 3 || st.Resolved.Load() != 1 || st.Failed.Load() != 0 {
		t.Fatalf("ARP requests %d, resolved %d, failed %d; want 3, 1, 0",
			st.Requests.Load(), st.Resolved.Load(), st.Failed.Load())
	}
}
