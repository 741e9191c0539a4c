package gonet

import "golang.org/x/sys/unix"

// macOS's control messages, as x/net's sys_darwin.go asks for them: the
// TTL as a u_char in IP_RECVTTL, then IP_PKTINFO (IP_RECVPKTINFO has the
// same number) for the destination and interface, whose ipi_spec_dst the
// kernel leaves 0. Sends take IP_PKTINFO, and gonet's IP_TTL.
var ipCmsg = ipCmsgTypes{
	level:   unix.IPPROTO_IP,
	ttl:     unix.IP_RECVTTL,
	ttlLen:  1,
	pktinfo: unix.IP_PKTINFO,
	sendTTL: unix.IP_TTL,
}

var ipv6Cmsg = rfc3542Cmsg
