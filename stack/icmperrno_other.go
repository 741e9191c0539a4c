//go:build !linux && !wasip1

package stack

import "syscall"

// Errnos of the unreachable codes whose names differ between systems.
// Linux's ENONET ("machine is not on the network") does not exist here: the
// BSDs and macOS map every host-unreachable code, isolation included, to
// EHOSTUNREACH.
const (
	errnoHostIsolated = syscall.EHOSTUNREACH
	errnoHostDown     = syscall.EHOSTDOWN
)
