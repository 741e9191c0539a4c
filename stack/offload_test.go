package stack_test

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/checksum"
	"github.com/tapnet/tapnet/internal/udpsock"
	"github.com/tapnet/tapnet/link"
	"github.com/tapnet/tapnet/stack"
)

// offLink is a relLink that offers offloads: it marks received frames
// checksum-valid when told to, and records written frames with their
// offload fields and the size of each WriteFrames batch.
type offLink struct {
	*relLink
	off   link.Offloads
	valid atomic.Bool

	mu      sync.Mutex
	frames  []link.Frame // copies, Off 0
	batches []int
}

func (l *offLink) Info() link.Info {
	i := l.relLink.Info()
	i.Offloads = l.off
	return i
}

func (l *offLink) ReadFrames(frames []link.Frame) (int, error) {
	n, err := l.relLink.ReadFrames(frames)
	if l.valid.Load() {
		for i := range n {
			frames[i].Flags |= link.FlagChecksumValid
		}
	}
	return n, err
}

func (l *offLink) WriteFrames(frames []link.Frame) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.batches = append(l.batches, len(frames))
	for _, f := range frames {
		c := f
		c.Buf, c.Off = slices.Clone(f.Bytes()), 0
		l.frames = append(l.frames, c)
	}
	return len(frames), nil
}

func (l *offLink) take() ([]link.Frame, []int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, b := l.frames, l.batches
	l.frames, l.batches = nil, nil
	return f, b
}

// newOffEnv is newRelEnv on an offLink offering off.
func newOffEnv(t *testing.T, off link.Offloads) (*stack.Stack, *offLink) {
	s := stack.New(stack.Options{})
	t.Cleanup(func() { s.Close() })
	l := &offLink{relLink: newRelLink(relOurMAC, 1500), off: off}
	// IPv4 only: an IPv6 NIC's own DAD and MLD frames would mix with the
	// frames these tests count.
	nic, err := s.AddNIC(l, stack.NICOptions{
		Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")},
		IPv6:      stack.IPv6Options{Disabled: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	l.inject(relARP(1, relPeerMAC, relPeerIP, ethernet.MAC{}, relOurIP, ethernet.Broadcast))
	if _, _, ok := nic.ARP().Lookup(relPeerIP); !ok {
		t.Fatal("peer not learned")
	}
	l.take()
	return s, l
}

func TestChecksumValidFrameSkipsVerification(t *testing.T) {
	s, l := newOffEnv(t, link.Offloads{})
	ep := udpsock.New(s)
	defer ep.Close()
	if err := ep.Bind(netip.AddrPortFrom(relOurIP, 7)); err != nil {
		t.Fatal(err)
	}
	bad := relUDPFrame(relPeerIP, relOurIP, 5000, 7, []byte("hello"))
	bad[len(bad)-1] ^= 0xff // the payload no longer matches the checksum
	l.inject(bad)
	if got := len(relRead(ep)); got != 0 || s.Stats().UDP.ChecksumErrors.Load() != 1 {
		t.Fatalf("bad checksum: %d delivered, %d counted", got, s.Stats().UDP.ChecksumErrors.Load())
	}
	l.valid.Store(true)
	l.inject(bad)
	if got := relRead(ep); len(got) != 1 || s.Stats().UDP.ChecksumErrors.Load() != 1 {
		t.Fatalf("checksum-valid frame: %d delivered, %d counted", len(got), s.Stats().UDP.ChecksumErrors.Load())
	}
}

// completeChecksum does what a link does for FlagChecksumPartial.
func completeChecksum(f link.Frame) []byte {
	b := f.Bytes()
	at := int(f.CsumStart) + int(f.CsumOffset)
	binary.BigEndian.PutUint16(b[at:], ^checksum.Fold(checksum.Sum(b[f.CsumStart:], 0)))
	return b
}

func udpChecksumOK(t *testing.T, frame []byte) bool {
	t.Helper()
	ip := frame[ethernet.HeaderLen:]
	u := ip[20:]
	sum := checksum.PseudoHeader([4]byte(ip[12:16]), [4]byte(ip[16:20]), 17, len(u))
	return checksum.Fold(checksum.Sum(u, sum)) == 0xffff
}

func TestPartialChecksumOnlyWhenLinkCompletesIt(t *testing.T) {
	for _, txsum := range []bool{false, true} {
		s, l := newOffEnv(t, link.Offloads{TxChecksum: txsum})
		ep := udpsock.New(s)
		if _, err := ep.Write([]byte("some payload"), netip.AddrPortFrom(relPeerIP, 9), nil); err != nil {
			t.Fatal(err)
		}
		ep.Close()
		frames, _ := l.take()
		if len(frames) != 1 {
			t.Fatalf("%d frames written", len(frames))
		}
		f := frames[0]
		partial := f.Flags&link.FlagChecksumPartial != 0
		if partial != txsum {
			t.Fatalf("TxChecksum %v: frame flags %v", txsum, f.Flags)
		}
		b := f.Bytes()
		if partial {
			if f.CsumStart != 34 || f.CsumOffset != 6 {
				t.Fatalf("checksum at %d+%d", f.CsumStart, f.CsumOffset)
			}
			b = completeChecksum(f)
		}
		if !udpChecksumOK(t, b) {
			t.Errorf("TxChecksum %v: UDP checksum wrong once completed", txsum)
		}
	}
}

func TestWriteBatchReachesLinkTogether(t *testing.T) {
	payloads := make([][]byte, 11)
	for i := range payloads {
		payloads[i] = make([]byte, 1000)
		for j := range payloads[i] {
			payloads[i][j] = byte(i + j)
		}
	}
	payloads[10] = payloads[10][:500]
	to := netip.AddrPortFrom(relPeerIP, 9)

	t.Run("gso", func(t *testing.T) {
		s, l := newOffEnv(t, link.Offloads{TxChecksum: true, MaxGSOSize: 65535 + 14})
		ep := udpsock.New(s)
		defer ep.Close()
		if n, err := ep.WriteBatch(payloads, to, nil); n != 11 || err != nil {
			t.Fatalf("WriteBatch: %d, %v", n, err)
		}
		frames, batches := l.take()
		if len(frames) != 1 || len(batches) != 1 {
			t.Fatalf("%d frames in %d batches, want one super-frame", len(frames), len(batches))
		}
		f := frames[0]
		ip := f.Bytes()[ethernet.HeaderLen:]
		if f.GSOSize != 1000 || f.Flags&link.FlagChecksumPartial == 0 || f.CsumStart != 34 ||
			binary.BigEndian.Uint16(ip[2:]) != 20+8+10500 || len(ip) != 20+8+10500 {
			t.Fatalf("super-frame GSOSize %d flags %v csum %d, IP length %d", f.GSOSize, f.Flags, f.CsumStart, len(ip))
		}
		if !udpChecksumOK(t, completeChecksum(f)) {
			t.Error("super-frame's partial checksum wrong")
		}
		if got := s.Stats().UDP.Sent.Load(); got != 11 {
			t.Errorf("UDP.Sent = %d, want 11", got)
		}
	})
	t.Run("batch", func(t *testing.T) {
		s, l := newOffEnv(t, link.Offloads{})
		ep := udpsock.New(s)
		defer ep.Close()
		if n, err := ep.WriteBatch(payloads, to, nil); n != 11 || err != nil {
			t.Fatalf("WriteBatch: %d, %v", n, err)
		}
		frames, batches := l.take()
		if len(frames) != 11 || !slices.Equal(batches, []int{11}) {
			t.Fatalf("%d frames in batches %v, want 11 in one", len(frames), batches)
		}
		for i, f := range frames {
			ip := f.Bytes()[ethernet.HeaderLen:]
			if f.Flags != 0 || !udpChecksumOK(t, f.Bytes()) || len(ip) != 28+len(payloads[i]) {
				t.Errorf("frame %d: flags %v, %d bytes", i, f.Flags, len(ip))
			}
		}
	})
}
