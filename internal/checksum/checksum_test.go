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

// FuzzChecksum compares the word-at-a-time sum with the reference and
// checks the properties the stack relies on: splitting the data at an even
// offset gives the same folded sum (reassembled datagrams are summed part
// by part), and data that contains its own checksum verifies to zero.
func FuzzChecksum(f *testing.F) {
	f.Add([]byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, uint16(4))
	f.Add(make([]byte, 65), uint16(32))
	f.Add([]byte{0xff}, uint16(0))
	f.Fuzz(func(t *testing.T, b []byte, split uint16) {
		if got, want := Checksum(b), reference(b); got != want {
			t.Fatalf("Checksum(%x) = %#04x, reference %#04x", b, got, want)
		}
		k := min(int(split)&^1, len(b)&^1)
		whole := Fold(Sum(b, 0))
		if parts := Fold(Sum(b[k:], Sum(b[:k], 0))); parts != whole {
			t.Fatalf("split at %d: %#04x, whole %#04x", k, parts, whole)
		}
		// Appending the checksum (at an even offset) makes the total
		// verify.
		c := Checksum(b)
		with := append(append([]byte(nil), b...), make([]byte, len(b)%2)...)
		with = append(with, byte(c>>8), byte(c))
		if v := Checksum(with); v != 0 {
			t.Fatalf("data plus its checksum sums to %#04x", v)
		}
		// The pseudo-header is the sum of its fields as 16-bit words.
		if len(b) >= 8 {
			src, dst := [4]byte(b[0:4]), [4]byte(b[4:8])
			ph := []byte{src[0], src[1], src[2], src[3], dst[0], dst[1], dst[2], dst[3], 0, 17, byte(len(b) >> 8), byte(len(b))}
			if Fold(PseudoHeader(src, dst, 17, len(b))) != Fold(Sum(ph, 0)) {
				t.Fatal("PseudoHeader disagrees with the summed pseudo-header")
			}
		}
	})
}
