//go:build !(aix || darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris || zos)

package gonet

import "math/bits"

// x/net has no control messages on this platform. gonet keeps the layout
// Linux has for this word size, which is also Windows' WSACMSGHDR: a size_t
// length and two ints, header and data each aligned to a size_t.
const (
	cmsgAlign    = bits.UintSize / 8
	cmsgLenSize  = cmsgAlign
	cmsgLevelOff = cmsgAlign
	cmsgTypeOff  = cmsgAlign + 4
	cmsgHdrLen   = (cmsgAlign + 8 + cmsgAlign - 1) &^ (cmsgAlign - 1)
)

// cmsgSpace is CMSG_SPACE: the bytes a message with n bytes of data takes.
func cmsgSpace(n int) int { return cmsgHdrLen + (n+cmsgAlign-1)&^(cmsgAlign-1) }
