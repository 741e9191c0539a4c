package checksum

import (
	"math/rand"
	"testing"
)

// reference is the textbook RFC 1071 loop, one 16-bit word at a time.
func reference(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

func TestChecksumMatchesReference(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for n := 0; n < 300; n++ {
		b := make([]byte, n)
		r.Read(b)
		if got, want := Checksum(b), reference(b); got != want {
			t.Fatalf("len %d: got %#04x want %#04x", n, got, want)
		}
	}
	big := make([]byte, 65535)
	for i := range big {
		big[i] = 0xff
	}
	if got, want := Checksum(big), reference(big); got != want {
		t.Fatalf("all-ones 64 KiB: got %#04x want %#04x", got, want)
	}
}

func TestRFC1071Example(t *testing.T) {
	// The worked example of RFC 1071 section 3: the folded sum is 0xddf2.
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := Fold(Sum(b, 0)); got != 0xddf2 {
		t.Fatalf("sum %#04x, want 0xddf2", got)
	}
}

func BenchmarkChecksum1500(b *testing.B) {
	buf := make([]byte, 1500)
	b.SetBytes(1500)
	for i := 0; i < b.N; i++ {
		Checksum(buf)
	}
}
