package gonet

import (
	"bytes"
	"errors"
	"math/rand"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/tapnet/tapnet/tap"
	"github.com/tapnet/tapnet/udp"
)

// TestLargeDatagrams sends datagrams up to the UDP maximum between two
// stacks over a 1500-byte pipe: they are fragmented and reassembled.
func TestLargeDatagrams(t *testing.T) {
	a, b := pair(t, tap.PipeOptions{})
	srv, err := ListenUDP(a, "udp", &net.UDPAddr{Port: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cl, err := DialUDP(b, "udp", nil, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	srv.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := rand.New(rand.NewSource(1))
	for _, size := range []int{1473, 8000, 30001, udp.MaxPayload} {
		msg := make([]byte, size)
		r.Read(msg)
		if _, err := cl.Write(msg); err != nil {
			t.Fatalf("write %d: %v", size, err)
		}
		got := make([]byte, 70000)
		n, _, err := srv.ReadFromUDP(got)
		if err != nil {
			t.Fatalf("read %d: %v", size, err)
		}
		if !bytes.Equal(got[:n], msg) {
			t.Fatalf("size %d: corrupted (got %d bytes)", size, n)
		}
	}
	if _, err := cl.Write(make([]byte, udp.MaxPayload+1)); !errors.Is(err, osErrno(syscall.EMSGSIZE)) {
		t.Fatalf("oversize write: %v, want EMSGSIZE", err)
	}
	if a.Stats().IP.Reassembled.Load() != 4 {
		t.Fatalf("reassembled %d datagrams, want 4", a.Stats().IP.Reassembled.Load())
	}
}

// TestLargeDatagramsLossy checks that, with loss and reordering, a
// fragmented datagram arrives intact or not at all.
func TestLargeDatagramsLossy(t *testing.T) {
	a, b := pair(t, tap.PipeOptions{})
	srv, _ := ListenUDP(a, "udp", &net.UDPAddr{Port: 7})
	defer srv.Close()
	srv.SetReadBuffer(4 << 20)
	cl, _ := DialUDP(b, "udp", nil, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 7})
	defer cl.Close()
	// Resolve ARP before impairing the link.
	cl.Write([]byte("warm"))
	srv.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, _, err := srv.ReadFrom(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	for _, l := range b.NICs()[1:] {
		l.Link().(*tap.PipeEnd).SetImpairments(tap.Impairments{Loss: 0.01, Reorder: 0.2, Duplicate: 0.01})
	}
	r := rand.New(rand.NewSource(2))
	want := map[byte][]byte{}
	for i := 0; i < 40; i++ {
		msg := make([]byte, 20000)
		r.Read(msg)
		msg[0] = byte(i)
		want[byte(i)] = msg
		cl.Write(msg)
	}
	got := make([]byte, 70000)
	intact := 0
	for {
		srv.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, _, err := srv.ReadFrom(got)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if w := want[got[0]]; !bytes.Equal(got[:n], w) {
			t.Fatalf("datagram %d corrupted", got[0])
		}
		intact++
	}
	// Each datagram is 14 fragments: about 87% survive 1% loss.
	if intact < 20 {
		t.Fatalf("only %d of 40 datagrams survived 1%% loss", intact)
	}
	t.Logf("%d of 40 fragmented datagrams arrived intact", intact)
}

// TestDontFragment checks the IP_PMTUDISC_DO mirror: oversize datagrams
// fail with EMSGSIZE instead of being fragmented; those that fit go out
// with DF set.
func TestDontFragment(t *testing.T) {
	a, b := pair(t, tap.PipeOptions{})
	srv, _ := ListenUDP(a, "udp", &net.UDPAddr{Port: 7})
	defer srv.Close()
	cl, _ := DialUDP(b, "udp", nil, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 7})
	defer cl.Close()
	if err := cl.SetDontFragment(true); err != nil {
		t.Fatal(err)
	}
	_, err := cl.Write(make([]byte, 1473))
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "write" || !errors.Is(err, osErrno(syscall.EMSGSIZE)) {
		t.Fatalf("oversize DF write: %v, want write OpError with EMSGSIZE", err)
	}
	if _, err := cl.Write(make([]byte, 1472)); err != nil {
		t.Fatalf("1472 bytes fit in one 1500-byte frame: %v", err)
	}
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _, err := srv.ReadFrom(make([]byte, 2000)); err != nil || n != 1472 {
		t.Fatalf("read %d, %v", n, err)
	}
	if got := b.Stats().IP.FragmentsOut.Load(); got != 0 {
		t.Fatalf("%d fragments sent with DF on", got)
	}
	cl.SetDontFragment(false)
	if _, err := cl.Write(make([]byte, 1473)); err != nil {
		t.Fatalf("without DF the datagram is fragmented: %v", err)
	}
	if got := b.Stats().IP.FragmentsOut.Load(); got != 2 {
		t.Fatalf("%d fragments sent, want 2", got)
	}
}

// BenchmarkEcho65507 echoes maximal datagrams (45 fragments each way)
// between two stacks over the pipe.
func BenchmarkEcho65507(b *testing.B) {
	srv, cl, addr := benchPair(b)
	srv.SetReadBuffer(4 << 20)
	cl.SetReadBuffer(4 << 20)
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := srv.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			srv.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	msg, buf := make([]byte, udp.MaxPayload), make([]byte, 65536)
	b.SetBytes(int64(len(msg)))
	cl.SetReadDeadline(time.Now().Add(time.Minute)) // a lost datagram fails the run instead of hanging it
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cl.WriteToUDPAddrPort(msg, addr)
		if _, _, err := cl.ReadFromUDPAddrPort(buf); err != nil {
			b.Fatal(err)
		}
	}
}
