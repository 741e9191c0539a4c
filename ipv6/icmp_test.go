package ipv6

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"golang.org/x/net/icmp"
	xipv6 "golang.org/x/net/ipv6"
)

func pseudoHeader(src, dst netip.Addr) []byte {
	return icmp.IPv6PseudoHeader(net.IP(src.AsSlice()), net.IP(dst.AsSlice()))
}

func TestICMPTypesMatchXNet(t *testing.T) {
	for ours, theirs := range map[uint8]xipv6.ICMPType{
		ICMPDestUnreachable: xipv6.ICMPTypeDestinationUnreachable, ICMPPacketTooBig: xipv6.ICMPTypePacketTooBig,
		ICMPTimeExceeded: xipv6.ICMPTypeTimeExceeded, ICMPParamProblem: xipv6.ICMPTypeParameterProblem,
		ICMPEchoRequest: xipv6.ICMPTypeEchoRequest, ICMPEchoReply: xipv6.ICMPTypeEchoReply,
		ICMPMLDQuery: xipv6.ICMPTypeMulticastListenerQuery, ICMPMLDv1Report: xipv6.ICMPTypeMulticastListenerReport,
		ICMPMLDv1Done: xipv6.ICMPTypeMulticastListenerDone, ICMPRouterSolicit: xipv6.ICMPTypeRouterSolicitation,
		ICMPRouterAdvert: xipv6.ICMPTypeRouterAdvertisement, ICMPNeighborSolicit: xipv6.ICMPTypeNeighborSolicitation,
		ICMPNeighborAdvert: xipv6.ICMPTypeNeighborAdvertisement, ICMPRedirect: xipv6.ICMPTypeRedirect,
		ICMPMLDv2Report: xipv6.ICMPTypeVersion2MulticastListenerReport,
	} {
		if ours != uint8(theirs) {
			t.Errorf("type %d is %v in x/net", ours, theirs)
		}
	}
}

// Messages built here parse with x/net/icmp, and x/net/icmp's messages,
// checksummed over its pseudo-header, pass ParseICMP.
func TestICMPAgainstXNet(t *testing.T) {
	invoking := packet(tHost2, tHost1, ProtocolUDP, udpHeader(12))
	for _, c := range []struct {
		name      string
		typ, code uint8
		rest      uint32
		body      []byte
		xnet      icmp.MessageBody
		src, dst  netip.Addr
		isEr      bool
	}{
		{"echo request", ICMPEchoRequest, 0, 0x1234_0007, []byte("hello, odd"), &icmp.Echo{ID: 0x1234, Seq: 7, Data: []byte("hello, odd")}, tHost1, tHost2, false},
		{"echo reply", ICMPEchoReply, 0, 0xffff_ffff, nil, &icmp.Echo{ID: 0xffff, Seq: 0xffff}, tLL1, tLL2, false},
		{"port unreachable", ICMPDestUnreachable, CodePortUnreachable, 0, invoking, &icmp.DstUnreach{Data: invoking}, tHost1, tHost2, true},
		{"no route", ICMPDestUnreachable, CodeNoRoute, 0, invoking, &icmp.DstUnreach{Data: invoking}, tHost1, tHost2, true},
		{"packet too big", ICMPPacketTooBig, 0, 1280, invoking, &icmp.PacketTooBig{MTU: 1280, Data: invoking}, tHost1, tHost2, true},
		{"hop limit exceeded", ICMPTimeExceeded, CodeHopLimitExceeded, 0, invoking, &icmp.TimeExceeded{Data: invoking}, tHost1, tHost2, true},
		{"reassembly timeout", ICMPTimeExceeded, CodeReassemblyTimeout, 0, invoking, &icmp.TimeExceeded{Data: invoking}, tHost1, tHost2, true},
		{"param problem", ICMPParamProblem, CodeUnrecognizedNextHeader, 6, invoking, &icmp.ParamProb{Pointer: 6, Data: invoking}, tHost1, tGroup, true},
	} {
		b := icmpMessage(c.typ, c.code, c.rest, c.body, c.src, c.dst)
		m, err := ParseICMP(b, c.src, c.dst)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if m.Type() != c.typ || m.Code() != c.code || m.RestOfHeader() != c.rest || !bytes.Equal(m.Body(), c.body) || m.IsError() != c.isEr {
			t.Errorf("%s: parsed %x wrong", c.name, b)
		}
		x, err := icmp.ParseMessage(ProtocolICMPv6, b)
		if err != nil {
			t.Fatalf("%s: x/net: %v", c.name, err)
		}
		if x.Type != xipv6.ICMPType(c.typ) || x.Code != int(c.code) || x.Checksum != int(m.Checksum()) {
			t.Errorf("%s: x/net reads %+v", c.name, x)
		}
		want, _ := c.xnet.Marshal(ProtocolICMPv6)
		got, _ := x.Body.Marshal(ProtocolICMPv6)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: x/net body %x, want %x", c.name, got, want)
		}
		xb, err := (&icmp.Message{Type: xipv6.ICMPType(c.typ), Code: int(c.code), Body: c.xnet}).Marshal(pseudoHeader(c.src, c.dst))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(xb, b) {
			t.Errorf("%s: x/net builds %x, we %x", c.name, xb, b)
		}
		if _, err := ParseICMP(xb, c.src, c.dst); err != nil {
			t.Errorf("%s: x/net's message: %v", c.name, err)
		}
	}
}

func TestParseICMPErrors(t *testing.T) {
	echo := icmpMessage(ICMPEchoRequest, 0, 1, []byte("abc"), tHost1, tHost2)
	for _, c := range []struct {
		name     string
		b        []byte
		src, dst netip.Addr
		want     error
	}{
		{"empty", nil, tHost1, tHost2, ErrICMPTooShort},
		{"7 bytes", echo[:7], tHost1, tHost2, ErrICMPTooShort},
		{"bad checksum", func() []byte { b := bytes.Clone(echo); b[2] ^= 0x40; return b }(), tHost1, tHost2, ErrICMPChecksum},
		{"body changed", func() []byte { b := bytes.Clone(echo); b[9]++; return b }(), tHost1, tHost2, ErrICMPChecksum},
		{"truncated", echo[:len(echo)-1], tHost1, tHost2, ErrICMPChecksum},
		{"other source", echo, tHost2, tHost2, ErrICMPChecksum},
		{"other destination", echo, tHost1, tGroup, ErrICMPChecksum},
		{"good", echo, tHost1, tHost2, nil},
	} {
		if _, err := ParseICMP(c.b, c.src, c.dst); err != c.want {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func TestICMPAccessors(t *testing.T) {
	m := ICMP(icmpMessage(ICMPEchoReply, 0, 0xabcd_0102, nil, tLL1, tLL2))
	if m.EchoID() != 0xabcd || m.EchoSeq() != 0x0102 || len(m.Body()) != 0 {
		t.Fatalf("echo %x", []byte(m))
	}
	m = ICMP(icmpMessage(ICMPPacketTooBig, 0, 1400, nil, tLL1, tLL2))
	if m.MTU() != 1400 {
		t.Fatalf("mtu %d", m.MTU())
	}
	m = ICMP(icmpMessage(ICMPParamProblem, 0, 42, nil, tLL1, tLL2))
	if m.Pointer() != 42 {
		t.Fatalf("pointer %d", m.Pointer())
	}
}

// FuzzICMPv6 feeds ParseICMP messages whose checksum is fixed up half of
// the time (so the fuzzer gets past it) and checks that rebuilding an
// accepted message's header gives back its bytes. The first input byte
// picks the addresses and whether to fix the checksum.
func FuzzICMPv6(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		src, dst := fuzzAddrs(in[0])
		b := bytes.Clone(in[1:])
		if in[0]&0x80 != 0 && len(b) >= ICMPHeaderLen {
			PutChecksum(b, src, dst)
		}
		m, err := ParseICMP(b, src, dst)
		if err != nil {
			if len(b) >= ICMPHeaderLen && err != ErrICMPChecksum || len(b) < ICMPHeaderLen && err != ErrICMPTooShort {
				t.Fatalf("%d bytes: %v", len(b), err)
			}
			return
		}
		out := bytes.Clone(b)
		PutICMPHeader(out, m.Type(), m.Code(), m.RestOfHeader())
		PutChecksum(out, src, dst)
		if _, err := ParseICMP(out, src, dst); err != nil || !sameButChecksum(out, b) {
			t.Fatalf("rebuilt %x from %x: %v", out, b, err)
		}
	})
}

// fuzzAddrs picks a source and destination from a fuzzer's byte.
func fuzzAddrs(sel byte) (src, dst netip.Addr) {
	srcs := [...]netip.Addr{tLL1, tHost1, netip.IPv6Unspecified(), tLL2}
	dsts := [...]netip.Addr{tLL2, tHost2, AllNodes, SolicitedNode(tHost2), tGroup, AllMLDv2Routers, tLL1, AllRouters}
	return srcs[sel&3], dsts[sel>>2&7]
}

// sameButChecksum compares two ICMPv6 messages except for the checksum:
// a one's-complement sum has two encodings of zero (0x0000 and 0xffff)
// and both verify, so a rebuilt message may use the other one.
func sameButChecksum(a, b []byte) bool {
	return len(a) == len(b) && bytes.Equal(a[:2], b[:2]) && bytes.Equal(a[4:], b[4:])
}
