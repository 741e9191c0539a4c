package ipv6

import (
	"net/netip"
	"testing"

	"github.com/tapnet/tapnet/internal/leakcheck"
)

// TestMain fails the package if its tests leave goroutines running.
func TestMain(m *testing.M) { leakcheck.Main(m) }

// Addresses of the tests: documentation, link-local and scoped multicast
// only.
var (
	tLL1    = netip.MustParseAddr("fe80::1")
	tLL2    = netip.MustParseAddr("fe80::2")
	tHost1  = netip.MustParseAddr("2001:db8::1")
	tHost2  = netip.MustParseAddr("2001:db8::2")
	tGroup  = netip.MustParseAddr("ff3e::8000:1")
	tGroup2 = netip.MustParseAddr("ff0e::1234")
	tMAC    = [6]byte{0x02, 0x00, 0x5e, 0x10, 0x00, 0x01}
)

// packet builds an IPv6 packet from src to dst whose chain starts with
// next and is made of the given headers (each with its own next header
// byte already set) and payload.
func packet(src, dst netip.Addr, next uint8, parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, HeaderLen, HeaderLen+n)
	Put(b, Fields{PayloadLen: n, NextHeader: next, HopLimit: 64, Src: src, Dst: dst})
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// icmpPacket builds a checksummed ICMPv6 message from src to dst with the
// given type, code, rest-of-header and body.
func icmpMessage(typ, code uint8, rest uint32, body []byte, src, dst netip.Addr) []byte {
	b := make([]byte, ICMPHeaderLen+len(body))
	PutICMPHeader(b, typ, code, rest)
	copy(b[ICMPHeaderLen:], body)
	PutChecksum(b, src, dst)
	return b
}
