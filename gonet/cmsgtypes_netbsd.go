package gonet

import "golang.org/x/sys/unix"

// ip_savecontrol here puts IP_RECVIF before IP_RECVTTL.
var ipCmsg = bsdIPCmsg(unix.IP_RECVIF, false)

var ipv6Cmsg = rfc3542Cmsg
