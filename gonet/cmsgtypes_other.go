//go:build !(aix || darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris)

package gonet

// x/net has no control messages here (Windows, z/OS for the TTL, js,
// wasip1, plan9): gonet keeps Linux's levels, types and sizes, the numbers
// a program written against Linux would use.
var ipCmsg = ipCmsgTypes{
	level:        0, // IPPROTO_IP
	ttl:          2, // IP_TTL
	ttlLen:       4, // int
	pktinfo:      8, // IP_PKTINFO
	pktinfoFirst: true,
	specDst:      true,
	sendTTL:      2, // IP_TTL
}

var ipv6Cmsg = ipv6CmsgTypes{
	level:    41, // IPPROTO_IPV6
	pktinfo:  50, // IPV6_PKTINFO
	hopLimit: 52, // IPV6_HOPLIMIT
	tclass:   67, // IPV6_TCLASS
	nextHop:  9,  // IPV6_NEXTHOP
}
