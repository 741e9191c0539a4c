package tap_test

import (
	"bytes"
	"errors"
	"syscall"
	"testing"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/link"
	"github.com/tapnet/tapnet/tap"
)

// TestIPPipe: an IP pipe carries bare packets from one byte (the version
// nibble) up to the MTU, with no link header and no MACs.
func TestIPPipe(t *testing.T) {
	a, b := tap.Pipe(tap.PipeOptions{Layer: link.LayerIP, MTU: 576})
	defer a.Close()
	r := newRx(4)
	r.attach(b)
	if info := a.Info(); info.Layer != link.LayerIP || info.MTU != 576 || info.MAC != (ethernet.MAC{}) {
		t.Fatalf("Info() = %+v, want an IP link, MTU 576, no MAC", info)
	}
	for _, n := range []int{1, 20, 576} {
		pkt := bytes.Repeat([]byte{0x45}, n)
		if err := write(a, pkt); err != nil {
			t.Fatalf("write %d bytes: %v", n, err)
		}
		if got := r.next(t); !bytes.Equal(got, pkt) {
			t.Fatalf("read %d bytes, wrote %d", len(got), n)
		}
	}
	for _, n := range []int{0, 577} {
		if err := write(a, make([]byte, n)); !errors.Is(err, syscall.EMSGSIZE) {
			t.Errorf("write %d bytes: %v, want EMSGSIZE", n, err)
		}
	}
}

// TestCaptureLinkType: a capture of an IP link is a raw-IP pcap.
func TestCaptureLinkType(t *testing.T) {
	for _, c := range []struct {
		layer link.Layer
		want  uint32
	}{{link.LayerEthernet, tap.LinkTypeEthernet}, {link.LayerIP, tap.LinkTypeRaw}} {
		a, b := tap.Pipe(tap.PipeOptions{Layer: c.layer})
		var buf bytes.Buffer
		d, err := tap.Capture(a, &buf)
		if err != nil {
			t.Fatal(err)
		}
		d.Close()
		b.Close()
		f, err := tap.ReadPcap(&buf)
		if err != nil || f.LinkType != c.want {
			t.Errorf("%v link: pcap link type %d (%v), want %d", c.layer, f.LinkType, err, c.want)
		}
	}
}

func TestMode(t *testing.T) {
	if tap.ModeTAP.Layer() != link.LayerEthernet || tap.ModeTUN.Layer() != link.LayerIP ||
		tap.ModeTAP.String() != "tap" || tap.ModeTUN.String() != "tun" {
		t.Fatal("modes do not map to their layers and names")
	}
}
