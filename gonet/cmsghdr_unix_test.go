//go:build aix || darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris || zos

package gonet

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// wantCmsg builds a control message with n bytes of data in the kernel's
// struct cmsghdr, with x/sys/unix rather than gonet's encoder, and returns
// the CMSG_SPACE bytes holding it (data and padding zero).
func wantCmsg(level, typ uint32, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = int32(level), int32(typ)
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgLen(0):], data)
	return b
}
