//go:build aix || darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris

package gonet

import "golang.org/x/sys/unix"

// rfc3542Cmsg is the IPv6 control messages of RFC 3542 with this system's
// numbers, as x/net's control_rfc3542_unix.go encodes them.
var rfc3542Cmsg = ipv6CmsgTypes{
	level:    unix.IPPROTO_IPV6,
	pktinfo:  unix.IPV6_PKTINFO,
	hopLimit: unix.IPV6_HOPLIMIT,
	tclass:   unix.IPV6_TCLASS,
	nextHop:  unix.IPV6_NEXTHOP,
}
