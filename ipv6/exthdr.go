package ipv6

import (
	"encoding/binary"
	"errors"
)

// Limits of the extension header walk. A chain longer than a few headers
// is an attack, not a packet: bound the work per packet.
const (
	// MaxExtHeaders bounds the number of extension headers before the
	// upper layer.
	MaxExtHeaders = 8
	// MaxHeaderChainLen bounds where the header chain may end: every
	// extension header lies within the first MinMTU bytes, the most a
	// first fragment is sure to carry (RFC 8200 5, RFC 7112).
	MaxHeaderChainLen = MinMTU
	// MaxOptions bounds the non-padding options of one hop-by-hop or
	// destination options header (Linux's max_hbh_opts_number and
	// max_dst_opts_number).
	MaxOptions = 8
	// maxPadding is the longest run of padding an options header needs:
	// padding aligns to 8 bytes (RFC 4942 2.1.9.5).
	maxPadding = 7

	fragmentHeaderLen = 8
)

// Option types the walker knows (RFC 8200 4.2, RFC 2711).
const (
	OptPad1        = 0
	OptPadN        = 1
	OptRouterAlert = 5
)

// Router Alert values (RFC 2711).
const (
	RouterAlertMLD = 0
)

// ICMPv6 Parameter Problem codes (RFC 4443 3.4, RFC 7112).
const (
	CodeErroneousHeader        = 0
	CodeUnrecognizedNextHeader = 1
	CodeUnrecognizedOption     = 2
	CodeIncompleteChain        = 3
)

// Errors returned by WalkExtHeaders, one per reason a packet is dropped.
// Whether the drop is answered with a Parameter Problem is in the
// ExtHeaders the walk returns.
var (
	ErrExtTruncated       = errors.New("ipv6: extension header runs past the packet")
	ErrTooManyExtHeaders  = errors.New("ipv6: more than 8 extension headers")
	ErrHeaderChainTooLong = errors.New("ipv6: extension headers past the first 1280 bytes")
	ErrHopByHopNotFirst   = errors.New("ipv6: hop-by-hop options header not first")
	ErrBadOptions         = errors.New("ipv6: malformed options (length, padding or count)")
	ErrUnknownOption      = errors.New("ipv6: unrecognized option whose type says discard")
	ErrRoutingMulticast   = errors.New("ipv6: routing header in a multicast packet")
	ErrRoutingHeader      = errors.New("ipv6: routing header with segments left (hosts do not forward)")
	ErrFragmentLength     = errors.New("ipv6: non-last fragment not a multiple of 8 bytes")
	ErrFragmentOffset     = errors.New("ipv6: fragment ends past 65535 bytes")
	ErrIncompleteChain    = errors.New("ipv6: first fragment without the whole header chain")
)

// Fragment describes a fragment header (RFC 8200 4.5).
type Fragment struct {
	Offset       int // offset of the fragment's data in bytes
	More         bool
	ID           uint32
	HeaderOffset int // where the fragment header starts in the packet
}

// Atomic reports whether the header describes a whole packet (offset 0,
// no more fragments): an atomic fragment, processed as a packet of its own
// and never reassembled with others (RFC 6946).
func (f Fragment) Atomic() bool { return f.Offset == 0 && !f.More }

// ExtHeaders is the result of walking a packet's extension headers.
type ExtHeaders struct {
	// Protocol is the next header value after the walked chain: the upper
	// layer, ProtocolNoNextHeader, or, when Fragmented, the first header
	// of the fragmentable part.
	Protocol uint8
	// Offset is where that header (or a fragment's data) starts.
	Offset int
	// ProtocolPointer is the offset of the byte that holds Protocol: the
	// pointer of the Parameter Problem (code 1) the stack sends when it
	// knows no such protocol.
	ProtocolPointer int
	// Count is the number of extension headers walked.
	Count int

	// Fragmented is set when the packet is a fragment to reassemble; the
	// walk stops at its fragment header. Atomic fragments are walked
	// through and set AtomicFragment instead. Fragment holds the header
	// of either.
	Fragmented     bool
	AtomicFragment bool
	Fragment       Fragment

	// RouterAlert is set when the hop-by-hop header carries a Router Alert
	// option (RFC 2711), whose value is RouterAlertValue.
	RouterAlert      bool
	RouterAlertValue uint16

	// ParamProblem is set with an error the stack answers with an ICMPv6
	// Parameter Problem of ProblemCode pointing at ProblemPointer (an
	// offset from the start of the IPv6 header).
	ParamProblem   bool
	ProblemCode    uint8
	ProblemPointer uint32
}

// WalkExtHeaders walks the extension headers of pkt, a packet starting at
// its IPv6 header that Parse accepted (bytes past the payload length are
// ignored), as a host receiving it does (RFC 8200 4): hop-by-hop options
// only first, options processed by their action bits, routing headers
// ignored when no segments are left and refused otherwise (RFC 5095),
// fragment headers checked and, but for atomic fragments, ending the walk
// so that the stack reassembles and walks the result again. The walk is
// bounded by MaxExtHeaders, MaxHeaderChainLen and MaxOptions and never
// allocates.
func WalkExtHeaders(pkt []byte) (ExtHeaders, error) {
	var x ExtHeaders
	if len(pkt) < HeaderLen {
		return x, ErrTooShort
	}
	h := Header(pkt)
	if end := HeaderLen + h.PayloadLen(); end < len(pkt) {
		pkt = pkt[:end]
	}
	x.Protocol, x.Offset, x.ProtocolPointer = h.NextHeader(), HeaderLen, 6
	for {
		switch x.Protocol {
		case ProtocolHopByHop, ProtocolDestOptions, ProtocolRouting, ProtocolFragment:
		default:
			return x, nil
		}
		if x.Protocol == ProtocolHopByHop && x.Offset != HeaderLen {
			return x, x.problem(ErrHopByHopNotFirst, CodeUnrecognizedNextHeader, x.ProtocolPointer)
		}
		if x.Count++; x.Count > MaxExtHeaders {
			return x, ErrTooManyExtHeaders
		}
		n, err := extHeaderLen(pkt, x.Protocol, x.Offset)
		if err != nil {
			return x, err
		}
		if err := x.process(pkt, x.Offset, n); err != nil || x.Fragmented {
			return x, err
		}
		x.ProtocolPointer = x.Offset
		x.Protocol = pkt[x.Offset]
		x.Offset += n
	}
}

// extHeaderLen returns the length of the extension header of type typ at
// off, checked against the packet and the chain limit.
func extHeaderLen(pkt []byte, typ uint8, off int) (int, error) {
	if len(pkt)-off < 8 {
		return 0, ErrExtTruncated
	}
	n := fragmentHeaderLen
	if typ != ProtocolFragment {
		n = (int(pkt[off+1]) + 1) * 8
	}
	if n > len(pkt)-off {
		return 0, ErrExtTruncated
	}
	if off+n > MaxHeaderChainLen {
		return 0, ErrHeaderChainTooLong
	}
	return n, nil
}

// process acts on the extension header of n bytes at off.
func (x *ExtHeaders) process(pkt []byte, off, n int) error {
	switch x.Protocol {
	case ProtocolRouting:
		return x.routing(pkt, off)
	case ProtocolFragment:
		return x.fragment(pkt, off)
	}
	return x.options(pkt, off, n)
}

// problem records the Parameter Problem the stack must send for err.
func (x *ExtHeaders) problem(err error, code uint8, pointer int) error {
	x.ParamProblem, x.ProblemCode, x.ProblemPointer = true, code, uint32(pointer)
	return err
}

// options walks the TLV options of a hop-by-hop or destination options
// header. Malformed options drop the packet silently, as Linux does; an
// unknown option acts as the two high bits of its type say (RFC 8200 4.2).
func (x *ExtHeaders) options(pkt []byte, off, n int) error {
	hopByHop := x.Protocol == ProtocolHopByHop
	padding, count := 0, 0
	for i := off + 2; i < off+n; {
		typ := pkt[i]
		if typ == OptPad1 {
			if padding++; padding > maxPadding {
				return ErrBadOptions
			}
			i++
			continue
		}
		if i+2 > off+n || i+2+int(pkt[i+1]) > off+n {
			return ErrBadOptions
		}
		data := pkt[i+2 : i+2+int(pkt[i+1])]
		if typ == OptPadN {
			if padding += 2 + len(data); padding > maxPadding || !allZero(data) {
				return ErrBadOptions
			}
			i += 2 + len(data)
			continue
		}
		padding = 0
		if count++; count > MaxOptions {
			return ErrBadOptions
		}
		switch {
		case typ == OptRouterAlert && hopByHop:
			if len(data) != 2 {
				return ErrBadOptions
			}
			x.RouterAlert, x.RouterAlertValue = true, binary.BigEndian.Uint16(data)
		default:
			if err := x.unknownOption(pkt, typ, i); err != nil {
				return err
			}
		}
		i += 2 + len(data)
	}
	return nil
}

// unknownOption applies the action bits of an unrecognized option at off.
func (x *ExtHeaders) unknownOption(pkt []byte, typ uint8, off int) error {
	switch typ >> 6 {
	case 0: // skip
		return nil
	case 1: // discard
		return ErrUnknownOption
	case 2: // discard and report, even to a multicast destination
		return x.problem(ErrUnknownOption, CodeUnrecognizedOption, off)
	}
	// Discard, and report unless the destination is multicast.
	if pkt[24] == 0xff {
		return ErrUnknownOption
	}
	return x.problem(ErrUnknownOption, CodeUnrecognizedOption, off)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// routing checks a routing header. A host is never an intermediate node:
// with no segments left any type is ignored (RFC 8200 4.4); with segments
// left, type 0 is refused as RFC 5095 asks and every other type is one this
// host does not recognize, which RFC 8200 answers the same way.
func (x *ExtHeaders) routing(pkt []byte, off int) error {
	if pkt[24] == 0xff {
		return ErrRoutingMulticast // as Linux: source routes never to groups
	}
	if pkt[off+3] == 0 {
		return nil
	}
	return x.problem(ErrRoutingHeader, CodeErroneousHeader, off+2)
}

// fragment checks a fragment header (RFC 8200 4.5) and records it. An
// atomic fragment is walked through; a real fragment ends the walk, but a
// first fragment must carry the whole header chain (RFC 7112).
func (x *ExtHeaders) fragment(pkt []byte, off int) error {
	fo := binary.BigEndian.Uint16(pkt[off+2 : off+4])
	f := Fragment{
		Offset:       int(fo &^ 7),
		More:         fo&1 != 0,
		ID:           binary.BigEndian.Uint32(pkt[off+4 : off+8]),
		HeaderOffset: off,
	}
	x.Fragment = f
	if f.Atomic() {
		x.AtomicFragment = true
		return nil
	}
	dataLen := len(pkt) - off - fragmentHeaderLen
	if f.More && dataLen%8 != 0 {
		return x.problem(ErrFragmentLength, CodeErroneousHeader, 4)
	}
	if f.Offset+dataLen > MaxPayloadLen {
		return x.problem(ErrFragmentOffset, CodeErroneousHeader, off+2)
	}
	if f.Offset == 0 && !chainComplete(pkt, pkt[off], off+fragmentHeaderLen, x.Count) {
		return x.problem(ErrIncompleteChain, CodeIncompleteChain, 0)
	}
	x.Fragmented = true
	x.Protocol = pkt[off]
	x.ProtocolPointer = off
	x.Offset = off + fragmentHeaderLen
	return nil
}

// chainComplete reports whether the headers from off on, the first of
// type typ, reach an upper-layer header whose fixed part is all within
// pkt, counting count headers walked so far against MaxExtHeaders.
func chainComplete(pkt []byte, typ uint8, off, count int) bool {
	for ; count < MaxExtHeaders; count++ {
		switch typ {
		case ProtocolDestOptions, ProtocolRouting, ProtocolHopByHop, ProtocolFragment:
		default:
			return off+upperHeaderLen(typ) <= len(pkt)
		}
		n, err := extHeaderLen(pkt, typ, off)
		if err != nil {
			return false
		}
		typ = pkt[off]
		off += n
	}
	return false
}

// upperHeaderLen is how much of an upper-layer header a first fragment
// must hold, as Linux checks it (ipv6frag_thdr_truncated).
func upperHeaderLen(protocol uint8) int {
	switch protocol {
	case ProtocolTCP:
		return 20
	case ProtocolUDP:
		return 8
	case ProtocolICMPv6:
		return 8
	case ProtocolNoNextHeader:
		return 0
	}
	return 1
}

// RouterAlertHopByHopLen is the length of the hop-by-hop header MLD is
// sent with.
const RouterAlertHopByHopLen = 8

// PutRouterAlertHopByHop writes the 8-byte hop-by-hop options header MLD
// messages carry (RFC 3810 5): a Router Alert option with value, padded
// with a 2-byte PadN, followed by next.
func PutRouterAlertHopByHop(b []byte, next uint8, value uint16) int {
	_ = b[RouterAlertHopByHopLen-1]
	b[0], b[1] = next, 0
	b[2], b[3] = OptRouterAlert, 2
	binary.BigEndian.PutUint16(b[4:6], value)
	b[6], b[7] = OptPadN, 0
	return RouterAlertHopByHopLen
}
