package stack

import "syscall"

// Errnos of the unreachable codes whose names differ between systems.
// WASI has neither ENONET nor EHOSTDOWN; EHOSTUNREACH is the nearest.
const (
	errnoHostIsolated = syscall.EHOSTUNREACH
	errnoHostDown     = syscall.EHOSTUNREACH
)
