package stack_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tapnet/tapnet/ethernet"
	"github.com/tapnet/tapnet/internal/checksum"
	"github.com/tapnet/tapnet/ipv6"
	"github.com/tapnet/tapnet/link"
	"github.com/tapnet/tapnet/stack"
	"github.com/tapnet/tapnet/tap"
	"github.com/tapnet/tapnet/udp"
)

// segLink is a pipe end offering checksum and UDP segmentation offload,
// doing with what the stack writes what Linux does with a TAP's frames:
// it cuts each super-frame into datagrams, adjusting the partial checksum
// to each segment's length as __udp_gso_segment does, completes partial
// checksums, and passes plain frames on. The peer stack then verifies every
// checksum in software. It records each frame as the stack wrote it.
type segLink struct {
	pipe *tap.PipeEnd
	off  link.Offloads

	mu      sync.Mutex
	written []link.Frame // copies, Off 0, of the UDP frames and fragments
}

func (l *segLink) Info() link.Info {
	i := l.pipe.Info()
	i.Offloads = l.off
	return i
}

func (l *segLink) ReadFrames(frames []link.Frame) (int, error) { return l.pipe.ReadFrames(frames) }
func (l *segLink) Close() error                                { return l.pipe.Close() }

func (l *segLink) WriteFrames(frames []link.Frame) (int, error) {
	for i, f := range frames {
		c := f
		c.Buf, c.Off = slices.Clone(f.Bytes()), 0
		if carriesData(c.Bytes()) {
			l.mu.Lock()
			l.written = append(l.written, c)
			l.mu.Unlock()
		}
		out, err := kernelFinish(c)
		if err != nil {
			return i, err
		}
		for _, b := range out {
			if _, err := l.pipe.WriteFrames([]link.Frame{{Buf: b, Len: len(b)}}); err != nil {
				return i, err
			}
		}
	}
	return len(frames), nil
}

// carriesData reports whether an Ethernet frame holds a UDP datagram or a
// fragment. The NICs' own NDP and MLD messages, sent at times of their
// timers' choosing (an unsolicited report repeated up to a second after a
// join), are left out of what take returns.
func carriesData(p []byte) bool {
	if len(p) < ethernet.HeaderLen+ipv6.HeaderLen || binary.BigEndian.Uint16(p[12:]) != ethernet.TypeIPv6 {
		return true
	}
	next := p[ethernet.HeaderLen+6]
	return next == udp.ProtocolNumber || next == ipv6.ProtocolFragment
}

// dataSent6 is IPv6.Sent less the stack's own NDP and MLD messages. Their
// counters grow a moment before IPv6.Sent does, so a message on its way
// out reads as one too few: callers wait for the count they expect.
func dataSent6(s *stack.Stack) uint64 {
	st := s.Stats()
	control := st.NDP.SolicitsSent.Load() + st.NDP.AdvertsSent.Load() + st.NDP.RouterSolicits.Load() +
		st.MLD.ReportsSent.Load() + st.MLD.DonesSent.Load()
	return st.IPv6.Sent.Load() - control
}

// take returns the data frames written since the last call.
func (l *segLink) take() []link.Frame {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.written
	l.written = nil
	return w
}

var errBadOffload = errors.New("offload request a kernel refuses")

// kernelFinish returns the frames f becomes on the wire: its segments with
// their checksums completed, or f with its checksum completed, or f.
func kernelFinish(f link.Frame) ([][]byte, error) {
	b := f.Bytes()
	if f.Flags&link.FlagChecksumPartial == 0 {
		if f.GSOSize != 0 {
			return nil, errBadOffload
		}
		return [][]byte{b}, nil
	}
	start, at := int(f.CsumStart), int(f.CsumStart)+int(f.CsumOffset)
	if f.CsumOffset != 6 || at+2 > len(b) {
		return nil, errBadOffload
	}
	if f.GSOSize == 0 {
		completeUDPChecksum(b[start:])
		return [][]byte{b}, nil
	}
	hdrEnd, seg := start+udp.HeaderLen, int(f.GSOSize)
	if len(b) <= hdrEnd+seg || b[ethernet.HeaderLen]>>4 != 6 {
		return nil, errBadOffload // one segment, or not IPv6: Linux refuses
	}
	oldLen := binary.BigEndian.Uint16(b[start+4:])
	var out [][]byte
	for off := hdrEnd; off < len(b); off += seg {
		end := min(off+seg, len(b))
		s := append(slices.Clone(b[:hdrEnd]), b[off:end]...)
		ulen := uint16(udp.HeaderLen + end - off)
		binary.BigEndian.PutUint16(s[ethernet.HeaderLen+4:], uint16(len(s)-ethernet.HeaderLen-ipv6.HeaderLen))
		u := s[start:]
		binary.BigEndian.PutUint16(u[4:], ulen)
		// The pseudo-header sum, with the segment's length for the whole's.
		sum := checksum.Fold(uint64(binary.BigEndian.Uint16(u[6:])) + uint64(^oldLen) + uint64(ulen))
		binary.BigEndian.PutUint16(u[6:], sum)
		completeUDPChecksum(u)
		out = append(out, s)
	}
	return out, nil
}

// completeUDPChecksum finishes the partial checksum of datagram u.
func completeUDPChecksum(u []byte) {
	c := ^checksum.Fold(checksum.Sum(u, 0))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(u[6:], c)
}

// newSegPair is newV6Pair with A on a segLink offering off.
func newSegPair(t *testing.T, off link.Offloads) (a, b *v6Host, l *segLink) {
	t.Helper()
	la, lb := tap.Pipe(tap.PipeOptions{})
	l = &segLink{pipe: la, off: off}
	a = newV6Host(t, l, v6A, fastDAD)
	b = newV6Host(t, lb, v6B, fastDAD)
	return a, b, l
}

// gsoOffloads is what a TAP with USO offers.
var gsoOffloads = link.Offloads{TxChecksum: true, MaxGSOSize: ethernet.HeaderLen + 65535}

// sendBatch6 sends ps from a's port 4000 to b's port 7 with WriteUDPBatch.
func sendBatch6(t *testing.T, a, b *v6Host, ps [][]byte) {
	t.Helper()
	r, err := a.s.FindRoute(0, netip.Addr{}, b.addr)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := a.s.WriteUDPBatch(&r, 4000, 7, ps, stack.WriteOptions{}); n != len(ps) || err != nil {
		t.Fatalf("WriteUDPBatch: %d of %d, %v", n, len(ps), err)
	}
}

// expectDatagrams reads len(want) datagrams from ep and checks them in
// order, and that b found no checksum wrong.
func expectDatagrams(t *testing.T, b *v6Host, ep *v6Endpoint, want [][]byte) {
	t.Helper()
	for i, w := range want {
		_, got := recvPacket(t, ep)
		if !bytes.Equal(got, w) {
			t.Fatalf("datagram %d: %d bytes, want %d, or content differs", i, len(got), len(w))
		}
	}
	if n := b.s.Stats().UDP.ChecksumErrors.Load(); n != 0 {
		t.Errorf("receiver counted %d UDP checksum errors", n)
	}
}

// payloads6 returns n payloads of size bytes (the last of last bytes),
// each different.
func payloads6(n, size, last int) [][]byte {
	ps := make([][]byte, n)
	for i := range ps {
		l := size
		if i == n-1 {
			l = last
		}
		ps[i] = make([]byte, l)
		for j := range ps[i] {
			ps[i][j] = byte(i*7 + j)
		}
	}
	return ps
}

// TestIPv6PartialChecksum: on a link that completes checksums, an IPv6
// datagram leaves with the pseudo-header sum at the UDP header behind the
// IPv6 header, and arrives with a correct checksum once completed; on one
// that does not, the stack computes it.
func TestIPv6PartialChecksum(t *testing.T) {
	for _, txsum := range []bool{false, true} {
		a, b, l := newSegPair(t, link.Offloads{TxChecksum: txsum})
		ep := b.bind(t, netip.Addr{}, 7)
		l.take()
		msg := []byte("a datagram with its checksum offloaded")
		if err := a.send(t, 0, netip.AddrPortFrom(b.addr, 7), 4000, msg); err != nil {
			t.Fatal(err)
		}
		expectDatagrams(t, b, ep, [][]byte{msg})
		udpFrames := l.take()
		if len(udpFrames) != 1 {
			t.Fatalf("TxChecksum %v: %d UDP frames written", txsum, len(udpFrames))
		}
		f := udpFrames[0]
		if partial := f.Flags&link.FlagChecksumPartial != 0; partial != txsum || f.GSOSize != 0 {
			t.Fatalf("TxChecksum %v: flags %v, GSOSize %d", txsum, f.Flags, f.GSOSize)
		}
		if txsum && (f.CsumStart != ethernet.HeaderLen+ipv6.HeaderLen || f.CsumOffset != 6) {
			t.Fatalf("checksum at %d+%d, want 54+6", f.CsumStart, f.CsumOffset)
		}
	}
}

// TestIPv6WriteBatchSuperFrame: 48 datagrams to one IPv6 peer leave as one
// UDP super-frame whose fields a kernel cuts into the 48 datagrams, with
// correct checksums.
func TestIPv6WriteBatchSuperFrame(t *testing.T) {
	a, b, l := newSegPair(t, gsoOffloads)
	ep := b.bind(t, netip.Addr{}, 7)
	// Resolve b's address first: a super-frame waits for it like any packet.
	if err := a.send(t, 0, netip.AddrPortFrom(b.addr, 7), 4000, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	recvPacket(t, ep)
	l.take()
	// Two equal reads apart: no control message was on its way out.
	sentBefore := dataSent6(a.s)
	for i := 0; i < 100; i++ {
		time.Sleep(2 * time.Millisecond)
		again := dataSent6(a.s)
		if again == sentBefore {
			break
		}
		sentBefore = again
	}
	ps := payloads6(48, 1000, 333)
	sendBatch6(t, a, b, ps)
	frames := l.take()
	if len(frames) != 1 {
		t.Fatalf("%d frames written, want one super-frame", len(frames))
	}
	f := frames[0]
	ip := f.Bytes()[ethernet.HeaderLen:]
	total := udp.HeaderLen + 47*1000 + 333
	if f.GSOSize != 1000 || f.Flags&link.FlagChecksumPartial == 0 ||
		f.CsumStart != ethernet.HeaderLen+ipv6.HeaderLen || f.CsumOffset != 6 {
		t.Fatalf("super-frame GSOSize %d flags %v checksum at %d+%d", f.GSOSize, f.Flags, f.CsumStart, f.CsumOffset)
	}
	if pl, ul := int(binary.BigEndian.Uint16(ip[4:])), int(binary.BigEndian.Uint16(ip[44:])); pl != total || ul != total ||
		len(ip) != ipv6.HeaderLen+total || ip[6] != udp.ProtocolNumber || ip[7] != ipv6.DefaultHopLimit {
		t.Fatalf("super-frame: payload length %d, UDP length %d, %d bytes, next header %d, hop limit %d",
			pl, ul, len(ip), ip[6], ip[7])
	}
	expectDatagrams(t, b, ep, ps)
	st := a.s.Stats()
	if got := st.UDP.Sent.Load(); got != 1+48 {
		t.Errorf("UDP.Sent = %d, want 49", got)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		got := dataSent6(a.s) - sentBefore
		if got == 48 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("IPv6.Sent grew by %d besides NDP and MLD, want 48", got)
		}
	}
}

// TestIPv6WriteBatchWithoutGSO: with checksum offload only, a batch to an
// IPv6 peer reaches the link in one call, each datagram with a partial
// checksum.
func TestIPv6WriteBatchWithoutGSO(t *testing.T) {
	a, b, l := newSegPair(t, link.Offloads{TxChecksum: true})
	ep := b.bind(t, netip.Addr{}, 7)
	if err := a.send(t, 0, netip.AddrPortFrom(b.addr, 7), 4000, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	recvPacket(t, ep)
	l.take()
	ps := payloads6(20, 1200, 1)
	sendBatch6(t, a, b, ps)
	frames := l.take()
	if len(frames) != len(ps) {
		t.Fatalf("%d frames written, want %d", len(frames), len(ps))
	}
	for i, f := range frames {
		if f.GSOSize != 0 || f.Flags&link.FlagChecksumPartial == 0 || f.CsumStart != 54 {
			t.Fatalf("frame %d: GSOSize %d flags %v checksum at %d", i, f.GSOSize, f.Flags, f.CsumStart)
		}
	}
	expectDatagrams(t, b, ep, ps)
}

// TestIPv6SuperFrameWithinPathMTU: once a Packet Too Big lowers the path
// MTU, segments that would exceed it are not offloaded (the datagrams are
// fragmented, with full checksums), and those within it still are.
func TestIPv6SuperFrameWithinPathMTU(t *testing.T) {
	a, b, l := newSegPair(t, gsoOffloads)
	ep := b.bind(t, netip.Addr{}, 7)
	quoted := make([]byte, 1232-8)
	ipv6.Put(quoted, ipv6.Fields{PayloadLen: 1360, NextHeader: udp.ProtocolNumber, HopLimit: 64, Src: a.addr, Dst: b.addr})
	if err := stack.SendICMPv6(b.s, 0, a.addr, ipv6.ICMPPacketTooBig, 1300, quoted); err != nil {
		t.Fatal(err)
	}
	a.nextICMP(t, ipv6.ICMPPacketTooBig)
	// The hook sees the message before the stack learns from it.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if mtu, ok := a.s.PathMTU(b.addr); ok && mtu == 1300 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("path MTU %d %v, want 1300", mtu, ok)
		}
	}
	l.take()
	tooBig := payloads6(4, 1300-ipv6.HeaderLen-udp.HeaderLen+1, 100)
	sendBatch6(t, a, b, tooBig)
	expectDatagrams(t, b, ep, tooBig)
	for i, f := range l.take() {
		fragment := f.Bytes()[ethernet.HeaderLen+6] == ipv6.ProtocolFragment
		if f.GSOSize != 0 || fragment && f.Flags != 0 || len(f.Bytes()) > ethernet.HeaderLen+1300 {
			t.Fatalf("frame %d: GSOSize %d, flags %v, %d bytes, fragment %v", i, f.GSOSize, f.Flags, len(f.Bytes()), fragment)
		}
	}
	if a.s.Stats().IPv6.FragmentsOut.Load() == 0 {
		t.Fatal("datagrams above the path MTU not fragmented")
	}
	fit := payloads6(4, 1300-ipv6.HeaderLen-udp.HeaderLen, 100)
	sendBatch6(t, a, b, fit)
	expectDatagrams(t, b, ep, fit)
	if frames := l.take(); len(frames) != 1 || frames[0].GSOSize != uint16(len(fit[0])) {
		t.Fatalf("%d frames for segments that fit the path MTU, want one super-frame", len(frames))
	}
}

// TestSuperFrameSkipsEmptyPayload: an empty datagram cannot be a segment
// (a super-frame of one segment and an empty one would lose it, and a
// kernel refuses a super-frame of one segment): it leaves on its own.
func TestSuperFrameSkipsEmptyPayload(t *testing.T) {
	a, b, l := newSegPair(t, gsoOffloads)
	ep := b.bind(t, netip.Addr{}, 7)
	if err := a.send(t, 0, netip.AddrPortFrom(b.addr, 7), 4000, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	recvPacket(t, ep)
	l.take()
	ps := [][]byte{bytes.Repeat([]byte{1}, 1000), {}, bytes.Repeat([]byte{2}, 1000), bytes.Repeat([]byte{3}, 1000)}
	sendBatch6(t, a, b, ps)
	expectDatagrams(t, b, ep, ps)
	for i, f := range l.take() {
		if f.GSOSize != 0 && len(f.Bytes()) <= int(f.CsumStart)+udp.HeaderLen+int(f.GSOSize) {
			t.Fatalf("frame %d: a super-frame of one segment", i)
		}
	}
}

// discardLink is an IP link offering offloads that drops what it is given,
// for benchmarks of the send path alone.
type discardLink struct {
	off  link.Offloads
	done chan struct{}
	once sync.Once
}

func (l *discardLink) Info() link.Info {
	return link.Info{MTU: 1500, Layer: link.LayerIP, BatchSize: 64, Offloads: l.off}
}
func (l *discardLink) ReadFrames([]link.Frame) (int, error) { <-l.done; return 0, net.ErrClosed }
func (l *discardLink) WriteFrames(f []link.Frame) (int, error) {
	return len(f), nil
}
func (l *discardLink) Close() error { l.once.Do(func() { close(l.done) }); return nil }

// benchSend6 measures send along an IPv6 route on a discardLink offering
// off.
func benchSend6(b *testing.B, off link.Offloads, send func(s *stack.Stack, r *stack.Route) error) {
	s := stack.New(stack.Options{})
	b.Cleanup(func() { s.Close() })
	l := &discardLink{off: off, done: make(chan struct{})}
	if _, err := s.AddNIC(l, stack.NICOptions{Addresses: []netip.Prefix{v6A}, IPv6: stack.IPv6Options{DADTransmits: -1}}); err != nil {
		b.Fatal(err)
	}
	r, err := s.FindRoute(0, netip.Addr{}, v6B.Addr())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := send(s, &r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteUDPBatch6 sends 64 datagrams of 1400 bytes to one IPv6
// peer per op: as one super-frame with USO, as one link batch of partial
// checksums with checksum offload, or computing every checksum.
func BenchmarkWriteUDPBatch6(b *testing.B) {
	ps := payloads6(64, 1400, 1400)
	for _, c := range []struct {
		name string
		off  link.Offloads
	}{{"gso", gsoOffloads}, {"csum", link.Offloads{TxChecksum: true}}, {"plain", link.Offloads{}}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(64 * 1400)
			benchSend6(b, c.off, func(s *stack.Stack, r *stack.Route) error {
				_, err := s.WriteUDPBatch(r, 4000, 7, ps, stack.WriteOptions{})
				return err
			})
		})
	}
}

// BenchmarkWriteUDP6 sends one 1400-byte IPv6 datagram per op, with and
// without checksum offload.
func BenchmarkWriteUDP6(b *testing.B) {
	p := make([]byte, 1400)
	for _, c := range []struct {
		name string
		off  link.Offloads
	}{{"csum", link.Offloads{TxChecksum: true}}, {"plain", link.Offloads{}}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(1400)
			benchSend6(b, c.off, func(s *stack.Stack, r *stack.Route) error {
				return s.WriteUDP(r, 4000, 7, p, stack.WriteOptions{})
			})
		})
	}
}

// TestSuperFrameSkipsEmptyPayloadIPv4 is TestSuperFrameSkipsEmptyPayload
// over IPv4, checked on the frames written: every datagram in one of them,
// and no super-frame of one segment.
func TestSuperFrameSkipsEmptyPayloadIPv4(t *testing.T) {
	s, l := newOffEnv(t, gsoOffloads)
	ps := [][]byte{bytes.Repeat([]byte{1}, 1000), {}, bytes.Repeat([]byte{2}, 1000), bytes.Repeat([]byte{3}, 1000)}
	r, err := s.FindRoute(0, netip.Addr{}, relPeerIP)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.WriteUDPBatch(&r, 4000, 9, ps, stack.WriteOptions{}); n != len(ps) || err != nil {
		t.Fatalf("WriteUDPBatch: %d, %v", n, err)
	}
	frames, _ := l.take()
	datagrams := 0
	for i, f := range frames {
		if f.GSOSize == 0 {
			datagrams++
			continue
		}
		payload := len(f.Bytes()) - int(f.CsumStart) - udp.HeaderLen
		if payload <= int(f.GSOSize) {
			t.Fatalf("frame %d: a super-frame of one segment (%d bytes, GSOSize %d)", i, payload, f.GSOSize)
		}
		datagrams += (payload + int(f.GSOSize) - 1) / int(f.GSOSize)
	}
	if datagrams != len(ps) {
		t.Fatalf("%d datagrams in the frames written, want %d", datagrams, len(ps))
	}
}
