//go:build !windows

package gonet

import "syscall"

// What net's *net.UDPConn.Read returns for a refused datagram.
const (
	wantRefusedCall  = "read"
	wantRefusedErrno = syscall.ECONNREFUSED
)
