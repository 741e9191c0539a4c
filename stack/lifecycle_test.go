package stack_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapnet/tapnet/arp"
	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/leakcheck"
	"github.com/tapnet/tapnet/internal/udpsock"
	"github.com/tapnet/tapnet/stack"
)

// relBlockedRead starts a read on ep that blocks, and returns a channel
// with its error.
func relBlockedRead(ep *udpsock.Endpoint) <-chan error {
	ch := make(chan error, 1)
	go func() {
		_, err := ep.Read(make([]byte, 100), false, nil)
		ch <- err
	}()
	return ch
}

func relWaitErr(t *testing.T, ch <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(5 * time.Second):
		t.Fatalf("%s still blocked 5s later", what)
		return nil
	}
}

// TestStackCloseReleasesEverything closes a busy stack: blocked readers
// wake with ErrClosed, pending resolutions, reassemblies and queued
// datagrams are released, every goroutine returns, and later calls fail
// cleanly instead of hanging.
func TestStackCloseReleasesEverything(t *testing.T) {
	leakcheck.Check(t)
	e := newRelEnv(t, stack.Options{ARP: arp.Config{RetransInterval: 100 * time.Millisecond, Retries: 10}})
	reader := e.listen(netip.Addr{}, 7)
	queued := e.listen(netip.Addr{}, 8)
	e.link.inject(relUDPFrame(relPeerIP, relOurIP, 5000, 8, []byte("queued")))
	var reads []<-chan error
	for i := 0; i < 4; i++ {
		reads = append(reads, relBlockedRead(reader))
	}
	// A resolution in progress and a datagram under reassembly.
	if _, err := queued.Write([]byte("pending"), netip.AddrPortFrom(relHost(77), 9), nil); err != nil {
		t.Fatal(err)
	}
	e.link.inject(relFrag(relPeerIP, relOurIP, 17, 5, 0, true, make([]byte, 64), relOurMAC))
	if e.s.Stats().Reassembly.InFlight.Load() != 1 || e.nic.ARP().Len() != 2 {
		t.Fatalf("set-up: %d reassemblies, %d ARP entries", e.s.Stats().Reassembly.InFlight.Load(), e.nic.ARP().Len())
	}

	e.s.Close()
	for i, ch := range reads {
		if err := relWaitErr(t, ch, fmt.Sprintf("reader %d", i)); !errors.Is(err, udpsock.ErrClosed) {
			t.Errorf("reader %d: %v, want ErrClosed", i, err)
		}
	}
	select {
	case <-e.s.Done():
	default:
		t.Error("Done not closed after Close")
	}
	if n := e.nic.ARP().Len(); n != 0 {
		t.Errorf("%d ARP entries after Close", n)
	}
	if r := &e.s.Stats().Reassembly; r.InFlight.Load() != 0 || r.MemoryUsed.Load() != 0 {
		t.Errorf("reassembly holds %d datagrams, %d bytes after Close", r.InFlight.Load(), r.MemoryUsed.Load())
	}
	if _, err := queued.Read(make([]byte, 10), false, nil); !errors.Is(err, udpsock.ErrClosed) {
		t.Errorf("read of a closed endpoint with a queued datagram: %v, want ErrClosed", err)
	}
	if _, err := reader.Write([]byte("x"), netip.AddrPortFrom(relPeerIP, 9), nil); err == nil {
		t.Error("write after the stack closed succeeded")
	}
	ep := udpsock.New(e.s)
	if err := ep.Bind(netip.AddrPortFrom(netip.IPv4Unspecified(), 0)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("bind on a closed stack: %v, want an error wrapping net.ErrClosed", err)
	}
	ep.Close()
	if _, err := e.s.AddNIC(newRelLink(relPeerMAC, 1500), stack.NICOptions{}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("AddNIC on a closed stack: %v", err)
	}
	if err := e.s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// The resolution's timer must not send anything once closed.
	requests := e.s.Stats().ARP.Requests.Load()
	time.Sleep(300 * time.Millisecond) // three retransmission intervals
	if got := e.s.Stats().ARP.Requests.Load(); got != requests {
		t.Errorf("%d ARP requests sent after Close", got-requests)
	}
}

// relLogs collects log records.
type relLogs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *relLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *relLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// TestLinkFailureClosesStack makes the only link fail on its own (a TAP
// removed from under the stack): the stack logs the error, closes, and
// wakes every blocked reader with ErrClosed.
func TestLinkFailureClosesStack(t *testing.T) {
	leakcheck.Check(t)
	logs := &relLogs{}
	e := newRelEnv(t, stack.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	ep := e.listen(netip.Addr{}, 7)
	read := relBlockedRead(ep)
	e.link.fail(errors.New("device vanished"))
	select {
	case <-e.s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("stack not closed 5s after its only link failed")
	}
	if err := relWaitErr(t, read, "reader"); !errors.Is(err, udpsock.ErrClosed) {
		t.Errorf("blocked read: %v, want ErrClosed", err)
	}
	if l := logs.String(); !strings.Contains(l, "device vanished") || !strings.Contains(l, "level=ERROR") {
		t.Errorf("the link's error was not logged: %q", l)
	}
}

// TestLinkFailureOtherNICs checks that a failing link does not take down a
// stack that has other links.
func TestLinkFailureOtherNICs(t *testing.T) {
	leakcheck.Check(t)
	e := newRelEnv(t, stack.Options{})
	other := newRelLink(ethernet.MAC{0x02, 0, 0, 0, 0, 0x31}, 1500)
	if _, err := e.s.AddNIC(other, stack.NICOptions{Addresses: []netip.Prefix{netip.MustParsePrefix("198.51.100.1/24")}}); err != nil {
		t.Fatal(err)
	}
	ep := e.listen(netip.Addr{}, 7)
	other.fail(errors.New("second link vanished"))
	select {
	case <-e.s.Done():
		t.Fatal("stack closed when one of two links failed")
	case <-time.After(100 * time.Millisecond):
	}
	e.link.inject(relUDPFrame(relPeerIP, relOurIP, 5000, 7, []byte("still")))
	if got := relRead(ep); len(got) != 1 || string(got[0].data) != "still" {
		t.Fatalf("after the other link failed: read %v", got)
	}
}

// TestEndpointCloseDuringResolution closes an endpoint whose datagram waits
// for ARP and whose reader is blocked; the resolution then fails without
// anyone left to tell.
func TestEndpointCloseDuringResolution(t *testing.T) {
	leakcheck.Check(t)
	e := newRelEnv(t, stack.Options{ARP: arp.Config{RetransInterval: 200 * time.Millisecond, Retries: 2}})
	ep := e.listen(netip.Addr{}, 0)
	if err := ep.Connect(netip.AddrPortFrom(relHost(77), 9)); err != nil {
		t.Fatal(err)
	}
	if _, err := ep.Write([]byte("x"), netip.AddrPort{}, nil); err != nil {
		t.Fatal(err)
	}
	read := relBlockedRead(ep)
	ep.Close()
	if err := relWaitErr(t, read, "reader"); !errors.Is(err, udpsock.ErrClosed) {
		t.Errorf("blocked read: %v, want ErrClosed", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.s.Stats().ARP.Failed.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if e.s.Stats().ARP.Failed.Load() != 1 || e.nic.ARP().Len() != 1 {
		t.Errorf("resolution: %d failed, %d entries left", e.s.Stats().ARP.Failed.Load(), e.nic.ARP().Len())
	}
	if e.s.Stats().ICMP.ErrorsDelivered.Load() != 0 {
		t.Error("resolution failure delivered to a closed endpoint")
	}
}
