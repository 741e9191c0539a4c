package ipv4

import (
	"net/netip"
	"testing"

	"github.com/tapnet/tapnet/internal/checksum"
)

// withOptions builds a header carrying opts (padded to 4 bytes).
func withOptions(opts ...byte) Header {
	for len(opts)%4 != 0 {
		opts = append(opts, optEnd)
	}
	hl := HeaderLen + len(opts)
	b := make([]byte, hl)
	Put(b, Fields{TotalLen: hl, TTL: 64, Protocol: ProtocolUDP,
		Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("192.0.2.2")})
	b[0] = 0x40 | byte(hl/4)
	copy(b[HeaderLen:], opts)
	b[10], b[11] = 0, 0
	c := checksum.Checksum(b)
	b[10], b[11] = byte(c>>8), byte(c)
	h, err := Parse(b)
	if err != nil {
		panic(err)
	}
	return h
}

func TestCheckOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []byte
		want error
	}{
		{"nops and end", []byte{optNOP, optNOP, optEnd}, nil},
		{"router alert", []byte{148, 4, 0, 0}, nil},
		{"timestamp", []byte{68, 8, 5, 0, 0, 0, 0, 0}, nil},
		{"length past header", []byte{148, 12, 0, 0}, ErrBadOptions},
		{"length below 2", []byte{148, 1, 0, 0}, ErrBadOptions},
		{"type without length", []byte{optNOP, optNOP, optNOP, 148}, ErrBadOptions},
		{"loose source route", []byte{optLSRR, 7, 4, 192, 0, 2, 9}, ErrSourceRoute},
		{"strict source route", []byte{optSSRR, 7, 4, 192, 0, 2, 9}, ErrSourceRoute},
	} {
		if got := withOptions(tc.opts...).CheckOptions(); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
