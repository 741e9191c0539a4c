package stack

import "syscall"

// Errnos of the unreachable codes whose names differ between systems:
// Linux's for "source host isolated" (code 8) and "host unknown" (7).
const (
	errnoHostIsolated = syscall.ENONET
	errnoHostDown     = syscall.EHOSTDOWN
)
