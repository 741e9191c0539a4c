package gonet

import "syscall"

// winsockErrno maps the errnos the stack reports (syscall's names, which on
// Windows are values Go invents) to the Winsock errors net returns there,
// so that errors.Is(err, windows.WSAECONNREFUSED) and the messages match a
// kernel socket. Errnos Winsock lacks pass through unchanged, and so does
// EOPNOTSUPP, which x/net reports as "not implemented" here: Go's invented
// value keeps errors.Is(err, errors.ErrUnsupported) true.
var winsockErrno = map[syscall.Errno]syscall.Errno{
	syscall.EADDRINUSE:    10048, // WSAEADDRINUSE
	syscall.EADDRNOTAVAIL: 10049, // WSAEADDRNOTAVAIL
	syscall.EAFNOSUPPORT:  10047, // WSAEAFNOSUPPORT
	syscall.EAGAIN:        10035, // WSAEWOULDBLOCK
	syscall.ECONNREFUSED:  10061, // WSAECONNREFUSED
	syscall.EDESTADDRREQ:  10039, // WSAEDESTADDRREQ
	syscall.EHOSTDOWN:     10064, // WSAEHOSTDOWN
	syscall.EHOSTUNREACH:  10065, // WSAEHOSTUNREACH
	syscall.EINVAL:        10022, // WSAEINVAL
	syscall.EMSGSIZE:      10040, // WSAEMSGSIZE
	syscall.ENETUNREACH:   10051, // WSAENETUNREACH
	syscall.ENOBUFS:       10055, // WSAENOBUFS
	syscall.ENOPROTOOPT:   10042, // WSAENOPROTOOPT
	syscall.ENOTCONN:      10057, // WSAENOTCONN
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
