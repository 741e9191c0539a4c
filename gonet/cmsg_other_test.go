//go:build !(aix || darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris || zos)

package gonet_test

import (
	"encoding/binary"
	"math/bits"
)

// Windows' WSACMSGHDR: a size_t length and two ints, aligned to a size_t.
const (
	cmsgAlign  = bits.UintSize / 8
	cmsgHdrLen = (cmsgAlign + 8 + cmsgAlign - 1) &^ (cmsgAlign - 1)
)

func cmsgSpace(n int) int { return cmsgHdrLen + (n+cmsgAlign-1)&^(cmsgAlign-1) }

// ttlCmsg is an IP_TTL control message (Linux's numbers) in that layout.
func ttlCmsg(ttl int) []byte {
	b := make([]byte, cmsgSpace(4))
	if cmsgAlign == 8 {
		binary.NativeEndian.PutUint64(b, uint64(cmsgHdrLen+4))
	} else {
		binary.NativeEndian.PutUint32(b, uint32(cmsgHdrLen+4))
	}
	binary.NativeEndian.PutUint32(b[cmsgAlign+4:], 2) // IP_TTL; level IPPROTO_IP is 0
	binary.NativeEndian.PutUint32(b[cmsgHdrLen:], uint32(ttl))
	return b
}
