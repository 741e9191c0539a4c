//go:build aix || darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris || zos

package gonet_test

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/unix"
)

// cmsgSpace is the kernel's CMSG_SPACE, independent of gonet's encoding.
func cmsgSpace(n int) int { return unix.CmsgSpace(n) }

// ttlCmsg is an IP_TTL control message with an int, as Linux takes it
// (gonet takes it on every system), in this platform's numbers and
// cmsghdr layout, built with x/sys/unix.
func ttlCmsg(ttl int) []byte {
	b := make([]byte, unix.CmsgSpace(4))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = unix.IPPROTO_IP, unix.IP_TTL
	h.SetLen(unix.CmsgLen(4))
	binary.NativeEndian.PutUint32(b[unix.CmsgLen(0):], uint32(ttl))
	return b
}
