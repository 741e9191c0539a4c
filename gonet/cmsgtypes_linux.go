package gonet

import "golang.org/x/sys/unix"

// Linux's control messages, as x/net's sys_linux.go and ip_cmsg_recv:
// IP_PKTINFO (with ipi_spec_dst) then the TTL as an int in IP_TTL.
var ipCmsg = ipCmsgTypes{
	level:        unix.IPPROTO_IP,
	ttl:          unix.IP_TTL,
	ttlLen:       4,
	pktinfo:      unix.IP_PKTINFO,
	pktinfoFirst: true,
	specDst:      true,
	sendTTL:      unix.IP_TTL,
}

var ipv6Cmsg = rfc3542Cmsg
