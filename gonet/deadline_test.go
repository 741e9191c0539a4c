package gonet

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/tapnet/tapnet/stack"
)

// TestDeadlineMadeLazily checks the deadlines whose channels are made on
// first use: a read blocked on a conn that never had a deadline wakes when
// one is set in the past, and a past write deadline set on a fresh conn
// fails the write.
func TestDeadlineMadeLazily(t *testing.T) {
	s := stack.New(stack.Options{})
	defer s.Close()
	c, err := ListenUDP(s, "udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFromUDPAddrPort(make([]byte, 16))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond) // let it block
	c.SetReadDeadline(time.Now().Add(-time.Second))
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("blocked read: %v, want a deadline error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("setting a deadline did not wake a blocked read")
	}

	w, err := ListenUDP(s, "udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.SetWriteDeadline(time.Now().Add(-time.Second))
	if _, err := w.WriteTo([]byte("x"), c.LocalAddr()); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write past its deadline: %v", err)
	}
	w.SetWriteDeadline(time.Time{})
	if _, err := w.WriteTo([]byte("x"), c.LocalAddr()); err != nil {
		t.Fatalf("write after clearing the deadline: %v", err)
	}
}
