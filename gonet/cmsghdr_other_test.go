//go:build !(aix || darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris || zos)

package gonet

import (
	"encoding/binary"
	"math/bits"
)

// wantCmsg builds a control message in Windows' WSACMSGHDR layout (a
// size_t length and two ints, header and data aligned to a size_t),
// independently of gonet's encoder, padded to its CMSG_SPACE.
func wantCmsg(level, typ uint32, data []byte) []byte {
	const align = bits.UintSize / 8
	hdr := (align + 8 + align - 1) &^ (align - 1)
	b := make([]byte, hdr+(len(data)+align-1)&^(align-1))
	if align == 8 {
		binary.NativeEndian.PutUint64(b, uint64(hdr+len(data)))
	} else {
		binary.NativeEndian.PutUint32(b, uint32(hdr+len(data)))
	}
	binary.NativeEndian.PutUint32(b[align:], level)
	binary.NativeEndian.PutUint32(b[align+4:], typ)
	copy(b[hdr:], data)
	return b
}
