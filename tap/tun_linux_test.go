package tap_test

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/netns"
	"github.com/tapnet/tapnet/link"
	"github.com/tapnet/tapnet/tap"
)

// TestTUNDevice opens a TUN: it is a point-to-point IP link to the kernel
// (no MAC, no ARP), reads the bare IPv4 packets the kernel routes into it,
// and refuses to write an empty packet.
func TestTUNDevice(t *testing.T) {
	ns := netns.New(t)
	d := netns.NewTUN(t, ns, "192.0.2.1/24", tap.Options{})
	if info := d.Info(); info.Layer != link.LayerIP || info.MAC != (ethernet.MAC{}) || info.MTU != 1500 {
		t.Fatalf("Info() = %+v, want an IP link with MTU 1500 and no MAC", info)
	}
	var flags net.Flags
	if err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(d.Name())
		if err == nil {
			flags = ifi.Flags
		}
		return err
	}); err != nil || flags&net.FlagPointToPoint == 0 {
		t.Fatalf("kernel side flags %v (%v), want point-to-point", flags, err)
	}
	// A datagram from the kernel to the stack's side arrives as it is.
	if err := ns.Do(func() error {
		c, err := net.Dial("udp4", "192.0.2.2:9")
		if err == nil {
			defer c.Close()
			_, err = c.Write([]byte("over tun"))
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	frames := []link.Frame{{Buf: make([]byte, 2048)}}
	done := make(chan error, 1)
	go func() { _, err := d.ReadFrames(frames); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no packet from the kernel")
	}
	p := frames[0].Bytes()
	if len(p) != 20+8+8 || p[0] != 0x45 || p[9] != 17 || string(p[16:20]) != string([]byte{192, 0, 2, 2}) {
		t.Fatalf("read %x, want the kernel's IPv4 UDP datagram to 192.0.2.2", p)
	}
	if _, err := d.WriteFrames([]link.Frame{{Buf: make([]byte, 8)}}); !errors.Is(err, syscall.EMSGSIZE) {
		t.Fatalf("empty write: %v, want EMSGSIZE", err)
	}
}
