package stack

import (
	"syscall"

	"github.com/tapnet/tapnet/ipv4"
	"github.com/tapnet/tapnet/ipv6"
)

// The errno a socket reports for an ICMP error is socket semantics, not
// wire format, so the tables live here rather than in ipv4 or ipv6.

// errnoForICMPv4 maps an ICMP error to the errno a socket reports and
// whether it is a hard error (reported to a connected UDP socket),
// following the table Linux uses (icmp_err_convert). Where Linux reports an
// errno the host OS lacks, the OS's nearest one stands in (see
// errnoHostIsolated and errnoHostDown).
func errnoForICMPv4(typ, code uint8) (errno syscall.Errno, hard bool) {
	switch typ {
	case ipv4.ICMPTimeExceeded:
		return syscall.EHOSTUNREACH, false
	case ipv4.ICMPParamProblem:
		return syscall.EPROTO, true
	case ipv4.ICMPDestUnreachable:
		if int(code) < len(unreachErrnoV4) {
			return unreachErrnoV4[code].errno, unreachErrnoV4[code].hard
		}
		return syscall.EHOSTUNREACH, false
	}
	return 0, false
}

type errnoEntry struct {
	errno syscall.Errno
	hard  bool
}

// unreachErrnoV4 is indexed by the destination unreachable code.
var unreachErrnoV4 = [...]errnoEntry{
	{syscall.ENETUNREACH, false}, {syscall.EHOSTUNREACH, false}, {syscall.ENOPROTOOPT, true},
	{syscall.ECONNREFUSED, true}, {syscall.EMSGSIZE, false}, {syscall.EOPNOTSUPP, false},
	{syscall.ENETUNREACH, true}, {errnoHostDown, true}, {errnoHostIsolated, true},
	{syscall.ENETUNREACH, true}, {syscall.EHOSTUNREACH, true}, {syscall.ENETUNREACH, false},
	{syscall.EHOSTUNREACH, false}, {syscall.EHOSTUNREACH, true}, {syscall.EHOSTUNREACH, true},
	{syscall.EHOSTUNREACH, true},
}

// errnoForICMPv6 maps an ICMPv6 error to the errno a socket reports and
// whether it is a hard error (reported to a connected UDP socket), as
// Linux's icmpv6_err_convert does.
func errnoForICMPv6(typ, code uint8) (errno syscall.Errno, hard bool) {
	switch typ {
	case ipv6.ICMPDestUnreachable:
		if int(code) < len(unreachErrnoV6) {
			return unreachErrnoV6[code].errno, unreachErrnoV6[code].hard
		}
		return syscall.EPROTO, true
	case ipv6.ICMPPacketTooBig:
		return syscall.EMSGSIZE, false
	case ipv6.ICMPParamProblem:
		return syscall.EPROTO, true
	case ipv6.ICMPTimeExceeded:
		return syscall.EHOSTUNREACH, false
	}
	return 0, false
}

// unreachErrnoV6 is indexed by the destination unreachable code.
var unreachErrnoV6 = [...]errnoEntry{
	ipv6.CodeNoRoute:         {syscall.ENETUNREACH, false},
	ipv6.CodeAdminProhibited: {syscall.EACCES, true},
	ipv6.CodeBeyondScope:     {syscall.EHOSTUNREACH, false},
	ipv6.CodeAddrUnreachable: {syscall.EHOSTUNREACH, false},
	ipv6.CodePortUnreachable: {syscall.ECONNREFUSED, true},
	ipv6.CodeSourcePolicy:    {syscall.EACCES, true},
	ipv6.CodeRejectRoute:     {syscall.EACCES, true},
}
