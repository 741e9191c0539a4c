package tap_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

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
	c.Attach(rc.deliver)
	b.Attach(rb.deliver)
	start := time.Now().Truncate(time.Microsecond)

	var want [][]byte
	for i := range uint32(3) { // sent through the capture
		f := frame(b.LinkAddress(), c.LinkAddress(), i, 60+int(i))
		want = append(want, bytes.Clone(f.Bytes()))
		if err := c.WritePacket(f); err != nil {
			t.Fatal(err)
		}
		rb.next(t).Release()
	}
	f := frame(c.LinkAddress(), b.LinkAddress(), 7, 100) // received
	want = append(want, bytes.Clone(f.Bytes()))
	b.WritePacket(f)
	rc.next(t).Release()
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
	b.Attach(r.deliver)
	for i := range uint32(4) {
		if err := c.WritePacket(frame(b.LinkAddress(), a.LinkAddress(), i, 64)); err != nil {
			t.Fatalf("link failed with its capture: %v", err)
		}
		r.next(t).Release()
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
