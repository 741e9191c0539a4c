package gonet

import "golang.org/x/sys/unix"

// AIX is BSD-like, but x/net uses IP_RECVINTERFACE there (IP_RECVIF
// exists and does not work).
var ipCmsg = bsdIPCmsg(unix.IP_RECVINTERFACE, false)

var ipv6Cmsg = rfc3542Cmsg
