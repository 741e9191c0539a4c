//go:build aix || darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris || zos

package gonet

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Control messages use the kernel's struct cmsghdr, as x/net's
// ControlMessage marshals and parses it on this platform: the length field
// is a size_t on Linux and a socklen_t on the BSDs and macOS, and the
// alignment of header and data varies (4 bytes on 32-bit Linux and macOS).
var cmsgHdrLen = unix.CmsgLen(0)

const (
	cmsgLenSize  = int(unsafe.Sizeof(unix.Cmsghdr{}.Len))
	cmsgLevelOff = int(unsafe.Offsetof(unix.Cmsghdr{}.Level))
	cmsgTypeOff  = int(unsafe.Offsetof(unix.Cmsghdr{}.Type))
)

// cmsgSpace is CMSG_SPACE: the bytes a message with n bytes of data takes.
func cmsgSpace(n int) int { return unix.CmsgSpace(n) }
