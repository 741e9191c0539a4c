package gonet

import (
	"net/netip"
	"testing"

	"github.com/tapnet/tapnet/internal/udpsock"
	"golang.org/x/net/ipv6"
)

// TestControlMessages6Truncation: IPv6 control messages are cut as
// put_cmsg cuts them: a message that does not fit whole is shortened to
// the room left and later ones are left out, with MSG_CTRUNC either way.
func TestControlMessages6Truncation(t *testing.T) {
	info := &udpsock.ReadInfo{Src: netip.MustParseAddrPort("[2001:db8::2]:53"), Dst: netip.MustParseAddr("2001:db8::1"), NIC: 2, TTL: 7, TOS: 3}
	flags := uint(ipv6.FlagDst | ipv6.FlagInterface | ipv6.FlagHopLimit | ipv6.FlagTrafficClass)
	full := 2*cmsgSpace(controlIntLen) + cmsgSpace(sizeofIn6Pktinfo)
	for _, c := range []struct {
		room, used int
		trunc      bool
	}{
		{full, full, false},
		{cmsgSpace(sizeofIn6Pktinfo) + cmsgHdrLen + 1, cmsgSpace(sizeofIn6Pktinfo) + cmsgHdrLen + 1, true},
		{cmsgHdrLen - 1, 0, true},
		{cmsgHdrLen + 4, cmsgHdrLen + 4, true},
	} {
		oob := make([]byte, c.room)
		used, trunc := putControlMessages6(nil, oob, flags, info)
		if used != c.used || trunc != c.trunc {
			t.Errorf("room %d: used %d, trunc %v; want %d, %v", c.room, used, trunc, c.used, c.trunc)
		}
	}
}
