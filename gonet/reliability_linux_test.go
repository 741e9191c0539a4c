//go:build linux

package gonet_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapnet/tapnet/gonet"
	"github.com/tapnet/tapnet/internal/leakcheck"
	"github.com/tapnet/tapnet/internal/netns"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
)

// TestTAPRemoved deletes the TAP device from under a running stack: the
// reader fails cleanly, the stack logs the error and closes, blocked reads
// return net.ErrClosed, and no file descriptor is left open.
func TestTAPRemoved(t *testing.T) {
	netns.RequireRoot(t)
	leakcheck.Check(t)
	// Start the poller so that its own descriptors predate the count.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	ns := netns.New(t)
	fds := relFDs(t)
	dev := netns.NewTAP(t, ns, "192.0.2.1/24", tap.Options{})
	logs := &relLogs{}
	s := stack.New(stack.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	defer s.Close()
	nic, err := s.AddNIC(dev, stack.NICOptions{Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := gonet.ListenUDP(s, "udp", &net.UDPAddr{Port: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The kernel reaches the stack before the removal.
	ns.Exec(t, "ping", "-c", "1", "-W", "5", "192.0.2.2")
	ch := relBlocked(c, relReadMethods[1].read)

	ns.IP(t, "link", "del", "dev", dev.Name())
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("stack still open 10s after its TAP was removed")
	}
	relCheckClosed(t, relWait(t, ch, "ReadFrom"), "read")
	if nic.Err() == nil {
		t.Error("NIC reports no link error after removal")
	}
	if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "link failed") {
		t.Errorf("the failure was not logged: %q", l)
	}
	t.Logf("TAP removed: link error %v", nic.Err())
	if _, err := c.WriteToUDPAddrPort([]byte("x"), netip.MustParseAddrPort("192.0.2.1:9")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write after removal: %v, want net.ErrClosed", err)
	}
	s.Close()
	// More descriptors than before is a leak; fewer only means an earlier
	// test's descriptor closed meanwhile.
	if got := relFDs(t); got > fds {
		t.Errorf("%d file descriptors open after Close, %d before the TAP", got, fds)
	}
}

func relFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// relLogs collects log output.
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
