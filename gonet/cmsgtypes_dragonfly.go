package gonet

import "golang.org/x/sys/unix"

// ip_savecontrol here puts IP_RECVTTL before IP_RECVIF.
var ipCmsg = bsdIPCmsg(unix.IP_RECVIF, true)

var ipv6Cmsg = rfc3542Cmsg
