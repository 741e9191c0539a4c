package tap_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/tapnet/tapnet/link"
	"github.com/tapnet/tapnet/tap"
)

func TestCaptureWritesPcap(t *testing.T) {
	a, b := tap.Pipe(tap.PipeOptions{})
	var file bytes.Buffer
	w := bufio.NewWriter(&file)
	c, err := tap.Capture(a, w)
	if err != nil {
		t.Fatal(err)
	}
	rc, rb := newRx(8), newRx(8)
	rc.attach(c)
	rb.attach(b)
	start := time.Now().Truncate(time.Microsecond)

	var want [][]byte
	for i := range uint32(3) { // sent through the capture
		f := frame(b.MAC(), a.MAC(), i, 60+int(i))
		want = append(want, bytes.Clone(f))
		if err := write(c, f); err != nil {
			t.Fatal(err)
		}
		rb.next(t)
	}
	f := frame(a.MAC(), b.MAC(), 7, 100) // received
	want = append(want, bytes.Clone(f))
	write(b, f)
	rc.next(t)
	if err := c.Close(); err != nil { // flushes w
		t.Fatal(err)
	}
	if s := c.CaptureStats(); s.Records != 4 || s.Missed != 0 || s.Err != nil {
		t.Errorf("capture stats %+v", s)
	}
	if s := c.Stats(); s.TxFrames != 3 || s.RxFrames != 1 {
		t.Errorf("link stats through the wrapper %+v", s)
	}

	raw := file.Bytes()
	hdr := []byte{0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0}
	if !bytes.HasPrefix(raw, hdr) {
		t.Fatalf("file header % x, want % x", raw[:min(24, len(raw))], hdr)
	}
	p, err := tap.ReadPcap(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if p.VersionMajor != 2 || p.VersionMinor != 4 || p.SnapLen != 65535 || p.LinkType != tap.LinkTypeEthernet || p.Nanosecond {
		t.Errorf("header %+v", p)
	}
	if len(p.Records) != len(want) {
		t.Fatalf("%d records, want %d", len(p.Records), len(want))
	}
	prev := start
	for i, r := range p.Records {
		if !bytes.Equal(r.Data, want[i]) || r.OrigLen != len(want[i]) {
			t.Errorf("record %d = %x (orig %d), want %x", i, r.Data, r.OrigLen, want[i])
		}
		if r.Time.Before(prev) || r.Time.After(time.Now()) {
			t.Errorf("record %d time %v out of order (previous %v)", i, r.Time, prev)
		}
		prev = r.Time
	}
}

// failingWriter accepts n bytes, then fails.
type failingWriter struct{ n int }

var errDiskFull = errors.New("disk full")

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		return 0, errDiskFull
	}
	w.n -= len(p)
	return len(p), nil
}

func TestCaptureWriteErrorKeepsLink(t *testing.T) {
	a, b := tap.Pipe(tap.PipeOptions{})
	defer a.Close()
	if _, err := tap.Capture(a, &failingWriter{n: 10}); !errors.Is(err, errDiskFull) {
		t.Errorf("header write error not reported: %v", err)
	}
	// Room for the header and one 64-byte frame with its record header.
	c, err := tap.Capture(a, &failingWriter{n: 24 + 16 + 64})
	if err != nil {
		t.Fatal(err)
	}
	r := newRx(8)
	r.attach(b)
	for i := range uint32(4) {
		if err := write(c, frame(b.MAC(), a.MAC(), i, 64)); err != nil {
			t.Fatalf("link failed with its capture: %v", err)
		}
		r.next(t)
	}
	s := c.CaptureStats()
	if s.Records != 1 || s.Missed != 3 || !errors.Is(s.Err, errDiskFull) {
		t.Errorf("capture stats %+v", s)
	}
}

func TestReadPcapBigEndianNano(t *testing.T) {
	var buf bytes.Buffer
	be := binary.BigEndian
	h := make([]byte, 24)
	be.PutUint32(h, tap.PcapMagicNano)
	be.PutUint16(h[4:], 2)
	be.PutUint16(h[6:], 4)
	be.PutUint32(h[16:], 96)
	be.PutUint32(h[20:], 1)
	buf.Write(h)
	rec := make([]byte, 16)
	be.PutUint32(rec, 1700000000)
	be.PutUint32(rec[4:], 123456789)
	be.PutUint32(rec[8:], 3)
	be.PutUint32(rec[12:], 1500)
	buf.Write(rec)
	buf.Write([]byte{1, 2, 3})
	p, err := tap.ReadPcap(&buf)
	if err != nil {
		t.Fatal(err)
	}
	r := p.Records[0]
	if !p.Nanosecond || p.SnapLen != 96 || len(p.Records) != 1 || r.OrigLen != 1500 ||
		!r.Time.Equal(time.Unix(1700000000, 123456789)) || !bytes.Equal(r.Data, []byte{1, 2, 3}) {
		t.Errorf("parsed %+v", p)
	}
}

func TestReadPcapErrors(t *testing.T) {
	good := pcapHeader()
	for name, in := range map[string][]byte{
		"empty":       nil,
		"bad magic":   make([]byte, 24),
		"cut record":  append(bytes.Clone(good), 1, 2, 3),
		"cut data":    append(bytes.Clone(good), record(10, 10)[:20]...),
		"incl > orig": append(bytes.Clone(good), record(10, 5)...),
		"huge record": append(bytes.Clone(good), record(1<<30, 1<<30)...),
	} {
		if _, err := tap.ReadPcap(bytes.NewReader(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// pcapHeader returns what Capture writes first.
func pcapHeader() []byte {
	a, _ := tap.Pipe(tap.PipeOptions{})
	defer a.Close()
	var b bytes.Buffer
	if _, err := tap.Capture(a, &b); err != nil {
		panic(err)
	}
	return b.Bytes()
}

func record(incl, orig uint32) []byte {
	r := make([]byte, 16, 16+int(min(incl, 64)))
	binary.LittleEndian.PutUint32(r[8:], incl)
	binary.LittleEndian.PutUint32(r[12:], orig)
	return append(r, make([]byte, min(incl, 64))...)
}

func FuzzReadPcap(f *testing.F) {
	f.Add(pcapHeader())
	f.Add(append(pcapHeader(), record(4, 4)[:20]...))
	f.Add(append(pcapHeader(), record(70, 80)...))
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := tap.ReadPcap(bytes.NewReader(in))
		if err != nil {
			return
		}
		for _, r := range p.Records {
			if len(r.Data) > r.OrigLen {
				t.Fatalf("record longer (%d) than its original (%d)", len(r.Data), r.OrigLen)
			}
		}
	})
}

// plainDevice hides every optional interface of the device it holds.
type plainDevice struct{ link.Device }

// twoQueues is a two-queue device made of two pipe ends.
type twoQueues struct {
	*tap.PipeEnd
	second *tap.PipeEnd
}

func (d twoQueues) Info() link.Info {
	info := d.PipeEnd.Info()
	info.Queues = 2
	return info
}

func (d twoQueues) Queue(i int) link.Device {
	if i == 1 {
		return d.second
	}
	return d
}

func TestCaptureForwardsOnlyWhatTheDeviceHas(t *testing.T) {
	a, b := tap.Pipe(tap.PipeOptions{})
	defer a.Close()
	c, err := tap.Capture(a, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(link.TryWriter); !ok {
		t.Error("capture of a pipe end is not a TryWriter")
	}
	if _, ok := c.(link.Queuer); ok {
		t.Error("capture of a one-queue device is a Queuer")
	}
	p, _ := tap.Capture(plainDevice{a}, io.Discard)
	if _, ok := p.(link.TryWriter); ok {
		t.Error("capture of a device without TryWriteFrames is a TryWriter")
	}
	if s := p.Stats(); s != (tap.Stats{}) {
		t.Errorf("stats of a device without them: %+v", s)
	}

	// Every queue of a multi-queue device records to the same stream.
	x, y := tap.Pipe(tap.PipeOptions{})
	defer x.Close()
	var file bytes.Buffer
	q, err := tap.Capture(twoQueues{a, x}, &file)
	if err != nil {
		t.Fatal(err)
	}
	qr, ok := q.(link.Queuer)
	if !ok || q.Info().Queues != 2 {
		t.Fatalf("capture of a two-queue device: Queuer %v, Info %+v", ok, q.Info())
	}
	if qr.Queue(0) != q {
		t.Error("Queue(0) is not the capture itself")
	}
	rb, ry := newRx(4), newRx(4)
	rb.attach(b)
	ry.attach(y)
	if err := write(q, frame(b.MAC(), a.MAC(), 1, 64)); err != nil {
		t.Fatal(err)
	}
	if err := write(qr.Queue(1), frame(y.MAC(), x.MAC(), 2, 64)); err != nil {
		t.Fatal(err)
	}
	if seqOf(rb.next(t)) != 1 || seqOf(ry.next(t)) != 2 {
		t.Error("frames went to the wrong queue")
	}
	if s := q.CaptureStats(); s.Records != 2 {
		t.Errorf("capture stats %+v, want both queues' frames", s)
	}
}
