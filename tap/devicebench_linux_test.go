package tap_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/netns"
	"github.com/tapnet/tapnet/link"
	"github.com/tapnet/tapnet/tap"
)

// BenchmarkTAPWrite measures the stack→kernel path: frames addressed to a
// MAC that is not the kernel's, which the kernel drops on arrival.
func BenchmarkTAPWrite(b *testing.B) {
	ns := netns.New(b)
	d := netns.NewTAP(b, ns, "192.0.2.1/24", tap.Options{})
	other := ethernet.MAC{2, 0, 0, 0, 0, 0x99}
	from, to := netip.AddrPortFrom(stackIP, 9), netip.AddrPortFrom(kernelIP, 9)
	payload := make([]byte, 64)
	f := udpFrame(other, d.MAC(), from, to, payload)
	frames := []link.Frame{{Buf: f, Len: len(f)}}
	b.ReportAllocs()
	b.SetBytes(int64(len(f)))
	for b.Loop() {
		if _, err := d.WriteFrames(frames); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTAPRead measures the kernel→stack path: a kernel UDP socket in
// the namespace sends to the stack's address, one datagram at a time.
func BenchmarkTAPRead(b *testing.B) {
	ns := netns.New(b)
	d := netns.NewTAP(b, ns, "192.0.2.1/24", tap.Options{})
	ns.IP(b, "neigh", "replace", stackIP.String(), "lladdr", d.MAC().String(), "dev", d.Name())
	var fd int
	err := ns.Do(func() (err error) {
		if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		return unix.Connect(fd, &unix.SockaddrInet4{Addr: stackIP.As4(), Port: 9})
	})
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fd)
	s := newSink()
	s.attach(d)
	payload := make([]byte, 64)
	timer := time.NewTimer(time.Hour)
	b.ReportAllocs()
	b.SetBytes(int64(ethernet.HeaderLen + 28 + len(payload)))
	var want int64
	for b.Loop() {
		if _, err := unix.Write(fd, payload); err != nil {
			b.Fatal(err)
		}
		want++
		timer.Reset(5 * time.Second)
		for s.n.Load() < want {
			select {
			case <-s.done:
			case <-timer.C:
				b.Fatalf("frame %d not delivered within 5s", want)
			}
		}
	}
	timer.Stop()
}

func TestTAPZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	ns := netns.New(t)
	d := netns.NewTAP(t, ns, "192.0.2.1/24", tap.Options{})
	ns.IP(t, "neigh", "replace", stackIP.String(), "lladdr", d.MAC().String(), "dev", d.Name())
	var conn *net.UDPConn
	if err := ns.Do(func() (err error) {
		conn, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(stackIP, 9)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s := newSink()
	s.attach(d)
	from, to := netip.AddrPortFrom(stackIP, 9), netip.AddrPortFrom(kernelIP, 9)
	payload := make([]byte, 64)
	other := ethernet.MAC{2, 0, 0, 0, 0, 0x99}
	f := udpFrame(other, d.MAC(), from, to, payload)
	frames := []link.Frame{{Buf: f, Len: len(f)}}
	write := testing.AllocsPerRun(200, func() {
		if _, err := d.WriteFrames(frames); err != nil {
			t.Fatal(err)
		}
	})
	// The kernel sends; only the reader goroutine's allocations differ
	// from a run with the socket write alone.
	var want int64
	read := testing.AllocsPerRun(200, func() {
		conn.Write(payload)
		want++
		s.wait(want)
	})
	sendOnly := testing.AllocsPerRun(200, func() { conn.Write(payload) })
	t.Logf("allocs per frame: write %v, read %v, socket send alone %v", write, read, sendOnly)
	if write != 0 || read-sendOnly > 0 {
		t.Errorf("allocs per frame: write %v, read %v (socket send alone %v); want 0", write, read, sendOnly)
	}
}
