//go:build !linux

package tap

import (
	"io"
	"net"
	"testing"

	"github.com/tapnet/tapnet/link"
)

// pipeRWC is one end of a net.Pipe as a driver descriptor.
type pipeRWC struct{ net.Conn }

// The portable device (macOS, Windows, FreeBSD, and here js and wasip1,
// where the suite runs) moves frames one at a time, reports an offload it
// was asked for and cannot run, and has one queue.
func TestPortableDevice(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	d, err := newDevice("tun9", pipeRWC{a}, Options{Mode: ModeTUN, MTU: 1500, Offload: true, Queues: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Queue(0) != link.Device(d) || d.Queue(1) != nil {
		t.Errorf("Queue(0) = %v, Queue(1) = %v; want the device and nil", d.Queue(0), d.Queue(1))
	}
	if st := d.Stats(); st.Offloads.Fallback == "" {
		t.Error("an offload asked for and not in use is not explained in Stats().Offloads.Fallback")
	}

	go b.Write([]byte{0x45, 1, 2, 3})
	frames := []link.Frame{{Buf: make([]byte, 2048), Len: 2048}}
	if n, err := d.ReadFrames(frames); n != 1 || err != nil || frames[0].Len != 4 {
		t.Fatalf("ReadFrames: %d, %v, len %d", n, err, frames[0].Len)
	}
	got := make(chan []byte, 1)
	go func() {
		buf := make([]byte, 64)
		n, _ := io.ReadAtLeast(b, buf, 3)
		got <- buf[:n]
	}()
	out := []link.Frame{{Buf: []byte{0x45, 9, 9}, Len: 3}}
	if n, err := d.WriteFrames(out); n != 1 || err != nil {
		t.Fatalf("WriteFrames: %d, %v", n, err)
	}
	if w := <-got; len(w) != 3 || w[1] != 9 {
		t.Errorf("the driver got %v", w)
	}
	if q := d.QueueStats(0); q.RxFrames != 1 || q.TxFrames != 1 {
		t.Errorf("QueueStats(0) = %+v, want 1 frame each way", q)
	}
	if q := d.QueueStats(1); q != (Stats{}) {
		t.Errorf("QueueStats(1) = %+v, want zero", q)
	}
}
