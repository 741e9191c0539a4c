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
	if _, err := cl.Write(make([]byte, udp.MaxPayload+1)); !errors.Is(err, syscall.EMSGSIZE) {
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
