package gonet

import (
	"syscall"

	"golang.org/x/sys/windows"
)

// winsockErrno maps the errnos the stack reports (syscall's names, which on
// Windows are values Go invents) to the Winsock errors net returns there,
// so that errors.Is(err, windows.WSAECONNREFUSED) and the messages match a
// kernel socket. Errnos Winsock lacks pass through unchanged, and so does
// EOPNOTSUPP, which x/net reports as "not implemented" here: Go's invented
// value keeps errors.Is(err, errors.ErrUnsupported) true.
var winsockErrno = map[syscall.Errno]syscall.Errno{
	syscall.EADDRINUSE:    windows.WSAEADDRINUSE,
	syscall.EADDRNOTAVAIL: windows.WSAEADDRNOTAVAIL,
	syscall.EAFNOSUPPORT:  windows.WSAEAFNOSUPPORT,
	syscall.EAGAIN:        windows.WSAEWOULDBLOCK,
	syscall.ECONNREFUSED:  windows.WSAECONNREFUSED,
	syscall.EDESTADDRREQ:  windows.WSAEDESTADDRREQ,
	syscall.EHOSTDOWN:     windows.WSAEHOSTDOWN,
	syscall.EHOSTUNREACH:  windows.WSAEHOSTUNREACH,
	syscall.EINVAL:        windows.WSAEINVAL,
	syscall.EMSGSIZE:      windows.WSAEMSGSIZE,
	syscall.ENETUNREACH:   windows.WSAENETUNREACH,
	syscall.ENOBUFS:       windows.WSAENOBUFS,
	syscall.ENOPROTOOPT:   windows.WSAENOPROTOOPT,
	syscall.ENOTCONN:      windows.WSAENOTCONN,
}

// winsockCall names the Winsock calls net's errors name on Windows.
var winsockCall = map[string]string{
	"read":     "wsarecv",
	"recvfrom": "wsarecvfrom",
	"recvmsg":  "wsarecvmsg",
	"write":    "wsasend",
	"sendto":   "wsasendto",
	"sendmsg":  "wsasendmsg",
}

// osErrno is the error net returns on this system for errno.
func osErrno(errno syscall.Errno) syscall.Errno {
	if w, ok := winsockErrno[errno]; ok {
		return w
	}
	return errno
}

// osCall is the name net gives the system call it made on this system.
func osCall(name string) string {
	if w, ok := winsockCall[name]; ok {
		return w
	}
	return name
}
