package tap

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapnet/tapnet/link"
)

// TestLyingHeadersCounted feeds a device's read path, through a socket
// pair standing in for the TAP's descriptor, frames whose virtio-net
// header lies, one too short for a header, then a valid super-frame:
// each bad one is dropped and counted in RxBadHeaders, and the valid one
// still arrives as its three segments. Frames are read both in place
// (headroom for the header) and through the spill buffer.
func TestLyingHeadersCounted(t *testing.T) {
	for _, headroom := range []int{64, 0} {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		d := &Device{name: "pair", mtu: 1500, layer: link.LayerEthernet, off: offloads{vnet: true}}
		if err := d.addQueue(fds[0]); err != nil {
			t.Fatal(err)
		}
		send := func(h vnetHdr, f []byte) {
			b := make([]byte, vnetHdrLen+len(f))
			h.encode(b)
			copy(b[vnetHdrLen:], f)
			if _, err := unix.Write(fds[1], b); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range lyingHeaders {
			h, f := superFrame(make([]byte, 3000), 1400)
			send(h, tc.edit(&h, f))
		}
		if _, err := unix.Write(fds[1], make([]byte, vnetHdrLen-1)); err != nil {
			t.Fatal(err)
		}
		send(superFrame(make([]byte, 3000), 1400))

		timer := time.AfterFunc(10*time.Second, func() { d.Close() })
		frames := make([]link.Frame, 8)
		got := 0
		for got < 3 {
			for i := range frames {
				frames[i] = link.Frame{Buf: make([]byte, headroom+1600), Off: headroom}
			}
			n, err := d.ReadFrames(frames)
			if err != nil {
				t.Fatalf("headroom %d: after %d segments: %v", headroom, got, err)
			}
			got += n
		}
		timer.Stop()
		st := d.Stats()
		if want := uint64(len(lyingHeaders) + 1); st.RxBadHeaders != want || st.RxFrames != 3 || st.RxSuperFrames != 1 {
			t.Errorf("headroom %d: %d bad headers (want %d), %d frames, %d super-frames",
				headroom, st.RxBadHeaders, want, st.RxFrames, st.RxSuperFrames)
		}
		d.Close()
		unix.Close(fds[1])
	}
}
