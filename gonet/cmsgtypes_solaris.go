package gonet

import "golang.org/x/sys/unix"

// Solaris and illumos, as x/net's sys_solaris.go: IP_PKTINFO and the TTL
// in IP_RECVTTL, which x/net reads only when it is at least an int long.
var ipCmsg = ipCmsgTypes{
	level:        unix.IPPROTO_IP,
	ttl:          unix.IP_RECVTTL,
	ttlLen:       4,
	pktinfo:      unix.IP_PKTINFO,
	pktinfoFirst: true,
	specDst:      true,
	sendTTL:      unix.IP_TTL,
}

var ipv6Cmsg = rfc3542Cmsg
