package gonet

import "golang.org/x/sys/windows"

// What net's *net.UDPConn.Read returns on Windows for a refused datagram
// (were Winsock to report it).
const (
	wantRefusedCall  = "wsarecv"
	wantRefusedErrno = windows.WSAECONNREFUSED
)
