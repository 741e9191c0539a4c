package ipv6

import (
	"encoding/binary"
	"testing"
)

// optionsHeader builds a hop-by-hop or destination options header holding
// opts, padded to a multiple of 8 bytes with Pad1 or PadN.
func optionsHeader(next uint8, opts ...[]byte) []byte {
	b := []byte{next, 0}
	for _, o := range opts {
		b = append(b, o...)
	}
	switch pad := (8 - len(b)%8) % 8; pad {
	case 0:
	case 1:
		b = append(b, OptPad1)
	default:
		b = append(b, OptPadN, byte(pad-2))
		b = append(b, make([]byte, pad-2)...)
	}
	b[1] = byte(len(b)/8 - 1)
	return b
}

// routingHeader builds a routing header of the given type carrying one
// address.
func routingHeader(next, typ, segmentsLeft uint8) []byte {
	b := make([]byte, 24)
	b[0], b[1], b[2], b[3] = next, 2, typ, segmentsLeft
	a := tHost2.As16()
	copy(b[8:], a[:])
	return b
}

// fragmentHeader builds a fragment header.
func fragmentHeader(next uint8, offset int, more bool, id uint32) []byte {
	b := make([]byte, 8)
	b[0] = next
	fo := uint16(offset)
	if more {
		fo |= 1
	}
	binary.BigEndian.PutUint16(b[2:], fo)
	binary.BigEndian.PutUint32(b[4:], id)
	return b
}

func udpHeader(n int) []byte {
	b := make([]byte, 8+n)
	binary.BigEndian.PutUint16(b[4:], uint16(8+n))
	return b
}

var routerAlertMLD = []byte{OptRouterAlert, 2, 0, 0}

func TestWalkExtHeaders(t *testing.T) {
	const (
		hop, dst, rt, frag, udp, none = ProtocolHopByHop, ProtocolDestOptions, ProtocolRouting, ProtocolFragment, ProtocolUDP, ProtocolNoNextHeader
	)
	type want struct {
		err         error
		proto       uint8
		offset, ptr int
		count       int
		problem     bool
		code        uint8
		pointer     uint32
	}
	unknown := func(typ uint8) []byte { return []byte{typ, 2, 0xab, 0xcd} }
	for _, c := range []struct {
		name string
		pkt  []byte
		want want
	}{
		{"plain udp", packet(tHost1, tHost2, udp, udpHeader(4)), want{proto: udp, offset: 40, ptr: 6}},
		{"no next header", packet(tHost1, tHost2, none), want{proto: none, offset: 40, ptr: 6}},
		{"unknown upper layer", packet(tHost1, tHost2, 253, []byte{1, 2}), want{proto: 253, offset: 40, ptr: 6}},
		{"hop-by-hop router alert", packet(tLL1, AllMLDv2Routers, hop, optionsHeader(ProtocolICMPv6, routerAlertMLD), make([]byte, 28)),
			want{proto: ProtocolICMPv6, offset: 48, ptr: 40, count: 1}},
		{"hop, dest, routing sl 0, dest, udp", packet(tHost1, tHost2, hop, optionsHeader(dst), optionsHeader(rt, unknown(0x1e)),
			routingHeader(dst, 0, 0), optionsHeader(udp), udpHeader(0)),
			want{proto: udp, offset: 40 + 8 + 8 + 24 + 8, ptr: 40 + 8 + 8 + 24, count: 4}},
		{"atomic fragment", packet(tHost1, tHost2, frag, fragmentHeader(udp, 0, false, 7), udpHeader(3)),
			want{proto: udp, offset: 48, ptr: 40, count: 1}},
		{"first fragment", packet(tHost1, tHost2, dst, optionsHeader(frag), fragmentHeader(udp, 0, true, 7), udpHeader(8)),
			want{proto: udp, offset: 56, ptr: 48, count: 2}},
		{"later fragment", packet(tHost1, tHost2, frag, fragmentHeader(udp, 1232, false, 7), make([]byte, 3)),
			want{proto: udp, offset: 48, ptr: 40, count: 1}},
		{"first fragment with more headers after it", packet(tHost1, tHost2, frag, fragmentHeader(dst, 0, true, 9), optionsHeader(udp), udpHeader(0)),
			want{proto: dst, offset: 48, ptr: 40, count: 1}},

		// Structure and limits: dropped silently.
		{"truncated header", packet(tHost1, tHost2, dst, []byte{udp, 0, 1, 2}), want{err: ErrExtTruncated, count: 1, proto: dst, offset: 40, ptr: 6}},
		{"length past packet", packet(tHost1, tHost2, dst, []byte{udp, 1, 1, 4, 0, 0, 0, 0}), want{err: ErrExtTruncated, count: 1, proto: dst, offset: 40, ptr: 6}},
		{"9 headers", packet(tHost1, tHost2, dst, optionsHeader(dst), optionsHeader(dst), optionsHeader(dst), optionsHeader(dst),
			optionsHeader(dst), optionsHeader(dst), optionsHeader(dst), optionsHeader(dst), optionsHeader(udp), udpHeader(0)),
			want{err: ErrTooManyExtHeaders, count: 9, proto: dst, offset: 40 + 64, ptr: 40 + 56}},
		{"chain past 1280", packet(tHost1, tHost2, dst, optionsHeader(dst, []byte{0x1e, 250}, make([]byte, 250)),
			optionsHeader(dst, []byte{0x1e, 250}, make([]byte, 250)), optionsHeader(dst, []byte{0x1e, 250}, make([]byte, 250)),
			optionsHeader(dst, []byte{0x1e, 250}, make([]byte, 250)), optionsHeader(dst, []byte{0x1e, 250}, make([]byte, 250)), optionsHeader(udp)),
			want{err: ErrHeaderChainTooLong, count: 5, proto: dst, offset: 40 + 4*256, ptr: 40 + 3*256}},
		{"option past header", packet(tHost1, tHost2, dst, []byte{udp, 0, 0x1e, 5, 0, 0, 0, 0}), want{err: ErrBadOptions, count: 1, proto: dst, offset: 40, ptr: 6}},
		{"option length byte past header", packet(tHost1, tHost2, dst, []byte{udp, 0, 0, 0, 0, 0, 0, 0x1e}), want{err: ErrBadOptions, count: 1, proto: dst, offset: 40, ptr: 6}},
		{"8 bytes of padding", packet(tHost1, tHost2, dst, []byte{udp, 1, 1, 4, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}), want{err: ErrBadOptions, count: 1, proto: dst, offset: 40, ptr: 6}},
		{"non-zero PadN", packet(tHost1, tHost2, dst, []byte{udp, 0, 1, 4, 0, 0, 9, 0}), want{err: ErrBadOptions, count: 1, proto: dst, offset: 40, ptr: 6}},
		{"9 options", packet(tHost1, tHost2, dst, optionsHeader(udp, unknown(0x1e), unknown(0x1e), unknown(0x1e), unknown(0x1e),
			unknown(0x1e), unknown(0x1e), unknown(0x1e), unknown(0x1e), unknown(0x1e))), want{err: ErrBadOptions, count: 1, proto: dst, offset: 40, ptr: 6}},
		{"router alert of length 3", packet(tHost1, tHost2, hop, optionsHeader(udp, []byte{OptRouterAlert, 3, 0, 0, 0})), want{err: ErrBadOptions, count: 1, proto: hop, offset: 40, ptr: 6}},
		{"routing header to a group", packet(tHost1, tGroup, rt, routingHeader(udp, 0, 0), udpHeader(0)), want{err: ErrRoutingMulticast, count: 1, proto: rt, offset: 40, ptr: 6}},

		// Parameter problems.
		{"hop-by-hop second", packet(tHost1, tHost2, dst, optionsHeader(hop), optionsHeader(udp), udpHeader(0)),
			want{err: ErrHopByHopNotFirst, count: 1, proto: hop, offset: 48, ptr: 40, problem: true, code: CodeUnrecognizedNextHeader, pointer: 40}},
		{"unknown option 00 skipped", packet(tHost1, tHost2, dst, optionsHeader(udp, unknown(0x1e)), udpHeader(0)),
			want{proto: udp, offset: 48, ptr: 40, count: 1}},
		{"unknown option 01", packet(tHost1, tHost2, dst, optionsHeader(udp, routerAlertMLD, unknown(0x5e))),
			want{err: ErrUnknownOption, count: 1, proto: dst, offset: 40, ptr: 6}},
		{"unknown option 10", packet(tHost1, tHost2, dst, optionsHeader(udp, routerAlertMLD, unknown(0x9e))),
			want{err: ErrUnknownOption, count: 1, proto: dst, offset: 40, ptr: 6, problem: true, code: CodeUnrecognizedOption, pointer: 46}},
		{"unknown option 10 to a group", packet(tHost1, tGroup, dst, optionsHeader(udp, unknown(0x9e))),
			want{err: ErrUnknownOption, count: 1, proto: dst, offset: 40, ptr: 6, problem: true, code: CodeUnrecognizedOption, pointer: 42}},
		{"unknown option 11", packet(tHost1, tHost2, hop, optionsHeader(udp, []byte{0}, unknown(0xde))),
			want{err: ErrUnknownOption, count: 1, proto: hop, offset: 40, ptr: 6, problem: true, code: CodeUnrecognizedOption, pointer: 43}},
		{"unknown option 11 to a group", packet(tHost1, tGroup, dst, optionsHeader(udp, unknown(0xde))),
			want{err: ErrUnknownOption, count: 1, proto: dst, offset: 40, ptr: 6}},
		{"jumbo payload option", packet(tHost1, tHost2, hop, optionsHeader(udp, []byte{0xc2, 4, 0, 1, 0, 0})),
			want{err: ErrUnknownOption, count: 1, proto: hop, offset: 40, ptr: 6, problem: true, code: CodeUnrecognizedOption, pointer: 42}},
		{"type 0 routing header", packet(tHost1, tHost2, dst, optionsHeader(rt), routingHeader(udp, 0, 1), udpHeader(0)),
			want{err: ErrRoutingHeader, count: 2, proto: rt, offset: 48, ptr: 40, problem: true, code: CodeErroneousHeader, pointer: 50}},
		{"segment routing header", packet(tHost1, tHost2, rt, routingHeader(udp, 4, 1), udpHeader(0)),
			want{err: ErrRoutingHeader, count: 1, proto: rt, offset: 40, ptr: 6, problem: true, code: CodeErroneousHeader, pointer: 42}},
		{"fragment not a multiple of 8", packet(tHost1, tHost2, frag, fragmentHeader(udp, 0, true, 1), udpHeader(5)),
			want{err: ErrFragmentLength, count: 1, proto: frag, offset: 40, ptr: 6, problem: true, code: CodeErroneousHeader, pointer: 4}},
		{"fragment past 65535", packet(tHost1, tHost2, frag, fragmentHeader(udp, 65528, false, 1), make([]byte, 8)),
			want{err: ErrFragmentOffset, count: 1, proto: frag, offset: 40, ptr: 6, problem: true, code: CodeErroneousHeader, pointer: 42}},
		{"first fragment without the udp header", packet(tHost1, tHost2, frag, fragmentHeader(udp, 0, true, 1), make([]byte, 0)),
			want{err: ErrIncompleteChain, count: 1, proto: frag, offset: 40, ptr: 6, problem: true, code: CodeIncompleteChain}},
		{"first fragment cut in an options header", packet(tHost1, tHost2, frag, fragmentHeader(dst, 0, true, 1), []byte{udp, 1, 0, 0, 0, 0, 0, 0}),
			want{err: ErrIncompleteChain, count: 1, proto: frag, offset: 40, ptr: 6, problem: true, code: CodeIncompleteChain}},
	} {
		x, err := WalkExtHeaders(c.pkt)
		w := c.want
		if err != w.err || x.Protocol != w.proto || x.Offset != w.offset || x.ProtocolPointer != w.ptr || x.Count != w.count ||
			x.ParamProblem != w.problem || x.ProblemCode != w.code || x.ProblemPointer != w.pointer {
			t.Errorf("%s: %v %+v, want %+v", c.name, err, x, w)
		}
	}
}

func TestWalkExtHeadersFragmentAndRouterAlert(t *testing.T) {
	x, err := WalkExtHeaders(packet(tHost1, tHost2, ProtocolFragment, fragmentHeader(ProtocolUDP, 1232, true, 0xdeadbeef), make([]byte, 16)))
	if err != nil || !x.Fragmented || x.AtomicFragment || x.Fragment != (Fragment{Offset: 1232, More: true, ID: 0xdeadbeef, HeaderOffset: 40}) {
		t.Fatalf("fragment: %v %+v", err, x)
	}
	x, err = WalkExtHeaders(packet(tHost1, tHost2, ProtocolFragment, fragmentHeader(ProtocolUDP, 0, false, 5), udpHeader(0)))
	if err != nil || x.Fragmented || !x.AtomicFragment || !x.Fragment.Atomic() || x.Fragment.ID != 5 {
		t.Fatalf("atomic fragment: %v %+v", err, x)
	}
	b := make([]byte, RouterAlertHopByHopLen)
	PutRouterAlertHopByHop(b, ProtocolICMPv6, RouterAlertMLD)
	x, err = WalkExtHeaders(packet(tLL1, AllMLDv2Routers, ProtocolHopByHop, b, make([]byte, 8)))
	if err != nil || !x.RouterAlert || x.RouterAlertValue != RouterAlertMLD || x.Protocol != ProtocolICMPv6 || x.Offset != 48 {
		t.Fatalf("router alert: %v %+v", err, x)
	}
	// Router Alert means nothing in destination options (type 5 skips).
	x, err = WalkExtHeaders(packet(tLL1, AllMLDv2Routers, ProtocolDestOptions, optionsHeader(ProtocolICMPv6, []byte{OptRouterAlert, 3, 0, 0, 0})))
	if err != nil || x.RouterAlert {
		t.Fatalf("router alert in destination options: %v %+v", err, x)
	}
	// Bytes past the payload length are link padding, not headers.
	p := packet(tHost1, tHost2, ProtocolUDP, udpHeader(0))
	p = append(p, ProtocolHopByHop, 200, 0, 0)
	if x, err := WalkExtHeaders(p); err != nil || x.Offset != 40 {
		t.Fatalf("padded: %v %+v", err, x)
	}
	if _, err := WalkExtHeaders(p[:39]); err != ErrTooShort {
		t.Fatalf("39 bytes: %v", err)
	}
}

// The walk of a UDP packet, with or without extension headers, allocates
// nothing.
func TestWalkExtHeadersAllocs(t *testing.T) {
	for _, p := range [][]byte{benchPlainUDP, benchExtUDP} {
		if n := testing.AllocsPerRun(100, func() {
			if _, err := Parse(p); err != nil {
				t.Fatal(err)
			}
			if _, err := WalkExtHeaders(p); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Fatalf("%v allocations per packet", n)
		}
	}
}

var (
	benchPlainUDP = packet(tHost1, tHost2, ProtocolUDP, udpHeader(64))
	benchExtUDP   = packet(tHost1, tHost2, ProtocolHopByHop, optionsHeader(ProtocolDestOptions, routerAlertMLD),
		optionsHeader(ProtocolFragment, []byte{0x1e, 2, 0, 0}), fragmentHeader(ProtocolUDP, 0, false, 1), udpHeader(64))
)

// BenchmarkWalkUDP measures Parse and WalkExtHeaders on a UDP packet, bare
// and behind hop-by-hop, destination options and an atomic fragment header.
func BenchmarkWalkUDP(b *testing.B) {
	for _, bc := range []struct {
		name string
		pkt  []byte
	}{{"plain", benchPlainUDP}, {"ext", benchExtUDP}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				h, err := Parse(bc.pkt)
				if err != nil {
					b.Fatal(err)
				}
				x, err := WalkExtHeaders(bc.pkt[:HeaderLen+h.PayloadLen()])
				if err != nil || x.Protocol != ProtocolUDP {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzExtHeaders checks that WalkExtHeaders never panics, that what it
// reports stays inside the packet and its limits, and that the walk
// depends on nothing but the header and payload: rebuilding the header
// from its fields and adding link padding gives the same result.
func FuzzExtHeaders(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := WalkExtHeaders(b)
		if len(b) < HeaderLen {
			if err != ErrTooShort {
				t.Fatalf("%d bytes: %v", len(b), err)
			}
			return
		}
		h := Header(b)
		end := min(len(b), HeaderLen+h.PayloadLen())
		if x.Count > MaxExtHeaders+1 || x.Offset > end || x.ProtocolPointer >= x.Offset ||
			x.ParamProblem && int(x.ProblemPointer) >= end || x.ParamProblem && err == nil {
			t.Fatalf("walk of %x: %v %+v", b, err, x)
		}
		if err == nil && x.Offset > MaxHeaderChainLen {
			t.Fatalf("chain ends at %d", x.Offset)
		}
		if x.Fragmented && (x.Fragment.Atomic() || x.Fragment.HeaderOffset+8 != x.Offset) {
			t.Fatalf("fragment %+v", x)
		}
		if _, perr := Parse(b); perr != nil {
			return
		}
		out := make([]byte, HeaderLen, end+9)
		Put(out, Fields{TrafficClass: h.TrafficClass(), FlowLabel: h.FlowLabel(), PayloadLen: h.PayloadLen(),
			NextHeader: h.NextHeader(), HopLimit: h.HopLimit(), Src: h.Src(), Dst: h.Dst()})
		out = append(out, b[HeaderLen:end]...)
		out = append(out, ProtocolHopByHop, 0xff, 0, 0, 0, 0, 0, 0, 0)
		if x2, err2 := WalkExtHeaders(out); x2 != x || err2 != err {
			t.Fatalf("rebuilt packet walks to %v %+v, not %v %+v", err2, x2, err, x)
		}
	})
}
