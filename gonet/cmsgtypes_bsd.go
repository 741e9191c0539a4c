//go:build aix || dragonfly || freebsd || netbsd || openbsd

package gonet

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// bsdSockaddrDatalink is the struct sockaddr_dl of IP_RECVIF here.
var bsdSockaddrDatalink = sockaddrDatalink{
	size:     unix.SizeofSockaddrDatalink,
	family:   unix.AF_LINK,
	indexOff: int(unsafe.Offsetof(unix.RawSockaddrDatalink{}.Index)),
}

// bsdIPCmsg is the BSDs' IPv4 control messages, as x/net's sys_bsd.go and
// sys_freebsd.go ask for them: no IP_PKTINFO, but IP_RECVDSTADDR (the
// destination), IP_RECVTTL (a u_char) and IP_RECVIF (a sockaddr_dl whose
// sdl_index x/net reads), in the kernel's order. x/net marshals nothing
// for a send here; gonet takes an int TTL in IP_TTL.
func bsdIPCmsg(recvIf uint32, ttlBeforeIf bool) ipCmsgTypes {
	return ipCmsgTypes{
		level:       unix.IPPROTO_IP,
		ttl:         unix.IP_RECVTTL,
		ttlLen:      1,
		dstAddr:     unix.IP_RECVDSTADDR,
		recvIf:      recvIf,
		ttlBeforeIf: ttlBeforeIf,
		sdl:         bsdSockaddrDatalink,
		sendTTL:     unix.IP_TTL,
	}
}
