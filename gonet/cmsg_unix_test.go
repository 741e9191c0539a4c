//go:build aix || darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris || zos

package gonet_test

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/unix"
)

// cmsgSpace is the kernel's CMSG_SPACE, independent of gonet's encoding.
func cmsgSpace(n int) int { return unix.CmsgSpace(n) }

// ttlCmsg is an IP_TTL control message (Linux's numbers) in the kernel's
// cmsghdr layout for this platform, built with x/sys/unix.
func ttlCmsg(ttl int) []byte {
	b := make([]byte, unix.CmsgSpace(4))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = 0, 2 // IPPROTO_IP, IP_TTL
	h.SetLen(unix.CmsgLen(4))
	binary.NativeEndian.PutUint32(b[unix.CmsgLen(0):], uint32(ttl))
	return b
}
