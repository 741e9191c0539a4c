//go:build !(aix || darwin || dragonfly || freebsd || netbsd || openbsd)

package gonet

// wantSockaddrDatalink: no IP_RECVIF here.
func wantSockaddrDatalink(int) []byte { return nil }
