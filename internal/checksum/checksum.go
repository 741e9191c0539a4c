// Package checksum computes the Internet checksum (RFC 1071) used by IPv4,
// ICMP, IGMP and UDP. Sums are accumulated in 64 bits over 32-bit words so
// that carries are folded once at the end instead of after every addition.
package checksum

import "encoding/binary"

// Sum adds the 16-bit big-endian words of b to acc and returns the new
// unfolded accumulator. An odd trailing byte is padded with zero, so b must
// be the last piece when its length is odd.
func Sum(b []byte, acc uint64) uint64 {
	for len(b) >= 32 {
		acc += uint64(binary.BigEndian.Uint32(b[0:4]))
		acc += uint64(binary.BigEndian.Uint32(b[4:8]))
		acc += uint64(binary.BigEndian.Uint32(b[8:12]))
		acc += uint64(binary.BigEndian.Uint32(b[12:16]))
		acc += uint64(binary.BigEndian.Uint32(b[16:20]))
		acc += uint64(binary.BigEndian.Uint32(b[20:24]))
		acc += uint64(binary.BigEndian.Uint32(b[24:28]))
		acc += uint64(binary.BigEndian.Uint32(b[28:32]))
		b = b[32:]
	}
	for len(b) >= 4 {
		acc += uint64(binary.BigEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		acc += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint64(b[0]) << 8
	}
	return acc
}

// Fold reduces an accumulator to 16 bits with end-around carry.
func Fold(acc uint64) uint16 {
	acc = (acc >> 32) + (acc & 0xffffffff)
	acc = (acc >> 32) + (acc & 0xffffffff)
	acc = (acc >> 16) + (acc & 0xffff)
	acc = (acc >> 16) + (acc & 0xffff)
	acc = (acc >> 16) + (acc & 0xffff)
	return uint16(acc)
}

// Checksum returns the Internet checksum of b: the complement of its folded
// sum. Verifying a block that contains its own checksum yields 0.
func Checksum(b []byte) uint16 { return ^Fold(Sum(b, 0)) }

// PseudoHeader returns the accumulator of the IPv4 pseudo-header used by UDP
// and TCP checksums.
func PseudoHeader(src, dst [4]byte, protocol uint8, length int) uint64 {
	return uint64(binary.BigEndian.Uint32(src[:])) +
		uint64(binary.BigEndian.Uint32(dst[:])) +
		uint64(protocol) + uint64(length)
}
