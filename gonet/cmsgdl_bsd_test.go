//go:build aix || darwin || dragonfly || freebsd || netbsd || openbsd

package gonet

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// wantSockaddrDatalink is the sockaddr_dl of an IP_RECVIF message for
// interface index, built from x/sys/unix's struct.
func wantSockaddrDatalink(index int) []byte {
	sa := unix.RawSockaddrDatalink{Len: unix.SizeofSockaddrDatalink, Family: unix.AF_LINK, Index: uint16(index)}
	return unsafe.Slice((*byte)(unsafe.Pointer(&sa)), unix.SizeofSockaddrDatalink)
}
