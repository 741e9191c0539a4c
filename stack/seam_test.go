package stack_test

// Tests of the stack's side of the link seam: batched reads into pooled
// buffers, frame checks, queues, and which write method each path uses.

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/udpsock"
	"github.com/tapnet/tapnet/link"
	"github.com/tapnet/tapnet/stack"
)

// seamDev is a link.Device that hands the stack prepared batches and
// records how the stack reads and writes.
type seamDev struct {
	info    link.Info
	batches chan [][]byte // each ReadFrames returns one batch
	done    chan struct{}
	once    sync.Once

	mu        sync.Mutex
	readSizes []int // len(frames) of each ReadFrames
	writes    int   // frames written with WriteFrames
	tryWrites int   // frames written with TryWriteFrames
	written   [][]byte
	countOnly bool // count written frames without keeping copies
}

// seamBogus in a batch makes the device report a frame reaching past its
// buffer.
var seamBogus = []byte("bogus")

func newSeamDev(batch int) *seamDev {
	return &seamDev{
		info:    link.Info{MTU: 1500, Layer: link.LayerEthernet, MAC: relOurMAC, BatchSize: batch},
		batches: make(chan [][]byte), done: make(chan struct{}),
	}
}

func (d *seamDev) Info() link.Info { return d.info }

func (d *seamDev) ReadFrames(frames []link.Frame) (int, error) {
	d.mu.Lock()
	d.readSizes = append(d.readSizes, len(frames))
	d.mu.Unlock()
	select {
	case b := <-d.batches:
		for i, f := range b {
			if &f[0] == &seamBogus[0] {
				frames[i].Len = len(frames[i].Buf) + 1
				continue
			}
			frames[i].Len = copy(frames[i].Buf[frames[i].Off:], f)
		}
		return len(b), nil
	case <-d.done:
		return 0, net.ErrClosed
	}
}

func (d *seamDev) record(frames []link.Frame, try bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range frames {
		if !d.countOnly {
			d.written = append(d.written, append([]byte(nil), frames[i].Bytes()...))
		}
		if try {
			d.tryWrites++
		} else {
			d.writes++
		}
	}
}

func (d *seamDev) WriteFrames(frames []link.Frame) (int, error) {
	d.record(frames, false)
	return len(frames), nil
}

func (d *seamDev) Close() error {
	d.once.Do(func() { close(d.done) })
	return nil
}

// counts returns the frames written with each method.
// udpFramesTo counts the IPv4 UDP frames written to port.
func (d *seamDev) udpFramesTo(port uint16) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, f := range d.written {
		if len(f) >= 14+20+8 && f[12] == 0x08 && f[13] == 0x00 && f[14+9] == 17 {
			ihl := int(f[14]&0x0f) * 4
			if len(f) >= 14+ihl+4 && uint16(f[14+ihl+2])<<8|uint16(f[14+ihl+3]) == port {
				n++
			}
		}
	}
	return n
}

func (d *seamDev) counts() (writes, tryWrites int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.writes, d.tryWrites
}

// seamTryDev is a seamDev with a non-blocking writer.
type seamTryDev struct{ *seamDev }

func (d seamTryDev) TryWriteFrames(frames []link.Frame) int {
	d.record(frames, true)
	return len(frames)
}

// seamQueues is a two-queue device: queue 0 is itself, queue 1 another
// seamDev.
type seamQueues struct {
	*seamDev
	second *seamDev
}

func (d seamQueues) Info() link.Info {
	info := d.seamDev.Info()
	info.Queues = 2
	return info
}

func (d seamQueues) Queue(i int) link.Device {
	if i == 1 {
		return d.second
	}
	return d
}

func (d seamQueues) Close() error {
	d.second.Close()
	return d.seamDev.Close()
}

// seamStack is a stack at relOurIP/24 on dev, with the peer already
// resolved so that datagrams to it go straight out.
func seamStack(t *testing.T, dev link.Device, feed *seamDev) (*stack.Stack, *stack.NIC) {
	t.Helper()
	s := stack.New(stack.Options{})
	t.Cleanup(func() { s.Close() })
	nic, err := s.AddNIC(dev, stack.NICOptions{Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}})
	if err != nil {
		t.Fatal(err)
	}
	feed.batches <- [][]byte{relARP(1, relPeerMAC, relPeerIP, ethernet.MAC{}, relOurIP, ethernet.Broadcast)}
	seamWait(t, "peer learned", func() bool { _, _, ok := nic.ARP().Lookup(relPeerIP); return ok })
	return s, nic
}

// seamWait polls cond, within a generous bound, for work the receive
// goroutine does after ReadFrames returned.
func seamWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
	}
}

func TestNICReadsBatches(t *testing.T) {
	for _, c := range []struct{ batch, want int }{{0, 1}, {1, 1}, {8, 8}, {1000, 64}} {
		dev := newSeamDev(c.batch)
		s, _ := seamStack(t, seamTryDev{dev}, dev)
		dev.mu.Lock()
		got := dev.readSizes[0]
		dev.mu.Unlock()
		if got != c.want {
			t.Errorf("BatchSize %d: ReadFrames offered %d frames, want %d", c.batch, got, c.want)
		}
		s.Close()
	}

	dev := newSeamDev(8)
	s, _ := seamStack(t, seamTryDev{dev}, dev)
	ep := udpsock.New(s)
	defer ep.Close()
	if err := ep.Bind(netip.AddrPortFrom(netip.IPv4Unspecified(), 7)); err != nil {
		t.Fatal(err)
	}
	var batch [][]byte
	for _, m := range []string{"one", "two", "three"} {
		batch = append(batch, relUDPFrame(relPeerIP, relOurIP, 5000, 7, []byte(m)))
	}
	dev.batches <- batch
	var got []string
	seamWait(t, "three datagrams", func() bool {
		for _, d := range relRead(ep) {
			got = append(got, string(d.data))
		}
		return len(got) >= 3
	})
	if strings.Join(got, ",") != "one,two,three" {
		t.Errorf("read %q from one batch, want one,two,three in order", got)
	}
}

func TestNICDropsBadFrames(t *testing.T) {
	dev := newSeamDev(8)
	s, _ := seamStack(t, seamTryDev{dev}, dev)
	ep := udpsock.New(s)
	defer ep.Close()
	if err := ep.Bind(netip.AddrPortFrom(netip.IPv4Unspecified(), 7)); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	before := st.Link.RxFrames.Load()
	giant := relUDPFrame(relPeerIP, relOurIP, 5000, 7, make([]byte, 1600)) // past the 1500 MTU
	dev.batches <- [][]byte{giant, seamBogus, relUDPFrame(relPeerIP, relOurIP, 5000, 7, []byte("fine"))}
	var got []relDatagram
	seamWait(t, "the good datagram", func() bool { got = append(got, relRead(ep)...); return len(got) > 0 })
	if len(got) != 1 || string(got[0].data) != "fine" {
		t.Errorf("read %v, want only the datagram that fits", got)
	}
	if st.Link.TooLong.Load() != 1 || st.Link.BadFrames.Load() != 1 || st.Link.RxFrames.Load()-before != 1 {
		t.Errorf("TooLong %d BadFrames %d RxFrames +%d; want 1, 1, +1",
			st.Link.TooLong.Load(), st.Link.BadFrames.Load(), st.Link.RxFrames.Load()-before)
	}
}

func TestAddNICChecksLinkInfo(t *testing.T) {
	s := stack.New(stack.Options{})
	defer s.Close()
	for _, c := range []struct {
		info link.Info
		want string
	}{
		{link.Info{MTU: 1500, Layer: 7}, "unknown link layer"},
		{link.Info{MTU: 67, MAC: relOurMAC}, "below the IPv4 minimum"},
		{link.Info{MTU: 1 << 20, MAC: relOurMAC}, "above the largest frame"},
	} {
		dev := newSeamDev(1)
		dev.info = c.info
		if _, err := s.AddNIC(dev, stack.NICOptions{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("AddNIC(%+v) = %v, want an error saying %q", c.info, err, c.want)
		}
	}
	if n := len(s.NICs()); n != 1 {
		t.Errorf("%d NICs after refused links, want only lo", n)
	}
}

// TestReplyPathUsesTryWriter: what the receive goroutine sends (an ARP
// reply) must not wait on the link, so it goes through TryWriteFrames; a
// socket's send goes through WriteFrames.
func TestReplyPathUsesTryWriter(t *testing.T) {
	dev := newSeamDev(4)
	s, _ := seamStack(t, seamTryDev{dev}, dev) // answers the peer's ARP request
	// The reply is written after the peer is learned: wait for it.
	seamWait(t, "ARP reply", func() bool { _, tw := dev.counts(); return tw >= 2 })
	if w, tw := dev.counts(); tw < 2 || w != 0 {
		// The gratuitous ARP at AddNIC and the ARP reply.
		t.Errorf("before any socket: %d WriteFrames, %d TryWriteFrames; want 0 and 2", w, tw)
	}
	ep := udpsock.New(s)
	defer ep.Close()
	if _, err := ep.Write([]byte("x"), netip.AddrPortFrom(relPeerIP, 9), nil); err != nil {
		t.Fatal(err)
	}
	if w, _ := dev.counts(); w != 1 {
		t.Errorf("a socket's datagram took %d WriteFrames, want 1", w)
	}

	// Without a TryWriter the stack falls back to WriteFrames.
	plain := newSeamDev(4)
	seamStack(t, plain, plain)
	seamWait(t, "ARP reply without a TryWriter", func() bool { w, _ := plain.counts(); return w >= 2 })
	if w, _ := plain.counts(); w < 2 {
		t.Errorf("device without TryWriteFrames: %d frames written, want the ARP frames", w)
	}
}

func TestNICReadsEveryQueue(t *testing.T) {
	q0, q1 := newSeamDev(4), newSeamDev(4)
	s, _ := seamStack(t, seamQueues{q0, q1}, q0)
	ep := udpsock.New(s)
	defer ep.Close()
	if err := ep.Bind(netip.AddrPortFrom(netip.IPv4Unspecified(), 7)); err != nil {
		t.Fatal(err)
	}
	q1.batches <- [][]byte{relUDPFrame(relPeerIP, relOurIP, 5000, 7, []byte("second queue"))}
	var got []relDatagram
	seamWait(t, "datagram from queue 1", func() bool { got = append(got, relRead(ep)...); return len(got) > 0 })
	if string(got[0].data) != "second queue" {
		t.Errorf("read %q", got[0].data)
	}
	// One flow keeps one queue, so its datagrams stay in order. Only the
	// flow's frames count: a report or ARP frame may go out meanwhile.
	b0, b1 := q0.udpFramesTo(9), q1.udpFramesTo(9)
	for range 10 {
		if _, err := ep.Write([]byte("x"), netip.AddrPortFrom(relPeerIP, 9), nil); err != nil {
			t.Fatal(err)
		}
	}
	w0, w1 := q0.udpFramesTo(9)-b0, q1.udpFramesTo(9)-b1
	if w0+w1 != 10 || (w0 != 0 && w1 != 0) {
		t.Errorf("10 datagrams of one flow: %d on queue 0, %d on queue 1", w0, w1)
	}
}

func TestNICErrAfterLinkFailure(t *testing.T) {
	e := newRelEnv(t, stack.Options{})
	if e.nic.Err() != nil {
		t.Fatalf("Err = %v on a running link", e.nic.Err())
	}
	vanished := errors.New("device vanished")
	e.link.fail(vanished)
	<-e.s.Done()
	if !errors.Is(e.nic.Err(), vanished) {
		t.Errorf("Err = %v, want the link's error", e.nic.Err())
	}

	// A NIC the stack closed itself reports nothing.
	e2 := newRelEnv(t, stack.Options{})
	e2.s.Close()
	if e2.nic.Err() != nil {
		t.Errorf("Err = %v after the stack closed the link", e2.nic.Err())
	}
}

// TestSeamZeroAllocs: a datagram sent to a link device, and one read from
// it up to a socket, allocate nothing once the pools are warm.
func TestSeamZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	dev := newSeamDev(8)
	s, _ := seamStack(t, seamTryDev{dev}, dev)
	ep := udpsock.New(s)
	defer ep.Close()
	if err := ep.Bind(netip.AddrPortFrom(netip.IPv4Unspecified(), 7)); err != nil {
		t.Fatal(err)
	}
	dev.mu.Lock()
	dev.countOnly = true // copies would be the test's allocations, not the stack's
	dev.mu.Unlock()
	to := netip.AddrPortFrom(relPeerIP, 9)
	msg := make([]byte, 64)
	send := testing.AllocsPerRun(200, func() {
		if _, err := ep.Write(msg, to, nil); err != nil {
			t.Fatal(err)
		}
	})
	batch := [][]byte{relUDPFrame(relPeerIP, relOurIP, 5000, 7, msg)}
	buf := make([]byte, 2048)
	recv := testing.AllocsPerRun(200, func() {
		dev.batches <- batch
		if _, err := ep.Read(buf, false, nil); err != nil {
			t.Fatal(err)
		}
	})
	if send != 0 || recv != 0 {
		t.Errorf("allocs per datagram: send %v, receive %v; want 0", send, recv)
	}
}
