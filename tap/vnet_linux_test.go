package tap_test

import (
	"encoding/binary"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/netns"
	"github.com/tapnet/tapnet/link"
	"github.com/tapnet/tapnet/tap"
)

// TestSuperFrameSplitAcrossReads: a 46-segment burst from a kernel socket
// with UDP_SEGMENT arrives as one super-frame; read 8 frames at a time, its
// segments come out in order across calls, each a whole checksum-valid
// datagram with its own IP header.
func TestSuperFrameSplitAcrossReads(t *testing.T) {
	ns := netns.New(t)
	d := netns.NewTAP(t, ns, "192.0.2.1/24", tap.Options{Offload: true})
	if st := d.Stats().Offloads; !st.USO {
		t.Skipf("no UDP segmentation offload: %+v", st)
	}
	ns.IP(t, "neigh", "replace", stackIP.String(), "lladdr", d.MAC().String(), "dev", d.Name())
	var fd int
	if err := ns.Do(func() (err error) {
		if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		if err = unix.SetsockoptInt(fd, unix.SOL_UDP, unix.UDP_SEGMENT, 1400); err != nil {
			return err
		}
		return unix.Connect(fd, &unix.SockaddrInet4{Addr: stackIP.As4(), Port: 9})
	}); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	const segs = 46
	burst := make([]byte, segs*1400)
	for i := range burst {
		burst[i] = byte(i / 1400)
	}
	if _, err := unix.Write(fd, burst); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(10*time.Second, func() { d.Close() })
	defer timer.Stop()
	frames := make([]link.Frame, 8)
	var ids []uint16
	for got := 0; got < segs; {
		for i := range frames {
			frames[i] = link.Frame{Buf: make([]byte, 64+1600), Off: 64}
		}
		n, err := d.ReadFrames(frames)
		if err != nil {
			t.Fatalf("after %d segments: %v", got, err)
		}
		for _, f := range frames[:n] {
			b := f.Bytes()
			if ethernet.Header(b).Type() != ethernet.TypeIPv4 || b[ethernet.HeaderLen+9] != 17 {
				continue // IPv6 or ARP chatter
			}
			ip := b[ethernet.HeaderLen:]
			if len(ip) != 28+1400 || int(binary.BigEndian.Uint16(ip[2:])) != len(ip) ||
				binary.BigEndian.Uint16(ip[24:]) != 1408 || ip[28] != byte(got) || ip[len(ip)-1] != byte(got) {
				t.Fatalf("segment %d: %d bytes, lengths %d/%d, payload byte %d",
					got, len(ip), binary.BigEndian.Uint16(ip[2:]), binary.BigEndian.Uint16(ip[24:]), ip[28])
			}
			if f.Flags&link.FlagChecksumValid == 0 {
				t.Errorf("segment %d not marked checksum-valid", got)
			}
			ids = append(ids, binary.BigEndian.Uint16(ip[4:]))
			got++
		}
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] != ids[i-1]+1 {
			t.Fatalf("IP IDs %v not consecutive", ids)
		}
	}
	if st := d.Stats(); st.RxSuperFrames != 1 || st.RxBadHeaders != 0 {
		t.Errorf("stats %+v, want one super-frame", st)
	}
}
